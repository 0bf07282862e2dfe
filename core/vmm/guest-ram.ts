// What the boot loader needs from guest memory: a view of [address, address + length) or null.
// GuestMemory (core/devices/guest-memory.ts) has exactly this shape, so the machine passes its
// memfd-backed regions and tests pass plain buffers. Unlike a device model, the loader writes
// trusted data at addresses it chose; a miss is a bug or a too-small VM, so it throws and says
// what it was writing.

import { GuestMemory } from '../devices/guest-memory.ts';

export interface GuestRam {
  slice(address: number, length: number): Uint8Array | null;
}

/** RAM for tests and small tools: one zero-filled buffer per region. */
export function plainGuestRam(regions: readonly { guestAddress: number; size: number }[]): {
  ram: GuestMemory;
  buffers: Uint8Array[];
} {
  const buffers = regions.map((r) => new Uint8Array(r.size));
  const ram = new GuestMemory(
    regions.map((r, i) => ({ guestAddress: r.guestAddress, bytes: buffers[i]! })),
  );
  return { ram, buffers };
}

export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

/** The bytes at [address, address + length), or an error naming `what`. */
export function ramSlice(ram: GuestRam, address: number, length: number, what: string): Uint8Array {
  const bytes = ram.slice(address, length);
  if (!bytes) {
    throw new Error(`${what}: [${hex(address)}, ${hex(address + length)}) is not inside guest RAM`);
  }
  return bytes;
}

export function ramView(ram: GuestRam, address: number, length: number, what: string): DataView {
  const bytes = ramSlice(ram, address, length, what);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function writeRam(ram: GuestRam, address: number, data: Uint8Array, what: string): void {
  ramSlice(ram, address, data.length, what).set(data);
}
