// An ApiTransport in memory: the test plays the supervisor, reading what the client sent and
// delivering answers and notifications (in any order), or closing the connection.
import type { ApiTransport } from '../../../core/api/client.ts';

export class MemoryTransport implements ApiTransport {
  /** Every text the client sent, parsed. */
  readonly sent: any[] = [];
  closeCalls = 0;
  private messageListeners: ((text: string) => void)[] = [];
  private closeListeners: ((why: Error) => void)[] = [];
  private closed = false;

  send(text: string): void {
    if (this.closed) throw new Error('send after close');
    this.sent.push(JSON.parse(text));
  }

  onMessage(listener: (text: string) => void): void {
    this.messageListeners.push(listener);
  }

  onClose(listener: (why: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** The client closed it: the connection ends as if the other side went away. */
  close(): void {
    this.closeCalls++;
    this.end(new Error('closed by the client'));
  }

  /** The supervisor sends a text (a raw string, or a message to serialize). */
  deliver(message: unknown): void {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    for (const listener of this.messageListeners) listener(text);
  }

  /** The connection is gone, with why. Only the first end counts, as with a socket. */
  end(why: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const listener of this.closeListeners) listener(why);
  }

  /** The last request the client sent. */
  get last(): any {
    return this.sent.at(-1);
  }
}
