// Stand-ins for the guest, with real sockets: a docker engine (an HTTP server on a Unix socket
// answering /containers/json, streaming /events and serving a hijacked attach), a TCP echo
// server for a container's port, and helpers to wait on real I/O.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { DockerContainer } from '../../../core/guest/docker-api.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `condition` holds (polling real I/O), failing after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Connects to a Unix socket or TCP port; resolves once connected (half-open allowed). */
export function dial(target: string | number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      typeof target === 'number'
        ? connect({ host: '127.0.0.1', port: target, allowHalfOpen: true })
        : connect({ path: target, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Everything a socket receives until it ends or closes. */
export class Reader {
  data = Buffer.alloc(0);
  ended = false;
  closed = false;
  error: Error | null = null;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.data = Buffer.concat([this.data, chunk])));
    socket.once('end', () => (this.ended = true));
    socket.once('close', () => (this.closed = true));
    socket.on('error', (error) => (this.error = error));
  }
  get text(): string {
    return this.data.toString();
  }
}

/**
 * Sends "GET /" over a new TCP connection, ends its sending side, and returns what came back
 * (the echo server answers every byte and closes after EOF).
 */
export async function talk(port: number, message: string): Promise<string> {
  const socket = await dial(port);
  const reader = new Reader(socket);
  socket.end(message);
  await until(() => reader.closed, `the connection to 127.0.0.1:${port} to close`);
  return reader.text;
}

/** Can a TCP connection to 127.0.0.1:port be made at all? */
export function reachable(port: number): Promise<boolean> {
  return dial(port).then(
    (socket) => {
      socket.destroy();
      return true;
    },
    () => false,
  );
}

/**
 * The guest's 127.0.0.1:<port> where docker-proxy would listen: echoes with a prefix naming the
 * container, and after the client's EOF writes "bye" and ends.
 */
export class EchoServer {
  private constructor(
    readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
  ) {}

  static async listen(name: string): Promise<EchoServer> {
    const sockets = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.on('data', (data: Buffer) => socket.write(`${name}: ${data}`));
      socket.once('end', () => socket.end('bye'));
    });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return new EchoServer(server, (server.address() as { port: number }).port, sockets);
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** A forward(port) for PublishedPorts: every guest port reaches this server. */
  forward = (): Promise<Duplex> => dial(this.port);

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface AttachRecord {
  /** What the engine read from the client, until the client's EOF. */
  stdin: string;
  /** The client's EOF arrived. */
  eof: boolean;
}

/** A docker engine (API 1.41) on a Unix socket, as much as the host side uses of it. */
export class FakeEngine {
  containers: DockerContainer[] = [];
  /** Paths asked for, in order (with their query). */
  readonly requests: string[] = [];
  readonly attaches: AttachRecord[] = [];
  /** connect() fails while set (the engine is not up). */
  down = false;
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly server: ReturnType<typeof createHttpServer>,
  ) {}

  static async listen(path: string): Promise<FakeEngine> {
    const server = createHttpServer();
    const engine = new FakeEngine(path, server);
    server.on('connection', (socket: Socket) => {
      engine.sockets.add(socket);
      socket.once('close', () => engine.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      engine.requests.push(req.url ?? '');
      const url = new URL(req.url ?? '/', 'http://docker');
      // What the docker CLI negotiates its API version from.
      res.setHeader('Api-Version', '1.41');
      res.setHeader('Ostype', 'linux');
      if (req.method === 'GET' && url.pathname === '/v1.41/containers/json') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(engine.containers));
      } else if (req.method === 'GET' && url.pathname === '/v1.41/events') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        engine.streams.add(res);
        res.once('close', () => engine.streams.delete(res));
      } else if (url.pathname === '/_ping') {
        res.end('OK');
      } else {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ message: `page not found: ${url.pathname}` }));
      }
    });
    // POST /containers/<id>/attach?stream=1&stdin=1...: the connection becomes raw, as with
    // `docker run -i`: the engine echoes stdin until the client's EOF, then says how much it
    // got and ends. With ?output-first=1 it ends its output at once and still reads stdin.
    server.on('upgrade', (req, socket: Socket, head: Buffer) => {
      engine.requests.push(req.url ?? '');
      const record: AttachRecord = { stdin: head.toString(), eof: false };
      engine.attaches.push(record);
      const outputFirst = (req.url ?? '').includes('output-first=1');
      socket.write(
        'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n' +
          'Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
      );
      if (outputFirst) socket.end('output done\n');
      socket.on('data', (data: Buffer) => {
        record.stdin += data.toString();
        if (!outputFirst) socket.write(`out: ${data}`);
      });
      socket.once('end', () => {
        record.eof = true;
        if (!outputFirst) socket.end(`stdin closed after ${record.stdin.length} bytes\n`);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return engine;
  }

  /** The dockerConnect seam: a new stream to the engine (half-open allowed, as vsock's is). */
  connect = async (): Promise<Duplex> => {
    if (this.down) throw new Error('connection refused (the engine is down)');
    return dial(this.path);
  };

  /** Event streams open now. */
  get eventStreams(): number {
    return this.streams.size;
  }

  /** Sends an event to every open /events stream. */
  event(action: string, id: string): void {
    const line = JSON.stringify({
      Type: 'container',
      Action: action,
      Actor: { ID: id, Attributes: { name: id } },
      time: Math.floor(Date.now() / 1000),
    });
    for (const res of this.streams) res.write(`${line}\n`);
  }

  /** Cuts every open /events stream (dockerd restarted, vsock dropped). */
  dropEvents(): void {
    for (const res of this.streams) res.socket?.destroy();
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A container as GET /containers/json lists it on engine 20.10 (v4 and v6 entries). */
export function container(
  id: string,
  name: string,
  ports: { public: number; private: number; type?: string; ip?: string }[],
): DockerContainer {
  return {
    Id: id.padEnd(64, '0'),
    Names: [`/${name}`],
    Ports: ports.flatMap((p) =>
      p.ip
        ? [{ IP: p.ip, PrivatePort: p.private, PublicPort: p.public, Type: p.type ?? 'tcp' }]
        : [
            { IP: '0.0.0.0', PrivatePort: p.private, PublicPort: p.public, Type: p.type ?? 'tcp' },
            { IP: '::', PrivatePort: p.private, PublicPort: p.public, Type: p.type ?? 'tcp' },
          ],
    ),
  };
}

/** A socket file left behind by a process that died (SIGKILL: nobody removed it). */
export async function staleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
  ]);
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

/** Lines logged, for asserting what the user reads in the log. */
export class LogLines {
  readonly lines: string[] = [];
  readonly log = (line: string): void => void this.lines.push(line);
  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }
}
