// The check every IPC message from a renderer passes before main acts on it (Electron security
// checklist item 17, "validate the sender of all IPC messages"): it must come from the main frame
// of one of Berth's own windows, showing a page under the renderer's file:// root, and carry one
// JSON-RPC text no longer than the API allows. Anything else is dropped and logged by the caller.
// The event is described by the few fields read, so tests pass plain objects; no electron import.
import { MAX_MESSAGE_BYTES } from '../core/api/jsonrpc.ts';
import { isRendererUrl } from './url-policy.ts';

/** The IPC channel the preload and main speak on: one JSON-RPC 2.0 message (a string) each. */
export { BERTH_CHANNEL } from './ipc-channel.ts';

/** The parts of a frame (Electron's WebFrameMain) the check reads. */
export interface FrameLike {
  readonly url: string;
  readonly parent: unknown;
  readonly frameTreeNodeId: number;
  readonly detached?: boolean;
}

/** The parts of Electron's IpcMainEvent the check reads. */
export interface IpcEventLike {
  readonly sender: {
    readonly id: number;
    readonly mainFrame: { readonly frameTreeNodeId: number };
  };
  readonly senderFrame: FrameLike | null;
}

export interface IpcPolicy {
  /** The renderer's root as a file:// URL ending in "/" (url-policy.ts directoryUrl). */
  rendererRoot: string;
  /** True for the webContents id of a window Berth created. */
  isOurWebContents(id: number): boolean;
  /** Defaults to the API's MAX_MESSAGE_BYTES. */
  maxBytes?: number;
}

export type IpcVerdict = { ok: true; text: string } | { ok: false; reason: string };

export function validateIpcMessage(
  event: IpcEventLike,
  payload: unknown,
  policy: IpcPolicy,
): IpcVerdict {
  const sender = senderProblem(event, policy);
  if (sender) return { ok: false, reason: sender };
  const maxBytes = policy.maxBytes ?? MAX_MESSAGE_BYTES;
  if (typeof payload !== 'string') {
    return { ok: false, reason: `the payload is ${describe(payload)}, not a string` };
  }
  // Each UTF-16 unit is at least one UTF-8 byte: a long string is refused without encoding it.
  if (payload.length > maxBytes || Buffer.byteLength(payload, 'utf8') > maxBytes) {
    return { ok: false, reason: `the message is longer than ${maxBytes} bytes` };
  }
  return { ok: true, text: payload };
}

/** Why the sender is not trusted, or null when it is. */
function senderProblem(event: IpcEventLike, policy: IpcPolicy): string | null {
  const frame = event.senderFrame;
  if (!frame) return 'the sending frame is gone (navigated away or destroyed)';
  if (frame.detached === true) return 'the sending frame is detached';
  if (!policy.isOurWebContents(event.sender.id)) {
    return `webContents ${event.sender.id} is not a Berth window`;
  }
  if (frame.parent !== null || frame.frameTreeNodeId !== event.sender.mainFrame.frameTreeNodeId) {
    return 'the message comes from a subframe, not the main frame';
  }
  if (!isRendererUrl(frame.url, policy.rendererRoot)) {
    return `the sending page ${JSON.stringify(clip(frame.url))} is not Berth's renderer`;
  }
  return null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
