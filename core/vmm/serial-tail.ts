// The serial console's output as the machine keeps it: bytes pass to a sink (logs/serial.log,
// a test) in batches, one per vCPU exit, and the last few KiB stay here so an error can quote
// what the guest said before it failed.
export const SERIAL_TAIL_BYTES = 16 * 1024;

export class SerialTail {
  private readonly sink: (bytes: Uint8Array) => void;
  private readonly limit: number;
  private pending: number[] = [];
  private tail = new Uint8Array(0);
  /** Bytes the guest has written, since creation. */
  total = 0;

  constructor(sink: (bytes: Uint8Array) => void = () => {}, limit = SERIAL_TAIL_BYTES) {
    this.sink = sink;
    this.limit = limit;
  }

  push(byte: number): void {
    this.pending.push(byte);
  }

  /** Hands pending bytes to the sink (a throwing sink is not the guest's problem: ignored). */
  flush(): void {
    if (this.pending.length === 0) return;
    const bytes = Uint8Array.from(this.pending);
    this.pending = [];
    this.total += bytes.length;
    const joined = new Uint8Array(Math.min(this.limit, this.tail.length + bytes.length));
    const keep = joined.length - Math.min(bytes.length, joined.length);
    joined.set(this.tail.subarray(this.tail.length - keep), 0);
    joined.set(bytes.subarray(bytes.length - (joined.length - keep)), keep);
    this.tail = joined;
    try {
      this.sink(bytes);
    } catch {
      // The sink's own failure (a full disk) must not stop the guest.
    }
  }

  /** The last bytes as text (at most `limit`), pending ones included. */
  text(): string {
    this.flush();
    return Buffer.from(this.tail).toString('latin1');
  }
}
