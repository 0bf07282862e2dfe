// One terminal view's session: opens a pty through a channel, pipes bytes both ways, and when the
// session ends (the shell exited, the VM stopped, the connection dropped) says so in the terminal
// and opens a new one on Enter. No DOM here: the terminal is anything with xterm's few members.
import { ErrorCode } from '../../../core/api/errors.ts';
import type { PtySize } from '../../../core/api/types.ts';
import type { PtyChannel } from './pty-channel.ts';

/** The members of xterm's Terminal a session uses. */
export interface TerminalLike {
  readonly cols: number;
  readonly rows: number;
  write(data: string | Uint8Array): void;
  onData(listener: (data: string) => void): { dispose(): void };
}

export type PtySessionState = 'idle' | 'opening' | 'open' | 'ended' | 'unavailable';

export const SESSION_ENDED = '[session ended — press Enter to reconnect]';

/** A note in the terminal, dimmed so it reads as ours and not the shell's. */
export function note(text: string): string {
  return `\r\n\x1b[2m${text}\x1b[0m\r\n`;
}

export class PtySession {
  private current: PtySessionState = 'idle';
  private id: number | null = null;
  /** Output that arrived for ids before open() answered (dropped unless one of them is ours). */
  private early = new Map<number, Uint8Array[]>();
  /** Keys typed while the session was opening: sent once it is open, as a terminal would. */
  private typeAhead: string[] = [];
  private readonly listeners = new Set<(state: PtySessionState) => void>();
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly term: TerminalLike,
    private readonly channel: PtyChannel,
  ) {
    const data = term.onData((text) => this.input(text));
    this.disposers.push(
      () => data.dispose(),
      channel.onOutput((id, bytes) => this.output(id, bytes)),
      channel.onExit((id) => {
        if (id === this.id) this.finish(SESSION_ENDED);
      }),
    );
  }

  get state(): PtySessionState {
    return this.current;
  }

  onState(listener: (state: PtySessionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Opens a session unless one is open or opening. */
  async open(): Promise<void> {
    if (this.current === 'open' || this.current === 'opening') return;
    this.setState('opening');
    this.early.clear();
    this.typeAhead = [];
    const size: PtySize = { cols: this.term.cols, rows: this.term.rows };
    try {
      const id = await this.channel.open(size);
      if (!this.stillOpening()) {
        void this.channel.close(id).catch(() => {}); // ended or disposed while it was opening
        return;
      }
      this.id = id;
      this.setState('open');
      for (const bytes of this.early.get(id) ?? []) this.term.write(bytes);
      this.early.clear();
      for (const text of this.typeAhead.splice(0)) this.input(text);
      // The view may have been resized while the session was opening.
      if (this.term.cols !== size.cols || this.term.rows !== size.rows) {
        this.resize({ cols: this.term.cols, rows: this.term.rows });
      }
    } catch (error) {
      if (!this.stillOpening()) return;
      const code = (error as { code?: unknown }).code;
      if (code === ErrorCode.methodNotFound) {
        this.setState('unavailable');
        return;
      }
      this.term.write(note(`[could not open a session: ${(error as Error).message}]`));
      this.term.write(note('[press Enter to try again]'));
      this.setState('ended');
    }
  }

  /** Ends the session from this side (the VM stopped, the connection dropped), with a note. */
  end(text: string): void {
    if (this.current === 'unavailable') return;
    const id = this.id;
    if (id !== null) void this.channel.close(id).catch(() => {});
    this.finish(text);
  }

  resize(size: PtySize): void {
    if (this.current !== 'open' || this.id === null) return;
    void this.channel.resize(this.id, size).catch(() => {});
  }

  dispose(): void {
    const id = this.id;
    this.id = null;
    this.current = 'idle';
    if (id !== null) void this.channel.close(id).catch(() => {});
    for (const dispose of this.disposers.splice(0)) dispose();
    this.listeners.clear();
  }

  /** Read through a method: TypeScript would otherwise keep its narrowing across the await. */
  private stillOpening(): boolean {
    return this.current === 'opening';
  }

  private input(text: string): void {
    if (this.current === 'open' && this.id !== null) {
      const id = this.id;
      this.channel.write(id, text).catch((error: Error) => {
        if (this.id === id) this.finish(`[the session stopped taking input: ${error.message}]`);
      });
    } else if (this.current === 'opening') {
      this.typeAhead.push(text);
    } else if (this.current === 'ended' && text.includes('\r')) {
      void this.open();
    }
  }

  private output(id: number, bytes: Uint8Array): void {
    if (id === this.id) this.term.write(bytes);
    else if (this.current === 'opening') {
      const list = this.early.get(id) ?? [];
      list.push(bytes);
      this.early.set(id, list);
    }
  }

  private finish(text: string): void {
    const wasEnded = this.current === 'ended';
    this.id = null;
    if (!wasEnded) this.term.write(note(text));
    this.setState('ended');
  }

  private setState(state: PtySessionState): void {
    if (this.current === state) return;
    this.current = state;
    for (const listener of [...this.listeners]) listener(state);
  }
}
