// The two kinds of terminal the console shows speak the same shape of API under different names:
// a shell in the VM (session.*) and a shell on this machine (terminal.*). A PtyChannel hides the
// difference, and the base64 both ways, from the terminal view.
import type { PtySize } from '../../../core/api/types.ts';
import type { Api } from '../api/connection.ts';
import { base64ToBytes, bytesToBase64, splitBytes, utf8Bytes } from '../api/base64.ts';

export interface PtyChannel {
  open(size: PtySize): Promise<number>;
  /** Sends what the user typed or pasted (UTF-8 on the wire). */
  write(id: number, text: string): Promise<void>;
  resize(id: number, size: PtySize): Promise<void>;
  close(id: number): Promise<void>;
  onOutput(listener: (id: number, bytes: Uint8Array) => void): () => void;
  onExit(listener: (id: number) => void): () => void;
}

/** Well under MAX_SESSION_WRITE_BYTES: a large paste goes as several modest messages. */
export const WRITE_PIECE_BYTES = 64 * 1024;

async function writePieces(
  text: string,
  send: (base64: string) => Promise<unknown>,
): Promise<void> {
  // Sent back to back (not awaited one by one) so they leave in order without a round trip each.
  const sends = splitBytes(utf8Bytes(text), WRITE_PIECE_BYTES).map((piece) =>
    send(bytesToBase64(piece)),
  );
  await Promise.all(sends);
}

/** An interactive login shell in the VM, with a pty. */
export function guestShellChannel(api: Api): PtyChannel {
  return {
    open: async (size) =>
      (await api.call('session.open', { pty: { ...size, term: 'xterm-256color' } })).id,
    write: (id, text) => writePieces(text, (data) => api.call('session.write', { id, data })),
    resize: async (id, size) => {
      await api.call('session.resize', { id, ...size });
    },
    close: async (id) => {
      await api.call('session.close', { id });
    },
    onOutput: (listener) =>
      api.on('session.output', ({ id, data }) => listener(id, base64ToBytes(data))),
    onExit: (listener) => api.on('session.exit', ({ id }) => listener(id)),
  };
}

/** A shell on the host, served by the desktop app and the dashboard only. */
export function hostTerminalChannel(api: Api): PtyChannel {
  return {
    open: async (size) => (await api.call('terminal.open', size)).id,
    write: (id, text) => writePieces(text, (data) => api.call('terminal.write', { id, data })),
    resize: async (id, size) => {
      await api.call('terminal.resize', { id, ...size });
    },
    close: async (id) => {
      await api.call('terminal.close', { id });
    },
    onOutput: (listener) =>
      api.on('terminal.output', ({ id, data }) => listener(id, base64ToBytes(data))),
    onExit: (listener) => api.on('terminal.exit', ({ id }) => listener(id)),
  };
}
