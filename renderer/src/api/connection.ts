// The renderer's one connection to Berth, kept alive: an ApiClient lives only as long as its
// transport, so after a close this dials again (with backoff), re-attaches every notification
// listener to the new client and subscribes to all events again. Pages talk to this, never to a
// client, so a reconnect is invisible to them except through `link` state.
import { ApiClient, type ApiNotifications, type ApiTransport } from '../../../core/api/client.ts';
import type { ApiMethod, ParamsOf, ResultOf } from '../../../core/api/methods.ts';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.ts';

export type NotificationName = keyof ApiNotifications;

/** The same optional-params rule as ApiClient.call. */
export type CallArgs<M extends ApiMethod> =
  Record<string, never> extends ParamsOf<M> ? [params?: ParamsOf<M>] : [params: ParamsOf<M>];

/** What pages and stores need from the connection (tests give a fake). */
export interface Api {
  call<M extends ApiMethod>(method: M, ...args: CallArgs<M>): Promise<ResultOf<M>>;
  on<N extends NotificationName>(
    name: N,
    listener: (payload: ApiNotifications[N]) => void,
  ): () => void;
  /** Runs after every (re)connect, once events are subscribed; returns the unsubscribe. */
  onConnect(listener: () => void): () => void;
}

export type LinkState = 'connecting' | 'connected' | 'disconnected';

export interface LinkInfo {
  state: LinkState;
  /** Why the last connection failed or closed. */
  reason?: string;
  /** When the next attempt is due (ms since the epoch), while disconnected. */
  retryAt?: number;
}

/** Opens a transport, resolving once it can carry messages. */
export type Dial = () => Promise<ApiTransport>;

export interface ConnectionOptions {
  backoff?: BackoffOptions;
  random?: () => number;
  now?: () => number;
  setTimer?: (run: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export class NotConnectedError extends Error {
  constructor() {
    super('not connected to Berth (reconnecting)');
    this.name = 'NotConnectedError';
  }
}

type Listener = (payload: never) => void;

export class Connection implements Api {
  private client: ApiClient | null = null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = false;
  private readonly listeners = new Map<NotificationName, Set<Listener>>();
  private readonly connectListeners = new Set<() => void>();
  private readonly linkListeners = new Set<(info: LinkInfo) => void>();
  private info: LinkInfo = { state: 'connecting' };
  private readonly options: Required<ConnectionOptions>;

  constructor(
    private readonly dial: Dial,
    options: ConnectionOptions = {},
  ) {
    this.options = {
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      random: options.random ?? Math.random,
      now: options.now ?? Date.now,
      setTimer: options.setTimer ?? ((run, ms) => setTimeout(run, ms)),
      clearTimer:
        options.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>)),
    };
  }

  get link(): LinkInfo {
    return this.info;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  /** Skips the rest of the backoff wait. */
  retryNow(): void {
    if (this.info.state !== 'disconnected' || this.stopped) return;
    this.cancelTimer();
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
    this.client?.close();
    this.client = null;
  }

  call<M extends ApiMethod>(method: M, ...args: CallArgs<M>): Promise<ResultOf<M>> {
    if (!this.client) return Promise.reject(new NotConnectedError());
    return this.client.call(method, ...args);
  }

  on<N extends NotificationName>(
    name: N,
    listener: (payload: ApiNotifications[N]) => void,
  ): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      this.listeners.set(name, (set = new Set()));
      if (this.client) this.attach(this.client, name);
    }
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  onConnect(listener: () => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  onLink(listener: (info: LinkInfo) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  private async connect(): Promise<void> {
    this.setLink({ state: 'connecting' });
    let transport: ApiTransport;
    try {
      transport = await this.dial();
    } catch (error) {
      this.retryLater(error);
      return;
    }
    if (this.stopped) {
      transport.close();
      return;
    }
    const client = new ApiClient(transport);
    this.client = client;
    client.onClose((why) => {
      if (this.client !== client) return;
      this.client = null;
      this.retryLater(why);
    });
    for (const name of this.listeners.keys()) this.attach(client, name);
    try {
      await client.call('subscribe', {});
    } catch (error) {
      // A close is handled by onClose; any other refusal leaves a usable, if quiet, connection.
      if (this.client !== client) return;
      console.warn('berth: subscribe failed', error);
    }
    if (this.client !== client) return;
    this.attempt = 0;
    this.setLink({ state: 'connected' });
    for (const listener of [...this.connectListeners]) listener();
  }

  private attach(client: ApiClient, name: NotificationName): void {
    client.on(name, (payload) => {
      for (const listener of [...(this.listeners.get(name) ?? [])]) listener(payload as never);
    });
  }

  private retryLater(error: unknown): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++, this.options.backoff, this.options.random);
    this.setLink({
      state: 'disconnected',
      reason: error instanceof Error ? error.message : String(error),
      retryAt: this.options.now() + delay,
    });
    this.cancelTimer();
    this.timer = this.options.setTimer(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.options.clearTimer(this.timer);
    this.timer = null;
  }

  private setLink(info: LinkInfo): void {
    this.info = info;
    for (const listener of [...this.linkListeners]) listener(info);
  }
}
