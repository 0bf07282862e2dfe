// Completing a partial checksum (VIRTIO_NET_F_CSUM): the driver put the pseudo-header sum in the
// checksum field and left the rest to the device, which sums from csum_start to the end of the
// frame and stores the folded complement at csum_start + csum_offset (virtio 1.2, 5.1.6.2).

/** The 16-bit ones' complement sum of bytes [start, end) of `bytes`, big-endian words, unfolded. */
function onesComplementSum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  // Bytes in pairs; a sum of up to 32768 words of 16 bits stays far below 2^53.
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/**
 * Completes the checksum in `frame` (the Ethernet frame, our own copy). False, changing
 * nothing, if the offsets do not fit the frame.
 */
export function completeChecksum(
  frame: Uint8Array,
  csumStart: number,
  csumOffset: number,
): boolean {
  const field = csumStart + csumOffset;
  if (field + 2 > frame.length || csumStart >= frame.length) return false;
  const sum = fold(onesComplementSum(frame, csumStart, frame.length));
  const value = ~sum & 0xffff;
  frame[field] = value >>> 8;
  frame[field + 1] = value & 0xff;
  return true;
}

/** The Internet checksum of `bytes` (for tests and for checking a frame). */
export function internetChecksum(bytes: Uint8Array): number {
  return ~fold(onesComplementSum(bytes, 0, bytes.length)) & 0xffff;
}
