// The virtio-net config space (virtio 1.2, 5.1.4): mac, status, max_virtqueue_pairs, mtu.
// Also the MAC address and MTU checks shared by the device and its command line.

/** The largest Ethernet frame passt handles (ETH_MAX_MTU): also the bound on any frame. */
export const MAX_FRAME_BYTES = 65535;
/** An Ethernet header: the smallest frame worth relaying. */
export const MIN_FRAME_BYTES = 14;
/** passt's default MTU, 65520: the largest 802.3 MTU, rounded down to 32-bit words. */
export const DEFAULT_MTU = 65520;
/** The largest MTU that keeps every frame (MTU + 14-byte header) within MAX_FRAME_BYTES. */
export const MAX_MTU = MAX_FRAME_BYTES - MIN_FRAME_BYTES;
export const MIN_MTU = 68;

/** Parses "52:54:00:12:34:56" into 6 bytes; throws a RangeError naming what is wrong. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`not a MAC address (xx:xx:xx:xx:xx:xx): ${JSON.stringify(text)}`);
  }
  const mac = Uint8Array.from(parts.map((p) => parseInt(p, 16)));
  if ((mac[0]! & 1) !== 0) throw new RangeError(`${text} is a multicast MAC address`);
  return mac;
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function checkMtu(mtu: number): number {
  if (!(Number.isInteger(mtu) && mtu >= MIN_MTU && mtu <= MAX_MTU)) {
    throw new RangeError(`MTU ${mtu} is not in ${MIN_MTU}..${MAX_MTU}`);
  }
  return mtu;
}

/** struct virtio_net_config up to mtu: 12 bytes, little-endian. */
export function encodeNetConfig(mac: Uint8Array, linkUp: boolean, mtu: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  out.set(mac.subarray(0, 6), 0);
  view.setUint16(6, linkUp ? 1 : 0, true);
  view.setUint16(8, 1, true); // max_virtqueue_pairs
  view.setUint16(10, mtu, true);
  return out;
}
