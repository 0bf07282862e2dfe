// How long to wait before the next reconnect attempt: exponential, capped, with some jitter so
// that many dashboards (tabs, windows) do not all knock on a restarted host at the same moment.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** The share of a delay that may be taken off at random, 0..1. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 10_000,
  factor: 2,
  jitter: 0.2,
};

/** The delay before retry number `attempt` (0 for the first retry after a failure). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt));
  const base = Math.min(options.maxMs, options.initialMs * options.factor ** exponent);
  return Math.round(base * (1 - options.jitter * random()));
}
