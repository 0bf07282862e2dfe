// The two address spaces a vCPU exit lands in: port I/O and MMIO. Devices claim ranges; an
// access is dispatched to the one device whose range holds it, with the offset into that range.
// The guest is untrusted: an access nobody claims reads as all-ones (what a PC's floating bus
// returns) and a write to it is dropped. Neither throws; each is counted, and logged once per
// address so a probing loop cannot flood the log.

/** A device on a bus. `data` is the access (1, 2, 4 or 8 bytes, little-endian). */
export interface BusDevice {
  /** Fill `data` with the bytes at `offset` of the device's range. */
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

export interface BusRange {
  readonly base: number;
  readonly length: number;
  readonly name: string;
  readonly device: BusDevice;
}

export interface BusOptions {
  /** Log lines (unclaimed accesses, refused guest mappings). Default: dropped. */
  log?: (line: string) => void;
}

const MAX_LOGGED_ADDRESSES = 1024;

export class Bus {
  readonly name: string;
  /** Accesses no device claimed, since creation. */
  unclaimedReads = 0;
  unclaimedWrites = 0;

  private ranges: BusRange[] = [];
  private readonly log: (line: string) => void;
  private readonly loggedAddresses = new Set<number>();
  private readonly limit: number;

  /** `limit`: one past the highest address (PIO: 0x10000; MMIO: 2^52, a safe integer). */
  constructor(name: string, limit: number, options: BusOptions = {}) {
    this.name = name;
    this.limit = limit;
    this.log = options.log ?? (() => {});
  }

  get rangeList(): readonly BusRange[] {
    return this.ranges;
  }

  /** Claims [base, base + length) for `device`; throws on an overlap (a machine-building bug). */
  register(base: number, length: number, device: BusDevice, name: string): BusRange {
    const result = this.tryRegister(base, length, device, name);
    if (typeof result === 'string') throw new Error(result);
    return result;
  }

  /**
   * The same, but reports a refusal as a string instead of throwing: for mappings the guest
   * chooses (a PCI BAR), which must never bring the VMM down.
   */
  tryRegister(base: number, length: number, device: BusDevice, name: string): BusRange | string {
    if (!(Number.isSafeInteger(base) && Number.isSafeInteger(length) && base >= 0 && length > 0)) {
      return `${this.name} bus: ${name}: invalid range ${hex(base)} +${String(length)}`;
    }
    if (base + length > this.limit) {
      return `${this.name} bus: ${name}: ${hex(base)} +${hex(length)} is past the bus's end ${hex(this.limit)}`;
    }
    const clash = this.ranges.find((r) => base < r.base + r.length && r.base < base + length);
    if (clash) {
      return (
        `${this.name} bus: ${name} at ${hex(base)}-${hex(base + length - 1)} overlaps ` +
        `${clash.name} at ${hex(clash.base)}-${hex(clash.base + clash.length - 1)}`
      );
    }
    const range: BusRange = { base, length, device, name };
    this.ranges.push(range);
    this.ranges.sort((a, b) => a.base - b.base);
    return range;
  }

  unregister(range: BusRange): void {
    this.ranges = this.ranges.filter((r) => r !== range);
  }

  /** The range holding `address`, or null (binary search over the sorted ranges). */
  find(address: number): BusRange | null {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const range = this.ranges[mid]!;
      if (address < range.base) hi = mid - 1;
      else if (address >= range.base + range.length) lo = mid + 1;
      else return range;
    }
    return null;
  }

  /** A guest read of `size` bytes at `address`. */
  read(address: number, size: number): Uint8Array {
    const data = new Uint8Array(size > 0 && size <= 8 ? size : 0);
    this.readInto(address, data);
    return data;
  }

  /** The same into a caller's buffer (the vCPU exit's data area). */
  readInto(address: number, data: Uint8Array): void {
    const range = this.claim(address, data.length);
    if (range === null) {
      data.fill(0xff);
      this.unclaimedReads++;
      this.logOnce('read', address, data.length);
      return;
    }
    range.device.read(address - range.base, data);
  }

  write(address: number, data: Uint8Array): void {
    const range = this.claim(address, data.length);
    if (range === null) {
      this.unclaimedWrites++;
      this.logOnce('write', address, data.length);
      return;
    }
    range.device.write(address - range.base, data);
  }

  /** The range that holds the whole access; one straddling two ranges is unclaimed. */
  private claim(address: number, size: number): BusRange | null {
    if (!Number.isSafeInteger(address) || size < 1 || size > 8) return null;
    const range = this.find(address);
    if (range === null || address + size > range.base + range.length) return null;
    return range;
  }

  private logOnce(kind: string, address: number, size: number): void {
    if (this.loggedAddresses.has(address) || this.loggedAddresses.size >= MAX_LOGGED_ADDRESSES)
      return;
    this.loggedAddresses.add(address);
    this.log(`${this.name}: unclaimed ${size}-byte ${kind} at ${hex(address)}`);
  }
}

export const PIO_LIMIT = 0x10000;
/** Guest physical addresses we map: 52 bits (x86-64's architectural limit), safe as numbers. */
export const MMIO_LIMIT = 2 ** 52;

export function createPioBus(options: BusOptions = {}): Bus {
  return new Bus('pio', PIO_LIMIT, options);
}

export function createMmioBus(options: BusOptions = {}): Bus {
  return new Bus('mmio', MMIO_LIMIT, options);
}

/** The little-endian value of an access of up to 4 bytes (larger ones: use readLe64). */
export function readLe(data: Uint8Array): number {
  let value = 0;
  for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) value = value * 256 + data[i]!;
  return value;
}

export function readLe64(data: Uint8Array): bigint {
  let value = 0n;
  for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
  return value;
}

/** Fills `data` with the low bytes of `value`, little-endian. */
export function writeLe(data: Uint8Array, value: number | bigint): void {
  if (typeof value === 'number' && data.length <= 4) {
    for (let i = 0; i < data.length; i++) data[i] = (value >>> (8 * i)) & 0xff;
    return;
  }
  let v = BigInt(value);
  for (let i = 0; i < data.length; i++) {
    data[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
