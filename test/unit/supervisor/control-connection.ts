// A client connection to run/control.sock for the end-to-end tests: newline-delimited JSON both
// ways, every message it received kept in order, raw writes for malformed input, and an
// ApiTransport so an ApiClient can ride on it.
import { connect, type Socket } from 'node:net';
import type { ApiTransport } from '../../../core/api/client.ts';

export class ControlConnection implements ApiTransport {
  /** Every message received, parsed, in arrival order. */
  readonly messages: any[] = [];
  /** Resolves when the socket has closed (either side). */
  readonly closed: Promise<void>;
  private buffered = '';
  private nextId = 1_000_000;
  private readonly messageListeners: ((text: string) => void)[] = [];
  private readonly closeListeners: ((why: Error) => void)[] = [];
  private readonly waiters = new Set<() => void>();
  private isClosed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    socket.on('error', () => {}); // EPIPE/ECONNRESET after the server hung up; 'close' follows
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        for (const listener of this.closeListeners) listener(new Error('connection closed'));
        for (const wake of this.waiters) wake();
        resolve();
      }),
    );
  }

  static open(path: string): Promise<ControlConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new ControlConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  // ApiTransport
  send(text: string): void {
    this.socket.write(`${text}\n`);
  }

  onMessage(listener: (text: string) => void): void {
    this.messageListeners.push(listener);
  }

  onClose(listener: (why: Error) => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Writes bytes exactly as given (no newline added). */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Sends a request with a fresh id and resolves with the raw answer to it. */
  async request(method: string, params?: unknown): Promise<any> {
    const id = this.nextId++;
    this.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return this.waitFor((m) => m.id === id && !('method' in m), `the answer to ${method}`);
  }

  /** The first message (already received or still to come) that matches. */
  waitFor(match: (message: any) => boolean, what = 'a message', timeoutMs = 5000): Promise<any> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.messages.find(match);
        if (found !== undefined) {
          done();
          resolve(found);
          return true;
        }
        if (this.isClosed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      const wake = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      if (!check()) this.waiters.add(wake);
    });
  }

  /** Notifications received so far with this method. */
  notifications(method: string): any[] {
    return this.messages.filter((m) => m.method === method).map((m) => m.params);
  }

  private receive(text: string): void {
    this.buffered += text;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      if (line.trim() === '') continue;
      this.messages.push(JSON.parse(line));
      for (const listener of this.messageListeners) listener(line);
      for (const wake of [...this.waiters]) wake();
    }
  }
}
