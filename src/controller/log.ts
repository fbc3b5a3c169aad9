/**
 * Structured JSON logs, one object per line: `{"time", "level", "msg", ...fields}`. Child loggers add
 * fixed fields (component, segmentation). Writes to a sink (stderr by default) so tests can capture.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function jsonLogger(
  opts: {
    level?: Level;
    sink?: (line: string) => void;
    fields?: Record<string, unknown>;
    now?: () => Date;
  } = {},
): Logger {
  const min = RANK[opts.level ?? 'info'];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line));
  const base = opts.fields ?? {};
  const now = opts.now ?? (() => new Date());
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    sink(JSON.stringify({ time: now().toISOString(), level, msg, ...base, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => jsonLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}

/** A logger that discards everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
