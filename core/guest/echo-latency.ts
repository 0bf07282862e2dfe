// Keystroke echo round trip through an interactive shell's terminal: the time from writing one
// printable byte until the terminal echoes it back. This is what a user feels as typing lag in
// the console or the debug shell, so it is measured end to end (host socket, ssh, vsock, guest
// pty, shell line editor) rather than per layer.
import type { Duplex } from 'node:stream';

export interface EchoLatency {
  p50Ms: number;
  p99Ms: number;
  samples: number;
}

export interface EchoLatencyOptions {
  /**
   * The end of the shell's prompt; the measurement starts once it has been shown. A cursor
   * position query right after the prompt (busybox ash sends one) is ignored.
   */
  prompt?: RegExp;
  /** How long to wait for the prompt, and for each echo. */
  timeoutMs?: number;
}

/** ESC [6n: busybox ash asks the terminal where the cursor is right after printing its prompt. */
const CURSOR_POSITION_QUERY = '\x1b[6n';
/** Ctrl-U: the line editor erases the typed line, so the shell never runs what we typed. */
const KILL_LINE = '\x15';
/**
 * Plain letters, each echoed as itself. Nothing else is printed between a key and its echo: the
 * redraw after Ctrl-U is waited out before the next key.
 */
const KEYS = 'abcdefghijklmnopqrstuvwxyz';
/** Well under 80 columns, so the line never wraps (a wrap redraws and echoes more than the key). */
const KEYS_PER_LINE = 20;
/** The terminal is quiet once nothing has arrived for this long (after the prompt, after Ctrl-U). */
const QUIET_MS = 100;

export async function measureEchoLatency(
  socket: Duplex,
  samples: number,
  { prompt = /[#$] $/, timeoutMs = 10_000 }: EchoLatencyOptions = {},
): Promise<EchoLatency> {
  if (!(Number.isInteger(samples) && samples > 0))
    throw new RangeError(`samples must be a positive integer (got ${samples})`);
  const terminal = new TerminalReader(socket);
  try {
    const showsPrompt = (text: string) =>
      prompt.test(
        text.endsWith(CURSOR_POSITION_QUERY) ? text.slice(0, -CURSOR_POSITION_QUERY.length) : text,
      );
    await terminal.waitFor(showsPrompt, 'the shell prompt', timeoutMs);
    await terminal.quiet(QUIET_MS);
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      if (i > 0 && i % KEYS_PER_LINE === 0) {
        socket.write(KILL_LINE);
        await terminal.quiet(QUIET_MS);
      }
      const key = KEYS[i % KEYS.length]!;
      terminal.clear();
      const sent = performance.now();
      socket.write(key);
      await terminal.waitFor((text) => text.includes(key), `the echo of ${key}`, timeoutMs);
      times.push(performance.now() - sent);
    }
    socket.write(KILL_LINE);
    times.sort((a, b) => a - b);
    return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99), samples };
  } finally {
    terminal.detach();
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** What the terminal printed since the last clear(), with waits that notice each arrival. */
class TerminalReader {
  private text = '';
  private lastArrival = performance.now();
  private wake: (() => void) | null = null;
  private readonly onData = (data: Buffer | string) => {
    this.text += data.toString();
    this.lastArrival = performance.now();
    this.wake?.();
  };

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
  }

  clear(): void {
    this.text = '';
  }

  detach(): void {
    this.socket.off('data', this.onData);
  }

  /** Resolves as soon as the text so far satisfies `done` (checked on every arrival). */
  async waitFor(done: (text: string) => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done(this.text)) {
      const left = deadline - performance.now();
      if (left <= 0) {
        const seen = JSON.stringify(this.text.slice(-200));
        throw new Error(`echo latency: no ${what} within ${timeoutMs} ms (last output ${seen})`);
      }
      await this.nextArrival(left);
    }
  }

  /** Resolves once nothing has arrived for `ms`, and forgets what arrived until then. */
  async quiet(ms: number): Promise<void> {
    for (;;) {
      const left = this.lastArrival + ms - performance.now();
      if (left <= 0) break;
      await this.nextArrival(left);
    }
    this.clear();
  }

  private nextArrival(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }
}
