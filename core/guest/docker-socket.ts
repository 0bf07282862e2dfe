// run/docker.sock: the VM's docker engine on the host. Every connection to it is relayed, bytes
// untouched, to the guest's /var/run/docker.sock (the guest's berth-vsockd serves that socket on
// vsock port DOCKER_VSOCK_PORT), so the docker CLI, compose and SDKs work as against a local
// engine, including hijacked connections (`docker run -i`, `docker attach`, `docker build`),
// which need half-close both ways. Access to the engine is root in the VM, so the socket is 0600
// in the 0700 run directory.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { listenUnix, type UnixListener } from '../devices/vsock/uds-listener.ts';
import { relay } from './relay.ts';

/** The guest vsock port that reaches the guest's /var/run/docker.sock. */
export const DOCKER_VSOCK_PORT = 2375;

const WITHOUT_ANSWER =
  'the engine closed the connection without answering (is dockerd still starting in the VM?)';

/** How long a client whose engine could not be reached is given to send its request. */
const REFUSAL_READ_MS = 1000;

export interface DockerSocketProxyOptions {
  /** Where to listen: the data directory's run/docker.sock. */
  path: string;
  /** A new stream to the guest's docker socket; production: connectGuestPort(vsock, 2375). */
  connect: () => Promise<Duplex>;
  log?: (line: string) => void;
}

export class DockerSocketProxy {
  readonly path: string;
  private readonly clients = new Set<Socket>();
  private readonly guests = new Set<Duplex>();
  private readonly connect: () => Promise<Duplex>;
  private readonly log: (line: string) => void;
  private closing: Promise<void> | null = null;
  /** The reason of the last failure to reach the engine, so a failing engine logs once. */
  private lastFailure: string | null = null;

  private constructor(
    private readonly listener: UnixListener,
    options: DockerSocketProxyOptions,
  ) {
    this.path = options.path;
    this.connect = options.connect;
    this.log = options.log ?? (() => {});
  }

  /**
   * Listens at `path` (mode 0600, half-open connections allowed). A stale socket file left by a
   * crash is replaced; a socket another process listens on, or a file that is not a socket, is
   * left alone and refused.
   */
  static async listen(options: DockerSocketProxyOptions): Promise<DockerSocketProxy> {
    let proxy: DockerSocketProxy | null = null;
    const early: Socket[] = [];
    const listener = await listenUnix(options.path, (socket) =>
      proxy ? proxy.serve(socket) : early.push(socket),
    ).catch((error: Error) => {
      throw new Error(
        `docker socket: cannot listen on ${options.path}: ${error.message.replace(/^vsock: /, '')}`,
        { cause: error },
      );
    });
    proxy = new DockerSocketProxy(listener, options);
    for (const socket of early) proxy.serve(socket);
    return proxy;
  }

  /** Client connections open now. */
  get connections(): number {
    return this.clients.size;
  }

  /** Stops listening, ends every relayed connection and removes the socket file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = this.listener.close();
      for (const socket of this.clients) socket.destroy();
      for (const stream of this.guests) stream.destroy();
      await stopped;
    })();
    return this.closing;
  }

  private serve(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.clients.add(socket);
    socket.once('close', () => this.clients.delete(socket));
    // A client that hangs up early is not an error worth reporting; the relay ends either way.
    socket.on('error', () => {});
    // Hold the client's request until the guest end exists.
    socket.pause();
    this.connect().then(
      (guest) => {
        if (this.closing || socket.destroyed) {
          guest.destroy();
          return;
        }
        this.guests.add(guest);
        let asked = false;
        socket.once('data', () => (asked = true));
        guest.once('data', () => {
          if (this.lastFailure === null) return;
          this.lastFailure = null;
          this.log("docker socket: the VM's docker engine answers again");
        });
        relay(socket, guest, {
          onClose: () => this.guests.delete(guest),
          onEnd: (from, bytes) => {
            // The guest took the connection, then closed it without a word after a request:
            // its relay found no engine socket (dockerd is not up yet). Told as a refusal is.
            if (from === guest && bytes === 0 && asked && socket.writable) {
              this.answerUnavailable(socket, new Error(WITHOUT_ANSWER));
            }
          },
        });
      },
      (error: unknown) => this.refuse(socket, error),
    );
  }

  /**
   * The engine could not be reached (the VM is still booting, or dockerd is not up): the client
   * gets an HTTP 503 whose message the docker CLI prints ("Error response from daemon: ..."),
   * then its connection is closed. Nothing waits or retries here.
   */
  private refuse(socket: Socket, error: unknown): void {
    this.logFailure(error);
    if (socket.destroyed) return;
    // Answer once the request (or its first bytes) arrived, so the client is not still writing
    // when it is told; a client that says nothing is answered after a moment anyway.
    const answer = () => {
      clearTimeout(timer);
      socket.off('data', answer);
      this.answerUnavailable(socket, error, false);
      // The client may never read it: do not keep the socket beyond a moment.
      setTimeout(() => socket.destroy(), REFUSAL_READ_MS).unref();
    };
    const timer = setTimeout(answer, REFUSAL_READ_MS);
    timer.unref();
    socket.once('data', answer);
    socket.resume();
  }

  private logFailure(error: unknown): string {
    const why = (error as Error).message.replace(/\s+/g, ' ');
    if (why !== this.lastFailure) {
      this.lastFailure = why;
      this.log(`docker socket: cannot reach the VM's docker engine, closing the client: ${why}`);
    }
    return why;
  }

  /**
   * An HTTP 503 whose message the docker CLI prints ("Error response from daemon: ..."), then
   * the end of the connection.
   */
  private answerUnavailable(socket: Socket, error: unknown, log = true): void {
    const why = log ? this.logFailure(error) : (error as Error).message.replace(/\s+/g, ' ');
    const message = `Berth: the VM's docker engine is not reachable (is the VM still starting?): ${why}`;
    const body = `${JSON.stringify({ message })}\n`;
    socket.end(
      'HTTP/1.1 503 Service Unavailable\r\n' +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
}
