// Electron: the preload exposes `window.berth`, which carries JSON-RPC texts over IPC to the main
// process. IPC lives as long as the window, so this transport never reports a close.
import type { ApiTransport } from '../../../core/api/client.ts';

/** What electron/preload exposes as `window.berth`: one JSON-RPC 2.0 message per text. */
export interface BerthBridge {
  send(text: string): void;
  /** Returns the function that removes the listener. */
  onMessage(listener: (text: string) => void): () => void;
}

export function isBerthBridge(value: unknown): value is BerthBridge {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof BerthBridge, unknown>>;
  return typeof candidate.send === 'function' && typeof candidate.onMessage === 'function';
}

export function bridgeTransport(bridge: BerthBridge): ApiTransport {
  const unsubscribers: (() => void)[] = [];
  return {
    send: (text) => bridge.send(text),
    onMessage: (listener) => {
      unsubscribers.push(bridge.onMessage(listener));
    },
    onClose: () => {},
    close: () => {
      for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
    },
  };
}
