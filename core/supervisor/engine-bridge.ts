// The VM's container engine on the host, while the VM runs: run/docker.sock relayed to the
// guest's docker socket, the `berth` docker CLI context pointing at it, and containers' published
// TCP ports on the host's loopback. The supervisor calls start() when the VM becomes running and
// stop() when it leaves running (whatever the reason); the calls run one after another, so a
// quick stop-start never leaves two proxies or two port watchers.
//
// Nothing here can fail a VM start: each piece that cannot be set up says why in the log, and
// the rest carries on.
import type { Duplex } from 'node:stream';
import type { EngineStatus } from '../api/types.ts';
import {
  describeDockerContext,
  dockerConfigDir,
  ensureDockerContext,
} from '../guest/docker-context.ts';
import { DOCKER_VSOCK_PORT, DockerSocketProxy } from '../guest/docker-socket.ts';
import { connectGuestPort } from '../guest/hybrid-vsock.ts';
import { PublishedPorts, type PublishedPort } from '../guest/published-ports.ts';
import type { GuestSsh } from '../guest/ssh-session.ts';

/** How long a docker client waits for the guest to accept before it is told the engine is down. */
const DOCKER_CONNECT_TIMEOUT_MS = 5_000;

/** What tests (or another host) may replace; the defaults are the production paths. */
export interface EngineSeams {
  /** The docker CLI's configuration directory for the `berth` context (default: DOCKER_CONFIG, else ~/.docker). */
  dockerConfig?: string;
  /** A stream to the guest's docker socket (default: vsock port DOCKER_VSOCK_PORT). */
  dockerConnect?: () => Promise<Duplex>;
  /** A stream to the guest's 127.0.0.1:`port` (default: ssh direct-tcpip). */
  forward?: (port: number) => Promise<Duplex>;
  /** Reconnect delays of the engine's event stream (ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface EngineBridgeOptions extends EngineSeams {
  /** run/docker.sock */
  socketPath: string;
  /** The vsock device's host socket (run/vsock.sock). */
  vsockPath: string;
  /** The guest's SSH connection (for forwarded ports). */
  guestSsh: () => Promise<GuestSsh>;
  log: (line: string) => void;
  /**
   * The engine's status changed (the socket began or stopped being served, a port was published
   * or closed); called once per change, with what `status` now is.
   */
  onChange?: (engine: EngineStatus | undefined) => void;
}

export class EngineBridge {
  private proxy: DockerSocketProxy | null = null;
  private ports: PublishedPorts | null = null;
  private queue: Promise<void> = Promise.resolve();
  private readonly dockerConnect: () => Promise<Duplex>;
  private readonly forward: (port: number) => Promise<Duplex>;
  /** What onChange was last told, as JSON, so an unchanged status is not reported again. */
  private reported: string | undefined = undefined;

  constructor(private readonly options: EngineBridgeOptions) {
    this.dockerConnect =
      options.dockerConnect ??
      (() =>
        connectGuestPort(options.vsockPath, DOCKER_VSOCK_PORT, DOCKER_CONNECT_TIMEOUT_MS, {
          allowHalfOpen: true,
        }));
    this.forward =
      options.forward ?? (async (port) => (await options.guestSsh()).forwardTcp('127.0.0.1', port));
  }

  /** The containers' ports published on the host now. */
  get publishedPorts(): PublishedPort[] {
    return this.ports?.ports ?? [];
  }

  /** The engine's part of the VM's status: present while run/docker.sock is served. */
  get status(): EngineStatus | undefined {
    const socket = this.proxy?.path;
    if (!socket) return undefined;
    return {
      socket,
      context: 'berth',
      publishedPorts: this.publishedPorts.map(({ port, privatePort, containerName }) => ({
        port,
        privatePort,
        containerName,
      })),
    };
  }

  /** The VM is running: serve the docker socket, refresh the context, publish ports. */
  start(): Promise<void> {
    return this.enqueue(() => this.setUp());
  }

  /** The VM is not running (any more): stop all three. Resolves when they are down. */
  stop(): Promise<void> {
    return this.enqueue(() => this.tearDown());
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue
      .then(step)
      .catch((error: unknown) => this.options.log(`container engine: ${(error as Error).message}`))
      .finally(() => this.reportChange());
    return this.queue;
  }

  /** Tells onChange about a status it has not been told yet. */
  private reportChange(): void {
    const status = this.status;
    const json = status ? JSON.stringify(status) : undefined;
    if (json === this.reported) return;
    this.reported = json;
    try {
      this.options.onChange?.(status);
    } catch (error) {
      this.options.log(`container engine: a change listener failed: ${(error as Error).message}`);
    }
  }

  private async setUp(): Promise<void> {
    const { log, socketPath } = this.options;
    if (!this.proxy) {
      try {
        this.proxy = await DockerSocketProxy.listen({
          path: socketPath,
          connect: this.dockerConnect,
          log,
        });
        log(`docker socket: serving the VM's docker engine at ${socketPath}`);
      } catch (error) {
        log(`${(error as Error).message}; the docker CLI cannot reach the VM's engine`);
      }
    }
    const dockerConfig = this.options.dockerConfig ?? dockerConfigDir();
    try {
      const result = await ensureDockerContext({ socketPath, dockerConfig });
      log(describeDockerContext(result));
    } catch (error) {
      log(
        `docker context "berth" could not be written in ${dockerConfig}: ${(error as Error).message}; ` +
          `DOCKER_HOST=unix://${socketPath} reaches the VM's engine all the same`,
      );
    }
    if (!this.ports) {
      const ports = new PublishedPorts({
        dockerConnect: this.dockerConnect,
        forward: this.forward,
        log,
        retryMinMs: this.options.retryMinMs,
        retryMaxMs: this.options.retryMaxMs,
      });
      // A watcher being torn down reports its ports closing; only the current one's count.
      ports.on('change', () => {
        if (this.ports === ports) this.reportChange();
      });
      this.ports = ports;
      ports.start();
    }
  }

  private async tearDown(): Promise<void> {
    const proxy = this.proxy;
    const ports = this.ports;
    this.proxy = null;
    this.ports = null;
    await Promise.all([proxy?.close(), ports?.stop()]);
  }
}
