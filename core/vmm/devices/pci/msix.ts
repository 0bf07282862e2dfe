// MSI-X (PCI 3.0, 6.8.2): the capability's message control, the vector table (address, data,
// vector control per entry) and the pending bit array, both in a memory BAR. A vector raised
// while masked (entry or function mask) or before the driver enabled MSI-X sets its pending bit
// and is delivered when unmasked. Delivery is a callback: the machine turns the message into a
// KVM MSI route (irqfd) later.

export const PCI_CAP_ID_MSIX = 0x11;
export const MSIX_ENTRY_SIZE = 16;
const CONTROL_ENABLE = 0x8000;
const CONTROL_FUNCTION_MASK = 0x4000;
const VECTOR_MASKED = 0x1;

export interface MsiMessage {
  /** The 64-bit message address (0xFEEx_xxxx on x86). */
  address: bigint;
  data: number;
}

export class MsixTable {
  readonly vectorCount: number;
  private readonly table: Uint8Array;
  private readonly tableView: DataView;
  private readonly pba: Uint8Array;
  private control = 0;
  private readonly signal: (message: MsiMessage) => void;
  /** Messages delivered, for tests and stats. */
  delivered = 0;

  constructor(vectorCount: number, signal: (message: MsiMessage) => void) {
    if (!(Number.isInteger(vectorCount) && vectorCount >= 1 && vectorCount <= 2048)) {
      throw new RangeError(`MSI-X: ${vectorCount} vectors (1..2048)`);
    }
    this.vectorCount = vectorCount;
    this.signal = signal;
    this.table = new Uint8Array(vectorCount * MSIX_ENTRY_SIZE);
    this.tableView = new DataView(this.table.buffer);
    this.pba = new Uint8Array(Math.ceil(vectorCount / 64) * 8);
    for (let v = 0; v < vectorCount; v++)
      this.tableView.setUint32(v * 16 + 12, VECTOR_MASKED, true);
  }

  get tableSize(): number {
    return this.table.length;
  }

  get pbaSize(): number {
    return this.pba.length;
  }

  get enabled(): boolean {
    return (this.control & CONTROL_ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.control & CONTROL_FUNCTION_MASK) !== 0;
  }

  /** The capability body after ID and next: message control, table and PBA offset/BIR. */
  capabilityBody(bar: number, tableOffset: number, pbaOffset: number): Uint8Array {
    const body = new Uint8Array(10);
    const view = new DataView(body.buffer);
    view.setUint16(0, this.vectorCount - 1, true);
    view.setUint32(2, (tableOffset | bar) >>> 0, true);
    view.setUint32(6, (pbaOffset | bar) >>> 0, true);
    return body;
  }

  /** Writable bits of the capability body: enable and function mask. */
  static capabilityWriteMask(): Uint8Array {
    const mask = new Uint8Array(10);
    mask[1] = 0xc0;
    return mask;
  }

  /** The guest wrote message control (from the capability in config space). */
  setControl(control: number): void {
    this.control = control & (CONTROL_ENABLE | CONTROL_FUNCTION_MASK);
    this.deliverPending();
  }

  /** Raises `vector`; false if it does not exist. */
  notify(vector: number): boolean {
    if (!(Number.isInteger(vector) && vector >= 0 && vector < this.vectorCount)) return false;
    if (!this.enabled || this.functionMasked || this.entryMasked(vector)) {
      this.pba[vector >> 3]! |= 1 << (vector & 7);
      return true;
    }
    this.send(vector);
    return true;
  }

  isPending(vector: number): boolean {
    return ((this.pba[vector >> 3] ?? 0) & (1 << (vector & 7))) !== 0;
  }

  message(vector: number): MsiMessage {
    const at = vector * MSIX_ENTRY_SIZE;
    const low = this.tableView.getUint32(at, true);
    const high = this.tableView.getUint32(at + 4, true);
    return {
      address: (BigInt(high) << 32n) | BigInt(low),
      data: this.tableView.getUint32(at + 8, true),
    };
  }

  readTable(offset: number, data: Uint8Array): void {
    copyOut(this.table, offset, data);
  }

  writeTable(offset: number, data: Uint8Array): void {
    if (offset < 0 || offset + data.length > this.table.length) return;
    this.table.set(data, offset);
    // Reserved bits of vector control stay 0.
    const vector = Math.floor(offset / MSIX_ENTRY_SIZE);
    const last = Math.floor((offset + data.length - 1) / MSIX_ENTRY_SIZE);
    for (let v = vector; v <= last; v++) {
      const at = v * MSIX_ENTRY_SIZE + 12;
      this.tableView.setUint32(at, this.tableView.getUint32(at, true) & VECTOR_MASKED, true);
    }
    this.deliverPending();
  }

  readPba(offset: number, data: Uint8Array): void {
    copyOut(this.pba, offset, data);
  }

  /** Back to power-on state (the function was reset). */
  reset(): void {
    this.table.fill(0);
    this.pba.fill(0);
    for (let v = 0; v < this.vectorCount; v++)
      this.tableView.setUint32(v * 16 + 12, VECTOR_MASKED, true);
    this.control = 0;
  }

  private entryMasked(vector: number): boolean {
    return (this.tableView.getUint32(vector * MSIX_ENTRY_SIZE + 12, true) & VECTOR_MASKED) !== 0;
  }

  private deliverPending(): void {
    if (!this.enabled || this.functionMasked) return;
    for (let v = 0; v < this.vectorCount; v++) {
      if (this.isPending(v) && !this.entryMasked(v)) {
        this.pba[v >> 3]! &= ~(1 << (v & 7));
        this.send(v);
      }
    }
  }

  private send(vector: number): void {
    this.delivered++;
    this.signal(this.message(vector));
  }
}

function copyOut(source: Uint8Array, offset: number, data: Uint8Array): void {
  if (offset < 0 || offset + data.length > source.length) {
    data.fill(0xff);
    return;
  }
  data.set(source.subarray(offset, offset + data.length));
}
