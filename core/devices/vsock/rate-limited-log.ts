// Logging that the guest cannot turn into a flood: connection churn and refused clients are worth
// a line each, but a guest (or a host client) can cause them in a loop. At most `limit` lines per
// interval go out; the rest are counted, and the count is reported when logging resumes.
export function rateLimitedLog(
  log: (message: string) => void,
  limit = 20,
  intervalMs = 1000,
  now: () => number = Date.now,
): (message: string) => void {
  let windowStart = -Infinity;
  let lines = 0;
  let suppressed = 0;
  return (message) => {
    const t = now();
    if (t - windowStart >= intervalMs) {
      if (suppressed > 0) log(`vsock: ${suppressed} more log lines suppressed`);
      windowStart = t;
      lines = 0;
      suppressed = 0;
    }
    if (lines < limit) {
      lines++;
      log(message);
    } else {
      suppressed++;
    }
  };
}
