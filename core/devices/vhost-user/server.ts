// A vhost-user back-end server for one device: listens on a Unix socket (mode 0600), serves one
// front-end connection at a time, and on disconnect resets the device and releases everything,
// ready for QEMU to reconnect.
import { rmSync } from 'node:fs';
import {
  close,
  FdWatcher,
  isSystemCallError,
  recvWithFds,
  sendWithFds,
  unixAccept,
  unixListen,
} from '../../native.ts';
import type { VirtioDevice } from '../virtio-device.ts';
import { MAX_FDS, MessageReader, ProtocolError } from './protocol.ts';
import { VhostUserSession } from './session.ts';

export interface VhostUserServerOptions {
  socketPath: string;
  device: VirtioDevice;
  /** Rings served by this back-end; defaults to all of the device's queues. */
  vhostQueues?: number;
  /** Offer the CONFIG protocol feature (see SessionOptions.configSpace); default true. */
  configSpace?: boolean;
  log?: (line: string) => void;
}

export class VhostUserServer {
  private readonly listenFd: number;
  private readonly listenWatcher: InstanceType<typeof FdWatcher>;
  private connection: {
    fd: number;
    watcher: InstanceType<typeof FdWatcher>;
    reader: MessageReader;
    session: VhostUserSession;
  } | null = null;
  private readonly log: (line: string) => void;
  /** Resolves each time a front-end disconnects (for tests and orderly shutdown). */
  connections = 0;

  constructor(private readonly options: VhostUserServerOptions) {
    this.log = (line) =>
      (options.log ?? console.error)(`vhost-user ${options.device.name}: ${line}`);
    rmSync(options.socketPath, { force: true });
    this.listenFd = unixListen(options.socketPath, 1);
    this.listenWatcher = new FdWatcher(this.listenFd, () => this.accept());
  }

  get session(): VhostUserSession | null {
    return this.connection?.session ?? null;
  }

  private accept(): void {
    for (;;) {
      const fd = unixAccept(this.listenFd);
      if (fd === null) return;
      if (this.connection) {
        this.log('a second front-end tried to connect; refused (one at a time)');
        close(fd);
        continue;
      }
      this.connections++;
      const session = new VhostUserSession({
        device: this.options.device,
        vhostQueues: this.options.vhostQueues ?? this.options.device.queueCount,
        ...(this.options.configSpace === false ? { configSpace: false } : {}),
        log: this.log,
      });
      const reader = new MessageReader();
      const watcher = new FdWatcher(fd, () => this.receive());
      this.connection = { fd, watcher, reader, session };
      this.log('front-end connected');
    }
  }

  private receive(): void {
    const connection = this.connection;
    if (!connection) return;
    try {
      for (;;) {
        const received = recvWithFds(connection.fd, 65536, MAX_FDS);
        if (received === null) break;
        if (received.data.length === 0) {
          for (const fd of received.fds) close(fd);
          this.disconnect('front-end disconnected');
          return;
        }
        if (process.env.BERTH_VHOST_DEBUG)
          this.log(`recv ${received.data.length} bytes, fds [${received.fds.join(',')}]`);
        connection.reader.push(received.data, received.fds);
        for (let message = connection.reader.next(); message; message = connection.reader.next()) {
          const reply = connection.session.handle(message);
          if (reply) sendWithFds(connection.fd, reply, []);
        }
      }
    } catch (error) {
      const reason =
        error instanceof ProtocolError || isSystemCallError(error)
          ? error.message
          : `unexpected: ${String(error)}`;
      this.disconnect(`closing the connection: ${reason}`);
    }
  }

  private disconnect(reason: string): void {
    const connection = this.connection;
    if (!connection) return;
    this.connection = null;
    this.log(reason);
    connection.watcher.stop();
    connection.session.close();
    for (const fd of connection.reader.takeUnclaimedFds()) close(fd);
    close(connection.fd);
  }

  close(): void {
    this.disconnect('server closing');
    this.listenWatcher.stop();
    close(this.listenFd);
    rmSync(this.options.socketPath, { force: true });
  }
}
