// The serial console's output as the machine keeps it: bytes pass to a sink (logs/serial.log,
// a test) in batches, one per vCPU exit, and the last few KiB stay here so an error can quote
// what the guest said before it failed.
export const SERIAL_TAIL_BYTES = 16 * 1024;

/** Chunks kept before they are joined into one (bounds the work per flush and the array). */
const MAX_CHUNKS = 1024;

export class SerialTail {
  private readonly sink: (bytes: Uint8Array) => void;
  private readonly limit: number;
  private pending: number[] = [];
  /** The flushed batches, oldest first, holding at least the last `limit` bytes. */
  private chunks: Uint8Array[] = [];
  private kept = 0;
  /** Bytes the guest has written, since creation. */
  total = 0;

  constructor(sink: (bytes: Uint8Array) => void = () => {}, limit = SERIAL_TAIL_BYTES) {
    this.sink = sink;
    this.limit = limit;
  }

  push(byte: number): void {
    this.pending.push(byte);
  }

  /**
   * Hands pending bytes to the sink (a throwing sink is not the guest's problem: ignored). This
   * runs once per vCPU exit that printed, usually with one byte: it must not copy the tail.
   */
  flush(): void {
    if (this.pending.length === 0) return;
    const bytes = Uint8Array.from(this.pending);
    this.pending = [];
    this.total += bytes.length;
    this.chunks.push(bytes);
    this.kept += bytes.length;
    if (this.chunks.length > MAX_CHUNKS) this.compact();
    try {
      this.sink(bytes);
    } catch {
      // The sink's own failure (a full disk) must not stop the guest.
    }
  }

  /** The last bytes as text (at most `limit`), pending ones included. */
  text(): string {
    this.flush();
    this.compact();
    return Buffer.from(this.chunks[0] ?? new Uint8Array(0)).toString('latin1');
  }

  /** Joins the chunks into one holding the last `limit` bytes. */
  private compact(): void {
    const joined = Buffer.concat(this.chunks, this.kept);
    const tail = new Uint8Array(joined.subarray(Math.max(0, joined.length - this.limit)));
    this.chunks = tail.length > 0 ? [tail] : [];
    this.kept = tail.length;
  }
}
