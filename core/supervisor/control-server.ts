// run/control.sock: the API as JSON-RPC 2.0, one JSON object per line, for the `berth` command
// and any local client. Mode 0600 in a 0700 directory, so only this user can drive the VM.
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { MAX_MESSAGE_BYTES } from '../api/jsonrpc.ts';
import { ApiDispatch, type HostCapabilities } from './api-dispatch.ts';
import { LineReader } from './line-reader.ts';
import type { Supervisor } from './supervisor.ts';

/** Output buffered per client before its sessions pause (a console flooding a slow client). */
const HIGH_WATER_BYTES = 1024 * 1024;

export class ControlServer {
  private readonly clients = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listens on `path`, replacing a stale socket file (the caller holds the data dir's lock). */
  static async listen(
    path: string,
    supervisor: Supervisor,
    host: HostCapabilities = {},
  ): Promise<ControlServer> {
    try {
      unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const server = createServer();
    const control = new ControlServer(server, path);
    server.on('connection', (socket) => control.serve(socket, supervisor, host));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The umask closes the window between bind and chmod where the socket would be 0666-ish.
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    chmodSync(path, 0o600);
    return control;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async close(): Promise<void> {
    for (const socket of this.clients) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket, supervisor: Supervisor, host: HostCapabilities): void {
    this.clients.add(socket);
    const dispatch = new ApiDispatch(
      supervisor,
      {
        send: (text) => {
          if (!socket.destroyed) socket.write(`${text}\n`);
        },
        get writable() {
          return socket.writableLength < HIGH_WATER_BYTES;
        },
        onDrain: (listener) => socket.on('drain', listener),
      },
      host,
    );
    const lines = new LineReader(MAX_MESSAGE_BYTES, (line) => void dispatch.handle(line));
    socket.on('data', (data) => {
      if (!lines.push(data)) {
        socket.end(
          `${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: `a message is longer than ${MAX_MESSAGE_BYTES} bytes; closing the connection` } })}\n`,
        );
      }
    });
    socket.on('error', () => {}); // a client vanishing is normal; 'close' cleans up
    socket.on('close', () => {
      this.clients.delete(socket);
      dispatch.close();
    });
  }
}
