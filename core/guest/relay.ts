// Two byte streams joined end to end (a host client and a guest stream), for the docker socket
// and published ports. Half-close travels both ways: when one side ends its sending, the other
// side's sending is ended after the data before it (so `docker run -i` and `docker build` can
// send EOF on stdin and still read the output). Both streams must allow half-open (a Node socket
// made without `allowHalfOpen` ends its own sending when it reads EOF).
//
// The relay is over when both streams are: a stream that closes cleanly (having read its EOF)
// lets the other finish writing what it got before it is destroyed; a stream that fails or is
// destroyed takes the other one down at once, as the peer would see with a direct connection.
import type { Duplex } from 'node:stream';

/** How long a stream may take to flush after its peer closed, before it is destroyed anyway. */
const FLUSH_TIMEOUT_MS = 30_000;

export interface RelayOptions {
  /** Called once, when both streams are gone; with the first error, if one failed. */
  onClose?: (error?: Error) => void;
  /**
   * `from` sent its EOF after `bytes` bytes in all; called before that EOF is passed on to `to`
   * (so a last word may still be written to `to`).
   */
  onEnd?: (from: Duplex, bytes: number) => void;
}

export function relay(a: Duplex, b: Duplex, options: RelayOptions = {}): void {
  let firstError: Error | undefined;
  let closed = 0;
  const onClose = () => {
    if (++closed === 2) options.onClose?.(firstError);
  };
  join(a, b, options, (error) => (firstError ??= error), onClose);
  join(b, a, options, (error) => (firstError ??= error), onClose);
}

/** Pipes `from` into `to`, and wires what happens to `from` into `to`. */
function join(
  from: Duplex,
  to: Duplex,
  options: RelayOptions,
  onError: (error: Error) => void,
  onClose: () => void,
): void {
  let ended = false;
  let bytes = 0;
  from.on('data', (chunk: Buffer) => (bytes += chunk.length));
  // The EOF is passed on by hand (not by pipe) so onEnd comes before it.
  from.pipe(to, { end: false });
  from.once('end', () => {
    ended = true;
    options.onEnd?.(from, bytes);
    if (!to.writableEnded && !to.destroyed) to.end();
  });
  from.on('error', (error) => {
    onError(error);
    to.destroy();
  });
  from.once('close', () => {
    onClose();
    if (to.destroyed) return;
    if (!ended) {
      // `from` went away without an EOF (reset, destroyed): nothing more will come, and nobody
      // is left to take `to`'s data either.
      to.destroy();
      return;
    }
    // `from` is done both ways and its data was handed to `to` (and `to` ended after it); `to`
    // has nobody left to read from it, so it goes once what it was given is flushed.
    if (to.writableFinished) {
      to.destroy();
      return;
    }
    const timer = setTimeout(() => to.destroy(), FLUSH_TIMEOUT_MS);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      to.destroy();
    };
    to.once('finish', done);
    to.once('close', () => clearTimeout(timer));
    if (!to.writableEnded) to.end();
  });
}
