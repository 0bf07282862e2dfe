// Bounded buffers for what arrives without end: stats samples and the serial log.

/** The last `capacity` samples, oldest first; a repeat of the newest (same `at`) is dropped. */
export function pushSample<T extends { at: number }>(
  samples: readonly T[],
  sample: T,
  capacity: number,
): T[] {
  const last = samples[samples.length - 1];
  if (last && last.at === sample.at) return samples as T[];
  const next = [...samples, sample];
  return next.length > capacity ? next.slice(next.length - capacity) : next;
}

/**
 * Appends `more` and keeps at most `cap` characters, cutting whole lines off the front so the
 * log never starts mid-line (unless one line alone is longer than `cap`).
 */
export function appendCapped(text: string, more: string, cap: number): string {
  const all = text + more;
  if (all.length <= cap) return all;
  const start = all.length - cap;
  const newline = all.indexOf('\n', start - 1);
  return newline === -1 || newline + 1 >= all.length ? all.slice(start) : all.slice(newline + 1);
}
