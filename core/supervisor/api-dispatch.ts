// One API client's requests, whatever carries them (the control socket, Electron IPC, the
// browser's WebSocket): parse, check the params, call the supervisor, answer. Events the client
// subscribed to and its sessions' output leave as notifications through `send`.
import { ApiError, ErrorCode } from '../api/errors.ts';
import {
  failure,
  isRequest,
  notification,
  parseRequest,
  RequestError,
  success,
} from '../api/jsonrpc.ts';
import { checkParams, isApiMethod, type ApiMethod, type ParamsOf } from '../api/methods.ts';
import { API_EVENT_TYPES, type ApiEventType } from '../api/types.ts';
import { GuestSessions, type SessionSink } from './guest-sessions.ts';
import type { Supervisor } from './supervisor.ts';

export interface ClientChannelOut {
  send(text: string): void;
  /** False while the transport's buffer is full (sessions pause their output). */
  readonly writable: boolean;
  onDrain(listener: () => void): void;
}

export class ApiDispatch {
  private readonly unsubscribe: (() => void)[] = [];
  private readonly subscribed = new Set<ApiEventType>();
  private readonly sessions: GuestSessions;
  private closed = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly out: ClientChannelOut,
  ) {
    const sink: SessionSink = {
      output: (event) => this.notify('session.output', event),
      exit: (event) => this.notify('session.exit', event),
      get writable() {
        return out.writable;
      },
      onDrain: (listener) => out.onDrain(listener),
    };
    this.sessions = new GuestSessions(() => supervisor.guestSsh(), sink);
  }

  /** Handles one message (a JSON text); answers requests, ignores nothing silently. */
  async handle(text: string): Promise<void> {
    let message;
    try {
      message = parseRequest(text);
    } catch (error) {
      const id = error instanceof RequestError ? error.id : null;
      this.reply(failure(id, error));
      return;
    }
    const id = isRequest(message) ? message.id : null;
    try {
      if (!isApiMethod(message.method)) {
        throw new ApiError(
          ErrorCode.methodNotFound,
          `no method ${JSON.stringify(message.method)}; see core/api/methods.ts for the API`,
        );
      }
      const result = await this.call(message.method, message.params);
      if (id !== null) this.reply(success(id, result));
    } catch (error) {
      // A notification gets no answer even when it fails (JSON-RPC 2.0).
      if (id !== null) this.reply(failure(id, error));
    }
  }

  /** The client went away: drop its subscriptions and close its sessions. */
  close(): void {
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.sessions.closeAll();
  }

  private async call(method: ApiMethod, raw: unknown): Promise<unknown> {
    const s = this.supervisor;
    switch (method) {
      case 'status':
        checkParams(method, raw);
        return s.status();
      case 'start':
        checkParams(method, raw);
        return s.start();
      case 'stop':
        return s.stop(checkParams(method, raw));
      case 'restart':
        return s.restart(checkParams(method, raw));
      case 'reset':
        return s.reset(checkParams(method, raw));
      case 'settings.get':
        checkParams(method, raw);
        return s.settingsView();
      case 'settings.set':
        return s.setSettings(checkParams(method, raw));
      case 'settings.history':
        return s.settingsHistory(checkParams(method, raw));
      case 'settings.rollback':
        return s.rollbackSettings(checkParams(method, raw));
      case 'logs':
        return s.logs(checkParams(method, raw));
      case 'subscribe':
        return this.subscribe(checkParams(method, raw));
      case 'session.open':
        return this.sessions.open(checkParams(method, raw));
      case 'session.write':
        return this.sessions.write(checkParams(method, raw));
      case 'session.eof':
        return this.sessions.eof(checkParams(method, raw));
      case 'session.resize':
        return this.sessions.resize(checkParams(method, raw));
      case 'session.close':
        return this.sessions.close(checkParams(method, raw));
    }
  }

  private subscribe(params: ParamsOf<'subscribe'>): { events: ApiEventType[] } {
    for (const type of params.events ?? API_EVENT_TYPES) {
      if (this.subscribed.has(type)) continue;
      this.subscribed.add(type);
      this.unsubscribe.push(
        this.supervisor.on(type, (payload) => this.notify(`event.${type}`, payload)),
      );
    }
    return { events: [...this.subscribed] };
  }

  private notify(method: string, params: unknown): void {
    if (!this.closed) this.out.send(JSON.stringify(notification(method, params)));
  }

  private reply(message: unknown): void {
    if (!this.closed) this.out.send(JSON.stringify(message));
  }
}
