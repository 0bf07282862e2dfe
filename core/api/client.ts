// A typed API client over any message transport: the CLI's Unix socket today, the browser's
// WebSocket later. Calls are matched to answers by id; notifications go to listeners.
import { ApiError } from './errors.ts';
import type { JsonRpcNotification, JsonRpcResponse } from './jsonrpc.ts';
import type { ApiMethod, ParamsOf, ResultOf } from './methods.ts';
import type {
  ApiEvents,
  SessionExit,
  SessionOutput,
  TerminalExit,
  TerminalOutput,
} from './types.ts';

/** Moves whole JSON texts; the transport does the framing. */
export interface ApiTransport {
  send(text: string): void;
  onMessage(listener: (text: string) => void): void;
  /** Called once when the connection is gone, with why. */
  onClose(listener: (why: Error) => void): void;
  close(): void;
}

export interface ApiNotifications extends ApiEvents {
  'session.output': SessionOutput;
  'session.exit': SessionExit;
  'terminal.output': TerminalOutput;
  'terminal.exit': TerminalExit;
}

type NotificationName = keyof ApiNotifications;
const NOTIFICATION_METHOD: Record<string, NotificationName> = {
  'event.state': 'state',
  'event.progress': 'progress',
  'event.serial': 'serial',
  'event.settings': 'settings',
  'event.engine': 'engine',
  'session.output': 'session.output',
  'session.exit': 'session.exit',
  'terminal.output': 'terminal.output',
  'terminal.exit': 'terminal.exit',
};

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class ApiClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<NotificationName, Set<(payload: never) => void>>();
  private closedWith: Error | null = null;
  private readonly closeListeners = new Set<(why: Error) => void>();

  constructor(private readonly transport: ApiTransport) {
    transport.onMessage((text) => this.receive(text));
    transport.onClose((why) => {
      this.closedWith = why;
      for (const call of this.pending.values()) call.reject(why);
      this.pending.clear();
      for (const listener of this.closeListeners) listener(why);
    });
  }

  /** Calls a method; params may be left out when every one of them is optional. */
  call<M extends ApiMethod>(
    method: M,
    ...args: Record<string, never> extends ParamsOf<M>
      ? [params?: ParamsOf<M>]
      : [params: ParamsOf<M>]
  ): Promise<ResultOf<M>> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.transport.send(JSON.stringify({ jsonrpc: '2.0', id, method, params: args[0] ?? {} }));
    });
  }

  on<N extends NotificationName>(
    name: N,
    listener: (payload: ApiNotifications[N]) => void,
  ): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  onClose(listener: (why: Error) => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.transport.close();
  }

  private receive(text: string): void {
    let message: JsonRpcResponse | JsonRpcNotification;
    try {
      message = JSON.parse(text);
    } catch {
      return; // the supervisor only sends JSON; a torn line means the connection is closing
    }
    if (typeof message !== 'object' || message === null) return; // not a JSON-RPC message
    if ('method' in message) {
      const name = NOTIFICATION_METHOD[message.method];
      if (!name) return;
      for (const listener of this.listeners.get(name) ?? []) listener(message.params as never);
      return;
    }
    if (typeof message.id !== 'number') return;
    const call = this.pending.get(message.id);
    if (!call) return;
    this.pending.delete(message.id);
    if ('error' in message)
      call.reject(new ApiError(message.error.code, message.error.message, message.error.data));
    else call.resolve(message.result);
  }
}
