// The preload: the renderer's only door to the main process. It exposes exactly
// `window.berth = { send, onMessage }`, each message one JSON-RPC 2.0 text; the renderer wraps it
// in core/api/client.ts's ApiClient (renderer/src/api/bridge-transport.ts). Neither ipcRenderer
// nor an IPC event ever reaches the page (checklist item 20), and main validates every message
// again (electron/ipc-validation.ts). Built to CommonJS: a sandboxed preload cannot be ESM.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { BERTH_CHANNEL } from '../ipc-channel.ts';

export interface BerthBridge {
  send(text: string): void;
  /** Returns the function that removes the listener. */
  onMessage(listener: (text: string) => void): () => void;
}

const bridge: BerthBridge = {
  send(text) {
    if (typeof text !== 'string') throw new TypeError('berth.send takes one JSON-RPC text');
    ipcRenderer.send(BERTH_CHANNEL, text);
  },
  onMessage(listener) {
    if (typeof listener !== 'function') throw new TypeError('berth.onMessage takes a function');
    const forward = (_event: IpcRendererEvent, text: unknown) => {
      if (typeof text === 'string') listener(text);
    };
    ipcRenderer.on(BERTH_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(BERTH_CHANNEL, forward);
    };
  },
};

contextBridge.exposeInMainWorld('berth', bridge);
