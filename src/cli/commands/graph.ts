/** `microseg graph --flows FILE --cluster FILE [--format json|dot] [--out FILE]`: the service graph. */
import { FLOW_FORMATS, formatIngestStats, readFlows } from '../../flows/reader.ts';
import { dotPieces } from '../../graph/build.ts';
import { InputError } from '../../model/snapshot.ts';
import { runStreamedGraphPipeline } from '../../pipeline.ts';
import { JsonArrayOf, stableJsonPieces } from '../../policy/render.ts';
import { VERIFY_EXTRA_KINDS } from '../../verify/load.ts';
import {
  checkDistinctSources,
  clusterFromFiles,
  flowFormatOption,
  loadIdentity,
  noFlowsMessage,
  outputNotInput,
  warnOnStderr,
} from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { releaseMemory } from '../memory.ts';
import { EXIT, UsageError, writePieces } from '../io.ts';
import { checkOutputFile, nonEmptyOut, writeOutputFile } from '../output.ts';
import { pipelineOptions } from './recommend.ts';

export const HELP = `usage: microseg graph --flows FILE [--flows FILE ...] --cluster FILE [--cluster FILE ...] [--format json|dot] [--out FILE]

Builds the east-west service graph (workloads and external peers as nodes, one edge per destination
port and protocol with flow counts, first/last seen and verdicts), with each workload's segment, and
prints it as JSON (default) or Graphviz DOT. What was read (flows, bad lines by reason with file:line,
empty sources) goes to standard error.

options:
  --flows FILE      flow source (repeatable, each source once; '-' reads standard input)
  --cluster FILE    cluster snapshot (repeatable)
  --format F        json or dot (default: dot for an --out ending in .dot or .gv, else json)
  --out FILE        write to FILE instead of standard output ('-': standard output)
  --input-format F  flow input format: auto (default), hubble, generic, inspektor-gadget, kubescape
  --strict          stop at the first bad input line, or at a policy field its API does not
                    define (a warning without it: read without the field, as the API server)
  --resolution R    Louvain resolution (default 1)
  --seed S          Louvain seed (default 1)

exit codes: 0 written; 2 bad usage or input, or no flow read at all (nothing written); 3 internal error`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  flows: { type: 'string', multiple: true },
  cluster: { type: 'string', multiple: true },
  format: { type: 'string' },
  out: { type: 'string' },
  'input-format': { type: 'string' },
  strict: { type: 'boolean' },
  resolution: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  // Without --format, an --out named like a Graphviz file (.dot, .gv) gets DOT: JSON there is unreadable.
  const format = values.format ?? (/\.(dot|gv)$/i.test(values.out ?? '') ? 'dot' : 'json');
  if (format !== 'json' && format !== 'dot') {
    // recommend and audit take the flow format as --format: said, for one who gave it here.
    const flowFormat = format === 'auto' || (FLOW_FORMATS as readonly string[]).includes(format);
    throw new UsageError(
      `--format must be json or dot, got ${JSON.stringify(format)}` +
        (flowFormat ? `: that is a flow format, which graph takes as --input-format ${format}` : ''),
    );
  }
  if (!values.flows?.length) throw new UsageError('--flows is required');
  if (!values.cluster?.length) throw new UsageError('--cluster is required');
  const inputFormat = flowFormatOption('--input-format', values['input-format']);
  clusterFromFiles('graph', values.cluster);
  await checkDistinctSources('--flows', values.flows);
  const opts = pipelineOptions(values);
  // Before any input is read: a run over millions of lines should not end on a mistyped --out.
  nonEmptyOut(values.out, 'file', 'standard output');
  // '-' is standard output, as it is standard input for --flows (not a file named '-').
  const out = values.out === '-' ? undefined : values.out;
  if (out) {
    await checkOutputFile(out);
    await outputNotInput('--out', out, [
      ['--flows', values.flows],
      ['--cluster', values.cluster],
    ]);
  }
  const identity = await loadIdentity(
    values.cluster,
    opts.identity,
    // --strict refuses a policy field its API does not define, as it refuses a bad flow line.
    { extraKinds: VERIFY_EXTRA_KINDS, unknownFields: values.strict === true ? 'error' : 'warn' },
    warnOnStderr(io, 'graph'),
  );
  // The snapshot is garbage now: give the set-up's memory back before the flows are read.
  releaseMemory();
  const reader = readFlows(values.flows, {
    ...(inputFormat ? { format: inputFormat } : {}),
    strict: values.strict === true,
    policiesAdvice:
      'graph uses no network policy (to check policies against flows: microseg audit --policies)',
    stdin: io.stdin as AsyncIterable<Buffer>,
  });
  // Once read, the reader's memory is garbage too: given back before the graph is built.
  const res = await runStreamedGraphPipeline(identity, reader, { ...opts, afterIngest: releaseMemory });
  // Standard output holds the graph: what was read, and what could not be, is said on standard error.
  io.err(formatIngestStats(reader.stats));
  if (reader.stats.flows === 0) {
    throw new InputError(noFlowsMessage(reader.stats, inputFormat && `--input-format ${inputFormat}`));
  }
  // Written as it is rendered, each edge made as it is written: neither the text of a large graph nor
  // all its edges are held at once.
  const pieces =
    format === 'dot'
      ? dotPieces(res.graph)
      : stableJsonPieces(
          {
            nodes: res.graph.nodes,
            edges: new JsonArrayOf(res.graph.edges),
            segments: res.segments.segments,
            modularity: res.segments.modularity,
          },
          2,
        );
  if (out) await writeOutputFile(out, pieces);
  else await writePieces(pieces, (chunk) => io.out(chunk));
  return EXIT.ok;
});
