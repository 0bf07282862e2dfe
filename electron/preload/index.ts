// The preload: the renderer's only door to the main process. It exposes one small, typed object;
// every message it forwards is validated again in main.
import { contextBridge } from 'electron';

export interface BerthBridge {
  readonly platform: string;
}

const bridge: BerthBridge = { platform: process.platform };
contextBridge.exposeInMainWorld('berth', bridge);
