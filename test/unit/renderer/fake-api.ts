// An Api (renderer/src/api/connection.ts) for tests: methods answer from handlers the test sets
// (or stay pending), notifications and (re)connects are fired by the test.
import type { ApiNotifications } from '../../../core/api/client.ts';
import type { ApiMethod, ParamsOf, ResultOf } from '../../../core/api/methods.ts';
import type { Api, CallArgs, NotificationName } from '../../../renderer/src/api/connection.ts';

type Handler<M extends ApiMethod> = (params: ParamsOf<M>) => ResultOf<M> | Promise<ResultOf<M>>;

export class FakeApi implements Api {
  readonly calls: { method: ApiMethod; params: unknown }[] = [];
  private readonly handlers = new Map<ApiMethod, Handler<any>>();
  private readonly listeners = new Map<NotificationName, Set<(payload: any) => void>>();
  private readonly connectListeners = new Set<() => void>();

  handle<M extends ApiMethod>(method: M, handler: Handler<M>): this {
    this.handlers.set(method, handler);
    return this;
  }

  call<M extends ApiMethod>(method: M, ...args: CallArgs<M>): Promise<ResultOf<M>> {
    const params = args[0] ?? {};
    this.calls.push({ method, params });
    const handler = this.handlers.get(method);
    if (!handler) return new Promise(() => {}); // never answered
    try {
      return Promise.resolve(handler(params));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  on<N extends NotificationName>(
    name: N,
    listener: (payload: ApiNotifications[N]) => void,
  ): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  onConnect(listener: () => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  emit<N extends NotificationName>(name: N, payload: ApiNotifications[N]): void {
    for (const listener of this.listeners.get(name) ?? []) listener(payload);
  }

  connect(): void {
    for (const listener of this.connectListeners) listener();
  }

  listenerCount(name: NotificationName): number {
    return this.listeners.get(name)?.size ?? 0;
  }

  callsOf(method: ApiMethod): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.params);
  }
}

/** Lets pending promise callbacks run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
