// Browser mode: one WebSocket text frame is one JSON-RPC message. The socket is typed by the few
// members used here, so the adapter is tested in Node without a browser.
import type { ApiTransport } from '../../../core/api/client.ts';

/** What the adapter reads of an event: MessageEvent's data, CloseEvent's code. */
export interface SocketEvent {
  readonly data?: unknown;
  readonly code?: number;
}

/** The part of the DOM's WebSocket that this adapter uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(
    type: 'open' | 'message' | 'close',
    listener: (event: SocketEvent) => void,
  ): void;
}

const OPEN = 1;
const CLOSED = 3;

/** Resolves once the socket is open; rejects if it closes or fails first. */
export function whenOpen(socket: SocketLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.readyState === OPEN) return resolve();
    if (socket.readyState === CLOSED) return reject(new Error('the connection was refused'));
    socket.addEventListener('open', () => resolve());
    // A browser hides why a WebSocket failed (no status, no text); the close code is all there is.
    socket.addEventListener('close', (event: SocketEvent) =>
      reject(new Error(`could not connect (close code ${event.code ?? 'unknown'})`)),
    );
  });
}

/** An open socket as an ApiTransport. */
export function socketTransport(socket: SocketLike): ApiTransport {
  let closed: Error | null = null;
  const closeListeners: ((why: Error) => void)[] = [];
  const finish = (why: Error) => {
    if (closed) return;
    closed = why;
    for (const listener of closeListeners.splice(0)) listener(why);
  };
  socket.addEventListener('close', (event: SocketEvent) =>
    finish(new Error(`the connection closed (code ${event.code ?? 'unknown'})`)),
  );
  if (socket.readyState === CLOSED) finish(new Error('the connection closed'));
  return {
    send: (text) => {
      if (!closed) socket.send(text);
    },
    onMessage: (listener) =>
      socket.addEventListener('message', (event: SocketEvent) => {
        if (typeof event.data === 'string') listener(event.data);
      }),
    onClose: (listener) => {
      // A listener added after the close still hears of it, once.
      if (closed) {
        const why = closed;
        queueMicrotask(() => listener(why));
      } else closeListeners.push(listener);
    },
    close: () => socket.close(1000, 'closed by the dashboard'),
  };
}
