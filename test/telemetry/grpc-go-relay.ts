/**
 * Builds (once, cached outside the repository) and runs `test/telemetry/grpc-go-relay/`: a grpc-go
 * server made as Hubble Relay makes its own (`grpc.NewServer`), with a keepalive enforcement policy
 * whose MinTime a test chooses, serving a quiet `observer.Observer/GetFlows` stream. It reports the
 * connections it accepts, the keepalive pings it receives and the GOAWAY frames it sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../cluster/binaries.ts';

const MODULE_DIR = fileURLToPath(new URL('./grpc-go-relay/', import.meta.url));

/** The binary, built with `go build` when the cache has none for the current sources. */
export async function grpcGoRelayBinary(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(MODULE_DIR)).sort())
    if (name === 'go.mod' || name === 'go.sum' || name.endsWith('.go'))
      hash.update(`${name}\0${await readFile(join(MODULE_DIR, name), 'utf8')}\0`);
  const dir = join(cacheRoot(), 'grpc-go-relay', hash.digest('hex').slice(0, 16));
  const bin = join(dir, 'grpc-go-relay');
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    const child = spawn('go', ['build', '-trimpath', '-o', tmp, '.'], {
      cwd: MODULE_DIR,
      env: { ...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ''} -mod=readonly`.trim() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.on('error', (err) => reject(new Error(`cannot run go (Go 1.26+ must be on PATH): ${err.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go build of ${MODULE_DIR} failed (${code}):\n${stderr}`)),
    );
  });
  await rename(tmp, bin);
  return bin;
}

export interface GrpcGoRelay {
  port: number;
  /** What the server reported, one entry a line: `accept`, `ping`, `goaway CODE DEBUG`. */
  readonly events: string[];
  count(prefix: string): number;
  stop(): Promise<void>;
}

/** Starts the server with keepalive enforcement MinTime `minTimeMs`. */
export async function startGrpcGoRelay(bin: string, minTimeMs: number): Promise<GrpcGoRelay> {
  const child: ChildProcess = spawn(bin, [`-min-time=${minTimeMs}ms`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: string[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
      else events.push(line);
    });
    child.once('exit', (code) => reject(new Error(`grpc-go relay exited (${code}): ${stderr}`)));
  });
  return {
    port,
    events,
    count: (prefix) => events.filter((e) => e.startsWith(prefix)).length,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}
