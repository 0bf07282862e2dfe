// Published container ports on the host, with no user step: `docker run -p 8080:80 nginx` in the
// VM and http://127.0.0.1:8080 works on the host, as with Docker Desktop. We follow the engine
// (GET /events for container start/die/stop/kill/destroy, then GET /containers/json for the
// truth) and keep one host listener per published TCP port; each accepted connection is joined
// to the guest's 127.0.0.1:<port>, where the engine's docker-proxy listens.
//
// Security by default: the host listeners bind to loopback only (127.0.0.1), whatever address
// the container published on inside the VM, so a container is never exposed to the network the
// host is on without the user asking for it.
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  dockerGet,
  dockerGetJson,
  engineError,
  EventLineSplitter,
  readBody,
  type DockerConnect,
  type DockerContainer,
} from './docker-api.ts';
import { relay } from './relay.ts';

/** The host address published ports listen on: loopback only (see above). */
export const PUBLISH_HOST = '127.0.0.1';

/** The container events after which the published ports may have changed. */
export const WATCHED_ACTIONS = ['start', 'die', 'stop', 'kill', 'destroy'] as const;

const EVENTS_PATH = `/events?filters=${encodeURIComponent(
  JSON.stringify({ type: ['container'], event: WATCHED_ACTIONS }),
)}`;

export interface PublishedPort {
  /** The port on the host's 127.0.0.1, and on the guest's 127.0.0.1. */
  port: number;
  /** The container's own port behind it. */
  privatePort: number;
  containerId: string;
  containerName: string;
}

export interface PublishedPortsOptions {
  /** A new stream to the guest's docker socket (HTTP/1.1 to the API). */
  dockerConnect: DockerConnect;
  /** A new stream to the guest's 127.0.0.1:`port` (production: ssh direct-tcpip). */
  forward: (port: number) => Promise<Duplex>;
  log?: (line: string) => void;
  /** Reconnect delays for the event stream: doubling from min to max (ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface PublishedPortsEvents {
  /** The host listeners changed (after a sync). */
  change: [ports: PublishedPort[]];
}

interface HostListener {
  wanted: PublishedPort;
  server: Server;
  sockets: Set<Socket>;
  streams: Set<Duplex>;
}

const DEFAULT_RETRY_MIN_MS = 250;
const DEFAULT_RETRY_MAX_MS = 10_000;

export class PublishedPorts extends EventEmitter<PublishedPortsEvents> {
  private readonly dockerConnect: DockerConnect;
  private readonly forward: (port: number) => Promise<Duplex>;
  private readonly log: (line: string) => void;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly bound = new Map<number, HostListener>();
  /** Things said once per container ("udp not forwarded", "port busy"), by container + what. */
  private readonly said = new Set<string>();
  private running = false;
  private events: { destroy(): void } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  /** Whether the last attempt to follow the engine failed (to log an outage once, and its end). */
  private outage: string | null = null;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;

  constructor(options: PublishedPortsOptions) {
    super();
    this.dockerConnect = options.dockerConnect;
    this.forward = options.forward;
    this.log = options.log ?? (() => {});
    this.retryMinMs = options.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    this.retryDelay = this.retryMinMs;
  }

  /** The ports published on the host now. */
  get ports(): PublishedPort[] {
    return [...this.bound.values()]
      .map((listener) => ({ ...listener.wanted }))
      .sort((a, b) => a.port - b.port);
  }

