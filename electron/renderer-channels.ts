// One API dispatch per renderer (webContents), made on its first message and closed when the
// page goes away: the window closes, its renderer crashes, or it loads a new document (a reload),
// so a reloaded page starts without the old page's subscriptions, sessions and host terminals.
// Generic over the dispatch so the tests need neither Electron nor a supervisor.

export interface RendererDispatch {
  handle(text: string): Promise<void>;
  close(): void;
}

export class RendererChannels<D extends RendererDispatch> {
  private readonly channels = new Map<number, D>();

  constructor(private readonly onError: (id: number, error: unknown) => void = () => {}) {}

  /** Hands `text` to the dispatch of renderer `id`, opening one with `open` if it has none. */
  deliver(id: number, text: string, open: () => D): void {
    let dispatch = this.channels.get(id);
    if (!dispatch) {
      dispatch = open();
      this.channels.set(id, dispatch);
    }
    dispatch.handle(text).catch((error: unknown) => this.onError(id, error));
  }

  /** The renderer's page is gone: close its dispatch (a later message opens a new one). */
  reset(id: number): void {
    const dispatch = this.channels.get(id);
    if (!dispatch) return;
    this.channels.delete(id);
    dispatch.close();
  }

  closeAll(): void {
    for (const id of [...this.channels.keys()]) this.reset(id);
  }

  has(id: number): boolean {
    return this.channels.has(id);
  }

  get size(): number {
    return this.channels.size;
  }
}
