/**
 * Preloaded (`node --import`) into a microseg command that a benchmark runs as a user would: when the
 * process exits, its peak RSS and CPU time go to standard error as one JSON line, the command's own
 * output untouched.
 */
process.on('exit', (code) => {
  const u = process.resourceUsage();
  process.stderr.write(
    JSON.stringify({ code, maxRssMB: u.maxRSS / 1024, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6 }) +
      '\n',
  );
});
