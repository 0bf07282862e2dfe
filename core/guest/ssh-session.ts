// One SSH connection to the guest's dropbear over vsock (ssh2 on the host), on which commands and
// shells are opened as channels. The transport is our own vsock device behind a 0600 socket, so
// the guest's host key (made on its first boot) is accepted as presented.
import type { Socket } from 'node:net';
import ssh2, { type ClientChannel, type PseudoTtyOptions } from 'ssh2';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;
import { connectGuestPort } from './hybrid-vsock.ts';
import type { GuestSshKey } from './ssh-keys.ts';

export type { ClientChannel } from 'ssh2';

export const GUEST_SSH_PORT = 22;

/** xterm.js (the UI console) and every modern terminal speak it; dropbear exports it as TERM. */
export const DEFAULT_TERM = 'xterm-256color';

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal: string | null;
}

export interface PtySize {
  cols: number;
  rows: number;
  /** $TERM in the guest; DEFAULT_TERM when not given. */
  term?: string;
}

export interface ExecOptions {
  /** Run the command on a pty (for interactive programs); without it stdout and stderr are apart. */
  pty?: PtySize;
}

function ptyRequest(pty: PtySize): PseudoTtyOptions {
  if (!(Number.isInteger(pty.cols) && pty.cols > 0 && Number.isInteger(pty.rows) && pty.rows > 0))
    throw new RangeError(
      `pty size must be positive whole cols x rows (got ${pty.cols}x${pty.rows})`,
    );
  return { cols: pty.cols, rows: pty.rows, term: pty.term ?? DEFAULT_TERM };
}

export class GuestSsh {
  /** Resolves once the connection is gone (closed by us, by the guest, or the VM stopped). */
  readonly closed: Promise<void>;
  private open = true;
  /** Why the connection dropped, for the errors of channels opened afterwards. */
  private lastError: Error | null = null;

  private constructor(private readonly client: Client) {
    // A persistent listener: ssh2 emits 'error' after 'ready' too (the socket dies when the VM
    // stops), and an unheard 'error' would take the whole host process down.
    client.on('error', (error) => (this.lastError = error));
    this.closed = new Promise((resolve) =>
      client.once('close', () => {
        this.open = false;
        resolve();
      }),
    );
  }

  static async connect(udsPath: string, key: GuestSshKey, timeoutMs = 20_000): Promise<GuestSsh> {
    const sock: Socket = await connectGuestPort(udsPath, GUEST_SSH_PORT, timeoutMs);
    const client = new Client();
    // Made before connecting, so its 'close' listener cannot miss an early drop.
    const ssh = new GuestSsh(client);
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        client.removeListener('ready', onReady);
        client.end();
        reject(new Error(`ssh to the guest failed: ${why}`));
      };
      const onError = (error: Error) => fail(error.message);
      const onClose = () => fail('the guest closed the connection during the handshake');
      const onReady = () => {
        client.removeListener('error', onError);
        client.removeListener('close', onClose);
        resolve();
      };
      client.once('ready', onReady);
      client.once('error', onError);
      client.once('close', onClose);
      client.connect({
        sock,
        username: 'root',
        privateKey: key.privateKey,
        readyTimeout: timeoutMs,
        hostVerifier: () => true,
      });
    });
    return ssh;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Runs a command; stdin (if given) is written and closed. */
  exec(command: string, stdin?: Buffer | string): Promise<ExecResult> {
    return this.openExec(command).then(
      (channel) =>
        new Promise((resolve) => {
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          let code: number | null = null;
          let signal: string | null = null;
          channel.on('data', (data: Buffer) => stdout.push(data));
          channel.stderr.on('data', (data: Buffer) => stderr.push(data));
          channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
            code = exitCode;
            signal = exitSignal ?? null;
          });
          channel.on('close', () =>
            resolve({ stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), code, signal }),
          );
          if (stdin !== undefined) channel.end(stdin);
          else channel.end();
        }),
    );
  }

  /**
   * A streaming command: stdout arrives as the channel's 'data', stderr on channel.stderr, then
   * 'exit' (code, signal) and 'close'. Writing to the channel feeds the command's stdin.
   *
   * Stopping a command early: after channel.close(), wait for the channel's 'close' (keep it
   * read) before opening the next channel. The guest's dropbear can fail a channel opened while
   * it is still reaping the closed one's command ("Unable to exec"); a pty shell is not affected.
   */
  openExec(command: string, options: ExecOptions = {}): Promise<ClientChannel> {
    return this.openChannel(`exec ${JSON.stringify(command)}`, (done) => {
      if (options.pty) this.client.exec(command, { pty: ptyRequest(options.pty) }, done);
      else this.client.exec(command, done);
    });
  }

  /** An interactive login shell (root's, so /etc/profile runs) on a pty of the given size. */
  openShell(pty: PtySize): Promise<ClientChannel> {
    return this.openChannel('a shell', (done) => this.client.shell(ptyRequest(pty), done));
  }

  /**
   * A TCP connection from the guest to `host`:`port` as seen inside the VM (ssh direct-tcpip;
   * dropbear allows it by default). The channel is a duplex stream of the connection's bytes
   * with half-close both ways: end() sends EOF, 'end' is the guest side's EOF.
   */
  forwardTcp(host: string, port: number): Promise<ClientChannel> {
    if (!(Number.isInteger(port) && port > 0 && port <= 0xffff))
      return Promise.reject(new RangeError(`TCP port must be 1..65535 (got ${port})`));
    return this.openChannel(`a TCP connection to ${host}:${port}`, (done) =>
      // The originator address is only informative for the guest's logs.
      this.client.forwardOut('127.0.0.1', 0, host, port, done),
    );
  }

  close(): void {
    this.client.end();
  }

  private openChannel(
    what: string,
    request: (done: (error: Error | undefined, channel: ClientChannel) => void) => void,
  ): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`ssh: cannot open ${what} in the guest: ${why}`));
      if (!this.open) return fail(this.droppedReason());
      try {
        // ssh2 throws (rather than calling back) when the socket is already gone.
        request((error, channel) => (error ? fail(error.message) : resolve(channel)));
      } catch (error) {
        fail(this.open ? (error as Error).message : this.droppedReason());
      }
    });
  }

  private droppedReason(): string {
    const why = this.lastError ? ` (${this.lastError.message})` : '';
    return `the connection to the guest has closed${why}`;
  }
}
