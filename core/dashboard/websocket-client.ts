// One dashboard page's WebSocket as an API client: each text frame is one JSON-RPC 2.0 message
// in, each answer or notification one text frame out, handled by its own ApiDispatch (so its
// subscriptions, guest sessions and host terminals end with it).
import type { RawData, WebSocket } from 'ws';
import { ErrorCode } from '../api/errors.ts';
import { failure, RequestError } from '../api/jsonrpc.ts';
import type { TerminalFlow, TerminalSink } from '../host-terminal/host-terminals.ts';
import {
  ApiDispatch,
  type ClientChannelOut,
  type HostTerminalsForClient,
} from '../supervisor/api-dispatch.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';

/** Output buffered per client before its sessions and terminals pause (as on the control socket). */
const HIGH_WATER_BYTES = 1024 * 1024;
/** ws has no 'drain' event; while a client is behind, its buffer is looked at this often. */
const DRAIN_POLL_MS = 25;

export type TerminalsFactory = (sink: TerminalSink, flow: TerminalFlow) => HostTerminalsForClient;

export interface ClientCapabilities {
  terminals: TerminalsFactory | null;
  dashboard: () => Promise<{ url: string }>;
}

export function serveWebSocket(
  ws: WebSocket,
  supervisor: Supervisor,
  capabilities: ClientCapabilities,
): void {
  const drainListeners: (() => void)[] = [];
  let poll: ReturnType<typeof setInterval> | null = null;
  const stopPolling = () => {
    if (poll) clearInterval(poll);
    poll = null;
  };
  const out: ClientChannelOut & TerminalFlow = {
    send: (text) => {
      if (ws.readyState === ws.OPEN) ws.send(text);
    },
    get writable() {
      const ok = ws.bufferedAmount < HIGH_WATER_BYTES;
      // Whoever asks is about to pause: watch the buffer until it has room again.
      if (!ok && !poll) {
        poll = setInterval(() => {
          if (ws.readyState !== ws.OPEN) return stopPolling();
          if (ws.bufferedAmount >= HIGH_WATER_BYTES) return;
          stopPolling();
          for (const listener of drainListeners) listener();
        }, DRAIN_POLL_MS);
      }
      return ok;
    },
    onDrain: (listener) => void drainListeners.push(listener),
  };
  const { terminals } = capabilities;
  const dispatch = new ApiDispatch(supervisor, out, {
    terminals: terminals ? (sink) => terminals(sink, out) : undefined,
    dashboard: capabilities.dashboard,
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      const error = new RequestError(
        null,
        ErrorCode.invalidRequest,
        'send each JSON-RPC message as one text frame',
      );
      out.send(JSON.stringify(failure(null, error)));
      return;
    }
    void dispatch.handle(text(data));
  });
  ws.on('error', () => {}); // a page going away mid-frame is normal; 'close' cleans up
  ws.on('close', () => {
    stopPolling();
    dispatch.close();
  });
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
