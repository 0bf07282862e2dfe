// The guest sessions of one API client: shells (with a pty, for `berth console` and the UI's
// console) and commands (for `berth exec`), each an SSH channel on the supervisor's one guest
// connection. Output goes out as notifications; everything a client opened is closed when it
// goes away, so a dropped client never leaves shells running in the VM.
import type { ClientChannel } from 'ssh2';
import { ApiError, ErrorCode } from '../api/errors.ts';
import type { ParamsOf } from '../api/methods.ts';
import type { SessionExit, SessionOutput } from '../api/types.ts';
import type { GuestSsh } from '../guest/ssh-session.ts';

/** How many sessions one client may hold at once. */
export const MAX_SESSIONS_PER_CLIENT = 32;
const DEFAULT_PTY = { cols: 80, rows: 24 };

export interface SessionSink {
  output(event: SessionOutput): void;
  exit(event: SessionExit): void;
  /** False when the client is not keeping up; the sessions pause until `onDrain`. */
  readonly writable: boolean;
  onDrain(listener: () => void): void;
}

export class GuestSessions {
  private nextId = 1;
  private readonly channels = new Map<number, ClientChannel>();
  /**
   * Channels closed but not yet gone. dropbear may refuse a channel opened while one it is still
   * tearing down runs a command ("Unable to exec"), so a new open waits for these first.
   */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;
  /** Opens under way count against the limit too, so parallel opens cannot exceed it. */
  private opening = 0;

  constructor(
    private readonly ssh: () => Promise<GuestSsh>,
    private readonly sink: SessionSink,
  ) {
    sink.onDrain(() => {
      for (const channel of this.channels.values()) channel.resume();
    });
  }

  async open(params: ParamsOf<'session.open'>): Promise<{ id: number }> {
    if (this.channels.size + this.opening >= MAX_SESSIONS_PER_CLIENT) {
      throw new ApiError(
        ErrorCode.session,
        `this client already has ${MAX_SESSIONS_PER_CLIENT} sessions open; close one first`,
      );
    }
    this.opening++;
    let channel: ClientChannel;
    try {
      await Promise.all(this.closing);
      const ssh = await this.ssh();
      channel =
        params.command === undefined
          ? await ssh.openShell({ ...DEFAULT_PTY, ...params.pty })
          : await ssh.openExec(params.command, params.pty ? { pty: params.pty } : {});
    } catch (error) {
      if (error instanceof ApiError) throw error; // e.g. the VM is not running
      throw new ApiError(
        ErrorCode.session,
        `cannot open a ${params.command === undefined ? 'shell' : 'command'} in the VM: ${(error as Error).message}`,
      );
    } finally {
      this.opening--;
    }
    const id = this.nextId++;
    if (this.closed) {
      channel.close();
      throw new ApiError(ErrorCode.session, 'the client went away');
    }
    this.channels.set(id, channel);
    this.wire(id, channel);
    return { id };
  }

  write(params: ParamsOf<'session.write'>): Record<string, never> {
    this.channel(params.id).write(Buffer.from(params.data, 'base64'));
    return {};
  }

  eof(params: ParamsOf<'session.eof'>): Record<string, never> {
    this.channel(params.id).end();
    return {};
  }

  resize(params: ParamsOf<'session.resize'>): Record<string, never> {
    // ssh2's setWindow takes rows first; pixel sizes are not known and 0 means "unknown".
    this.channel(params.id).setWindow(params.rows, params.cols, 0, 0);
    return {};
  }

  close(params: ParamsOf<'session.close'>): Record<string, never> {
    const channel = this.channel(params.id);
    const gone = new Promise<void>((resolve) => {
      channel.once('close', () => resolve());
      setTimeout(resolve, 2000).unref(); // never let a lost close block later opens for long
    }).then(() => void this.closing.delete(gone));
    this.closing.add(gone);
    channel.close();
    return {};
  }

  /** The client went away: close everything it opened. */
  closeAll(): void {
    this.closed = true;
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }

  private channel(id: number): ClientChannel {
    const channel = this.channels.get(id);
    if (!channel) {
      throw new ApiError(
        ErrorCode.session,
        `no session ${id} (it has ended, or was never opened here)`,
      );
    }
    return channel;
  }

  private wire(id: number, channel: ClientChannel): void {
    const forward = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
      this.sink.output({ id, stream, data: data.toString('base64') });
      if (!this.sink.writable) channel.pause();
    };
    channel.on('data', forward('stdout'));
    channel.stderr.on('data', forward('stderr'));
    let code: number | null = null;
    let signal: string | null = null;
    channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
      code = exitCode ?? null;
      signal = exitSignal ?? null;
    });
    channel.on('close', () => {
      if (this.channels.get(id) !== channel) return;
      this.channels.delete(id);
      this.sink.exit({ id, code, signal });
    });
  }
}
