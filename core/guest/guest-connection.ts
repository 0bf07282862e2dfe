// The host's one SSH connection to the running guest, shared by everything that opens channels
// (debug shells, the UI console, `berth exec`). It connects on first use, lets concurrent callers
// share a single connect, and connects again when the previous connection dropped (the VM
// restarted). close() is for when the VM stops: later callers get a plain "not running" error.
import { GuestSsh, type ClientChannel } from './ssh-session.ts';
import type { GuestSshKey } from './ssh-keys.ts';

export const DEFAULT_GUEST_CONNECT_TIMEOUT_MS = 20_000;
const CONNECT_RETRY_DELAY_MS = 500;

export class GuestNotRunningError extends Error {
  constructor() {
    super('the VM is not running (start it with `berth start`)');
    this.name = 'GuestNotRunningError';
  }
}

export class GuestConnection {
  private current: GuestSsh | null = null;
  private connecting: Promise<GuestSsh> | null = null;
  private closed = false;

  constructor(
    private readonly vsockPath: string,
    private readonly key: GuestSshKey,
    private readonly connectTimeoutMs = DEFAULT_GUEST_CONNECT_TIMEOUT_MS,
  ) {}

  /** The open connection, making one if there is none. */
  ssh(): Promise<GuestSsh> {
    if (this.closed) return Promise.reject(new GuestNotRunningError());
    if (this.current?.isOpen) return Promise.resolve(this.current);
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** A TCP connection to `port` on the guest's loopback (e.g. a container's published port). */
  async forwardTcp(port: number): Promise<ClientChannel> {
    return (await this.ssh()).forwardTcp('127.0.0.1', port);
  }

  /** Ends the connection (and its channels); ssh() rejects from now on. */
  close(): void {
    this.closed = true;
    this.current?.close();
    this.current = null;
  }

  private async connect(): Promise<GuestSsh> {
    let ssh: GuestSsh;
    try {
      ssh = await GuestSsh.connect(this.vsockPath, this.key, this.connectTimeoutMs).catch(
        async (first: unknown) => {
          // One retry after a short pause: a connection refused or reset in the moment right
          // after the guest said READY (or while it is busy) should not cost the user a shell.
          if (this.closed) throw first;
          await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_DELAY_MS));
          if (this.closed) throw first;
          return GuestSsh.connect(this.vsockPath, this.key, this.connectTimeoutMs);
        },
      );
    } catch (error) {
      if (this.closed) throw new GuestNotRunningError();
      throw new Error(
        `cannot reach the VM's SSH service: ${(error as Error).message}. ` +
          'Check that the VM is running and has finished booting; if it is, restart it.',
        { cause: error },
      );
    }
    // close() came while we were connecting: do not leave a connection nobody will end.
    if (this.closed) {
      ssh.close();
      throw new GuestNotRunningError();
    }
    this.current = ssh;
    return ssh;
  }
}
