// Splits a byte stream into lines (newline-delimited JSON), refusing a line longer than a limit
// so a client cannot make us buffer without bound.
export class LineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Feeds bytes; returns false (and stops) once a line exceeds the limit. */
  push(data: Buffer): boolean {
    if (this.failed) return false;
    let start = 0;
    for (let newline = data.indexOf(0x0a); newline >= 0; newline = data.indexOf(0x0a, start)) {
      const piece = data.subarray(start, newline);
      if (this.pendingBytes + piece.length > this.maxBytes) return this.fail();
      const line = this.pending.length === 0 ? piece : Buffer.concat([...this.pending, piece]);
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
      const text = line.toString('utf8').trim();
      if (text.length > 0) this.onLine(text);
    }
    const rest = data.subarray(start);
    if (this.pendingBytes + rest.length > this.maxBytes) return this.fail();
    if (rest.length > 0) {
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return true;
  }

  private fail(): false {
    this.failed = true;
    this.pending = [];
    return false;
  }
}
