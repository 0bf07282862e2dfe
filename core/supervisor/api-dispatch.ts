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
import {
  API_EVENT_TYPES,
  type ApiEventType,
  type TerminalExit,
  type TerminalOutput,
} from '../api/types.ts';
import { GuestSessions, type SessionSink } from './guest-sessions.ts';
import type { Supervisor } from './supervisor.ts';

export interface ClientChannelOut {
  send(text: string): void;
  /** False while the transport's buffer is full (sessions pause their output). */
  readonly writable: boolean;
  onDrain(listener: () => void): void;
}

/**
 * What a host adds beside the supervisor: the desktop app and the dashboard serve a host
 * terminal and can open the dashboard; the bare control socket serves neither.
 */
export interface HostCapabilities {
  /** Host terminals for one client, closed with it. */
  terminals?: (out: {
    output: (e: TerminalOutput) => void;
    exit: (e: TerminalExit) => void;
  }) => HostTerminalsForClient;
  dashboard?: () => Promise<{ url: string }>;
}

export interface HostTerminalsForClient {
  open(params: ParamsOf<'terminal.open'>): Promise<{ id: number }> | { id: number };
  write(params: ParamsOf<'terminal.write'>): Record<string, never>;
  resize(params: ParamsOf<'terminal.resize'>): Record<string, never>;
  close(params: ParamsOf<'terminal.close'>): Record<string, never>;
  closeAll(): void;
}

export class ApiDispatch {
  private readonly unsubscribe: (() => void)[] = [];
  private readonly subscribed = new Set<ApiEventType>();
  private readonly sessions: GuestSessions;
  private readonly terminals: HostTerminalsForClient | null;
  private closed = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly out: ClientChannelOut,
    private readonly host: HostCapabilities = {},
  ) {
    this.terminals =
      host.terminals?.({
        output: (event) => this.notify('terminal.output', event),
        exit: (event) => this.notify('terminal.exit', event),
      }) ?? null;
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
    this.terminals?.closeAll();
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
      case 'stats':
        checkParams(method, raw);
        return s.stats();
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
      case 'terminal.open':
        return this.hostTerminals().open(checkParams(method, raw));
      case 'terminal.write':
        return this.hostTerminals().write(checkParams(method, raw));
      case 'terminal.resize':
        return this.hostTerminals().resize(checkParams(method, raw));
      case 'terminal.close':
        return this.hostTerminals().close(checkParams(method, raw));
      case 'dashboard.open':
        checkParams(method, raw);
        if (!this.host.dashboard) throw notServedHere('the dashboard');
        return this.host.dashboard();
    }
  }

  private hostTerminals(): HostTerminalsForClient {
    if (!this.terminals) throw notServedHere('the host terminal');
    return this.terminals;
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

function notServedHere(what: string): ApiError {
  return new ApiError(
    ErrorCode.methodNotFound,
    `${what} is served by the desktop app and the dashboard, not by this connection`,
  );
}