  /** Starts following the engine (retrying until it answers). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.follow();
  }

  /** Stops following, closes every host listener and the connections through them. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.events?.destroy();
    this.events = null;
    // A sync under way checks `running` after each await, and closes what it opened late.
    const closing = [...this.bound.values()].map((listener) => this.unpublish(listener));
    await Promise.all(closing);
    this.said.clear();
    if (closing.length > 0) this.emit('change', this.ports);
  }

  // --- Following the engine ---

  /**
   * Opens the event stream, then lists the containers: in this order no change can fall between
   * the list and the stream. Every watched event lists them again.
   */
  private follow(): void {
    if (!this.running) return;
    let gone = false;
    let req: { destroy(): void } | null = null;
    const handle = {
      destroy: () => {
        gone = true;
        req?.destroy();
      },
    };
    this.events = handle;
    const dropped = (why: string) => {
      if (gone || !this.running) return;
      gone = true;
      req?.destroy();
      if (this.events === handle) this.events = null;
      this.retry(why);
    };
    dockerGet(this.dockerConnect, EVENTS_PATH).then(
      async (res) => {
        req = res;
        if (gone) return void res.destroy();
        if (res.statusCode !== 200) {
          return dropped(
            engineError('/events', res.statusCode, await readBody(res).catch(() => '')),
          );
        }
        if (this.outage !== null) this.log("published ports: following the VM's docker engine");
        this.outage = null;
        this.retryDelay = this.retryMinMs;
        const splitter = new EventLineSplitter();
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          for (const event of splitter.push(text)) {
            if (event.Type === 'container') this.requestSync();
          }
        });
        res.once('end', () => dropped('the event stream ended'));
        res.once('error', (error) => dropped(`the event stream failed: ${error.message}`));
        res.once('close', () => dropped('the event stream closed'));
        this.requestSync();
      },
      (error: Error) => dropped(error.message),
    );
  }

  private retry(why: string): void {
    if (!this.running) return;
    if (this.outage === null) {
      this.log(`published ports: lost the VM's docker engine (${why}); retrying until it is back`);
    }
    this.outage = why;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.follow();
    }, delay);
    this.retryTimer.unref();
  }

  /** Syncs now, or once more after the sync under way (events come in bursts). */
  private requestSync(): void {
    if (!this.running) return;
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.sync();
        } catch (error) {
          // The listing failed (the engine went away mid-way): the event stream drops too and
          // its reconnect syncs again; until then the listeners stay as they were.
          if (this.running)
            this.log(`published ports: cannot list containers: ${(error as Error).message}`);
          break;
        }
      } while (this.syncAgain && this.running);
    })().finally(() => (this.syncing = null));
  }

  private async sync(): Promise<void> {
    const containers = await dockerGetJson<DockerContainer[]>(
      this.dockerConnect,
      '/containers/json',
    );
    if (!this.running) return;
    const wanted = this.wantedPorts(Array.isArray(containers) ? containers : []);
    let changed = false;
    for (const [port, listener] of this.bound) {
      const want = wanted.get(port);
      if (want && want.containerId === listener.wanted.containerId) continue;
      this.log(
        `published ports: 127.0.0.1:${port} closed (container ${listener.wanted.containerName} is gone)`,
      );
      await this.unpublish(listener);
      changed = true;
    }
    for (const want of wanted.values()) {
      if (!this.running) break;
      if (this.bound.has(want.port)) continue;
      if (await this.publish(want)) changed = true;
    }
    // Forget what was said about containers that are gone, so a new one is told afresh.
    const live = new Set(containers.map((c) => c.Id));
    for (const key of this.said) if (!live.has(key.split(' ')[0]!)) this.said.delete(key);
    if (changed) this.emit('change', this.ports);
  }

  /** Published TCP ports by host port, from the engine's container list. */
  private wantedPorts(containers: DockerContainer[]): Map<number, PublishedPort> {
    const wanted = new Map<number, PublishedPort>();
    for (const container of containers) {
      if (typeof container?.Id !== 'string') continue;
      const containerName = (container.Names?.[0] ?? container.Id.slice(0, 12)).replace(/^\//, '');
      for (const entry of container.Ports ?? []) {
        const port = entry.PublicPort;
        if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 0xffff)
          continue;
        if (entry.Type !== 'tcp') {
          this.sayOnce(
            container.Id,
            `${port}/${entry.Type}`,
            `published ports: container ${containerName} publishes ${port}/${entry.Type}; only TCP ports are forwarded to the host`,
          );
          continue;
        }
        // Engine 20.10 lists a port twice, bound to 0.0.0.0 and to ::; one listener serves
        // both. A port bound to another address of the VM is not on the guest's loopback.
        const ip = entry.IP ?? '';
        if (!['0.0.0.0', '127.0.0.1', '::', ''].includes(ip)) {
          this.sayOnce(
            container.Id,
            `${port}/ip`,
            `published ports: container ${containerName} publishes ${port} on ${ip} only; not forwarded to the host`,
          );
          continue;
        }
        const other = wanted.get(port);
        if (other && other.containerId !== container.Id) {
          this.sayOnce(
            container.Id,
            `${port}/dup`,
            `published ports: containers ${other.containerName} and ${containerName} both publish ${port}; the host's 127.0.0.1:${port} goes to ${other.containerName}`,
          );
          continue;
        }
        if (!other) {
          wanted.set(port, {
            port,
            privatePort: entry.PrivatePort,
            containerId: container.Id,
            containerName,
          });
        }
      }
    }
    return wanted;
  }

  private sayOnce(containerId: string, what: string, line: string): void {
    const key = `${containerId} ${what}`;
    if (this.said.has(key)) return;
    this.said.add(key);
    this.log(line);
  }

  // --- Host listeners ---

  /** Opens the host listener for `want`; false (said once) when the host port is not free. */
  private async publish(want: PublishedPort): Promise<boolean> {
    const listener: HostListener = {
      wanted: want,
      server: createServer({ allowHalfOpen: true, pauseOnConnect: true }),
      sockets: new Set(),
      streams: new Set(),
    };
    const { server } = listener;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: PUBLISH_HOST, port: want.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? 'it is already in use on this machine (stop what uses it, or publish another port)'
          : code === 'EACCES'
            ? 'this user may not listen on it (ports below 1024 need privileges)'
            : (error as Error).message;
      this.sayOnce(
        want.containerId,
        `${want.port}/busy`,
        `published ports: cannot publish container ${want.containerName}'s port ${want.port} on the host at 127.0.0.1:${want.port}: ${why}`,
      );
      return false;
    }
    if (!this.running) {
      server.close();
      return false;
    }
    // An accept failing (EMFILE) must not take the host down; the listener carries on.
    server.on('error', (error) =>
      this.log(`published ports: 127.0.0.1:${want.port}: ${error.message}`),
    );
    server.on('connection', (socket: Socket) => this.serve(listener, socket));
    this.bound.set(want.port, listener);
    this.said.delete(`${want.containerId} ${want.port}/busy`);
    this.log(
      `published ports: container ${want.containerName}: 127.0.0.1:${want.port} -> ${want.privatePort}/tcp`,
    );
    return true;
  }

  private serve(listener: HostListener, socket: Socket): void {
    const { port } = listener.wanted;
    listener.sockets.add(socket);
    socket.once('close', () => listener.sockets.delete(socket));
    socket.on('error', () => {});
    this.forward(port).then(
      (stream) => {
        if (socket.destroyed || this.bound.get(port) !== listener) {
          stream.destroy();
          socket.destroy();
          return;
        }
        listener.streams.add(stream);
        relay(socket, stream, { onClose: () => listener.streams.delete(stream) });
      },
      (error: Error) => {
        this.sayOnce(
          listener.wanted.containerId,
          `${port}/forward`,
          `published ports: cannot reach port ${port} in the VM for container ${listener.wanted.containerName}: ${error.message}`,
        );
        socket.destroy();
      },
    );
  }

  private async unpublish(listener: HostListener): Promise<void> {
    const { port } = listener.wanted;
    if (this.bound.get(port) === listener) this.bound.delete(port);
    const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()));
    for (const socket of listener.sockets) socket.destroy();
    for (const stream of listener.streams) stream.destroy();
    await closed;
  }
}
