// Starts a cluster, prints its directory and waits forever: a test kills this process with SIGKILL
// and checks that the servers do not outlive it.
import { startCluster } from '../cluster.ts';

const cluster = await startCluster({ log: () => undefined });
process.stdout.write(`${cluster.dir}\n`);
setInterval(() => undefined, 1_000_000);
