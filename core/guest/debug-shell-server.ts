// run/debug-shell.sock: every connection gets its own root shell in the VM, raw bytes both ways,
// so `nc -U run/debug-shell.sock` or `socat - UNIX-CONNECT:run/debug-shell.sock` is a terminal
// into the guest (as Docker Desktop's debug shell was). Anyone who can connect is root in the VM,
// so the socket is 0600 (in the 0700 run directory).
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ClientChannel, GuestSsh } from './ssh-session.ts';

/** A raw socket cannot say its size; 80x24 is what every terminal assumes without being told. */
const SESSION_PTY = { cols: 80, rows: 24 };

export class DebugShellServer {
  private readonly connections = new Set<Socket>();
  private readonly channels = new Set<ClientChannel>();
  private closing = false;

  private constructor(
    private readonly server: Server,
    private readonly path: string,
    private readonly socketIno: number,
    private readonly shells: () => Promise<GuestSsh>,
  ) {
    server.on('connection', (socket) => void this.serve(socket));
  }

  /**
   * Listens at `path` (mode 0600). A stale socket file left by a crash is replaced; a socket that
   * another process is listening on is not.
   */
  static async listen(path: string, shells: () => Promise<GuestSsh>): Promise<DebugShellServer> {
    await removeStaleSocket(path);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new Error(`debug shell: cannot listen on ${path}: ${error.message}`)),
      );
      server.listen(path, () => resolve());
      // Node binds synchronously inside listen(), so the socket has the umask's mode for only
      // microseconds (and the 0700 run directory keeps others out even then). Only when the bind
      // worked: otherwise the file at `path` is someone else's.
      if (server.listening) chmodSync(path, 0o600);
    });
    server.removeAllListeners('error');
    server.on('error', (error) => console.error(`berth: debug shell ${path}:`, error));
    return new DebugShellServer(server, path, statSync(path).ino, shells);
  }

  /** Connections open now (each with its shell, or waiting for one). */
  get sessions(): number {
    return this.connections.size;
  }

  /** Stops listening, ends every session and removes the socket file. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const channel of this.channels) channel.close();
    for (const socket of this.connections) socket.destroy();
    await stopped;
    // Node removes the file itself on close; a file that is no longer ours is left alone.
    try {
      if (lstatSync(this.path).ino === this.socketIno) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  private async serve(socket: Socket): Promise<void> {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    // A client that goes away mid-write is a normal end of its session, not an error to report
    // (the socket closes itself after an error, which ends the shell below).
    socket.on('error', () => {});

    let channel: ClientChannel;
    try {
      channel = await (await this.shells()).openShell(SESSION_PTY);
    } catch (error) {
      const reason = (error as Error).message.replace(/\s+/g, ' ');
      socket.end(`berth: cannot open a shell in the VM: ${reason}\r\n`);
      return;
    }
    if (socket.destroyed || this.closing) {
      channel.close();
      socket.destroy();
      return;
    }
    this.channels.add(channel);
    // Every chunk is written on arrival (no batching: one key is one packet), and the source
    // pauses while the other side is slow, so a flood of output cannot pile up in memory.
    socket.on('data', (keys: Buffer) => {
      // After the shell ended, keys still in flight are dropped: writing to an ended channel
      // is an error.
      if (!channel.writable) return;
      if (!channel.write(keys)) {
        socket.pause();
        channel.once('drain', () => socket.resume());
      }
    });
    channel.pipe(socket, { end: false });
    channel.stderr.pipe(socket, { end: false });
    // The shell exited or the VM went away: the client sees its socket end.
    channel.once('close', () => {
      this.channels.delete(channel);
      socket.end();
    });
    // Anything else going wrong on the channel ends the session rather than the host process.
    channel.on('error', () => socket.destroy());
    // The client went away (net sockets do not allow half-open, so its end is our end too).
    socket.once('close', () => channel.close());
  }
}

/** Removes a socket file no process listens on; refuses when one does, or when it is no socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`debug shell: ${path} exists and is not a socket; remove it`);
  const listening = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (listening) {
    throw new Error(
      `debug shell: another process is listening on ${path} (is another Berth running on this data directory?)`,
    );
  }
  unlinkSync(path);
}
