// The hybrid-vsock handshake of a host-initiated connection (the Firecracker convention): a
// host process connects to the device's Unix socket and writes `CONNECT <port>\n`, port a decimal
// u32; once the guest accepts, the device answers `OK <local port>\n` and the socket carries the
// stream from then on. Host clients are less trusted than the device: the line is bounded, and a
// client that sends garbage, too much, or nothing in time is closed.
import type { Socket } from 'node:net';

/** Longest accepted line, newline included ("CONNECT 4294967295\n" is 19 bytes). */
export const CONNECT_LINE_MAX = 32;

/** The port of a `CONNECT <port>` line (without its newline), or null if it is not one. */
export function parseConnectLine(line: string): number | null {
  // A CR before the LF is tolerated (clients written for line-based protocols); the keyword is
  // case-insensitive, as Firecracker accepts "connect" too.
  const match = /^connect ([0-9]{1,10})\r?$/i.exec(line);
  if (!match) return null;
  const port = Number(match[1]);
  return port <= 0xffffffff ? port : null;
}

export type ConnectLineResult = { port: number; rest: Buffer } | { error: string };

/**
 * Read the CONNECT line from a freshly accepted socket, then call `done` exactly once: with the
 * port and any bytes that followed the newline (the start of the stream), or with an error.
 * On success the socket is left paused with no listeners of ours attached; on error the caller
 * closes it. Returns a function that cancels the wait (done is then not called).
 */
export function readConnectLine(
  socket: Socket,
  timeoutMs: number,
  done: (result: ConnectLineResult) => void,
): () => void {
  let buffered: Buffer = Buffer.alloc(0);
  let finished = false;

  const finish = (result: ConnectLineResult): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.pause();
    done(result);
  };
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const newline = buffered.indexOf(0x0a);
    if (newline < 0) {
      if (buffered.length >= CONNECT_LINE_MAX) finish({ error: 'CONNECT line too long' });
      return;
    }
    if (newline + 1 > CONNECT_LINE_MAX) {
      finish({ error: 'CONNECT line too long' });
      return;
    }
    const line = buffered.subarray(0, newline).toString('latin1');
    const port = parseConnectLine(line);
    if (port === null) {
      finish({ error: `bad CONNECT line ${JSON.stringify(line)}` });
      return;
    }
    finish({ port, rest: buffered.subarray(newline + 1) });
  };
  const onEnd = (): void => finish({ error: 'client closed before its CONNECT line' });
  const timer = setTimeout(() => finish({ error: 'no CONNECT line in time' }), timeoutMs);
  timer.unref();

  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.resume();
  return () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
  };
}
