// One SSH connection to the guest's dropbear over vsock (ssh2 on the host), on which commands and
// shells are opened as channels. The transport is our own vsock device behind a 0600 socket, so
// the guest's host key (made on its first boot) is accepted as presented.
import type { Socket } from 'node:net';
import ssh2 from 'ssh2';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;
import { connectGuestPort } from './hybrid-vsock.ts';
import type { GuestSshKey } from './ssh-keys.ts';

export const GUEST_SSH_PORT = 22;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal: string | null;
}

export class GuestSsh {
  private constructor(private readonly client: Client) {}

  static async connect(udsPath: string, key: GuestSshKey, timeoutMs = 20_000): Promise<GuestSsh> {
    const sock: Socket = await connectGuestPort(udsPath, GUEST_SSH_PORT, timeoutMs);
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (error) =>
        reject(new Error(`ssh to the guest failed: ${error.message}`)),
      );
      client.connect({
        sock,
        username: 'root',
        privateKey: key.privateKey,
        readyTimeout: timeoutMs,
        hostVerifier: () => true,
      });
    });
    return new GuestSsh(client);
  }

  /** Runs a command; stdin (if given) is written and closed. */
  exec(command: string, stdin?: Buffer | string): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(error);
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
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
