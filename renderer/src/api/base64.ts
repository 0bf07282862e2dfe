// Session bytes travel as base64 in JSON-RPC (core/api/methods.ts). atob/btoa only speak
// "binary strings", so these helpers convert between them and real bytes.
const encoder = new TextEncoder();

/** Keeps String.fromCharCode's argument list well under engines' limits. */
const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** What a terminal emits (a JS string) as UTF-8 bytes, the way the guest's pty expects it. */
export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Splits bytes into pieces of at most `max` bytes: one session write is bounded by the API
 * (MAX_SESSION_WRITE_BYTES), a paste is not. A cut inside a UTF-8 sequence is harmless because
 * the pieces are only joined again by the pty.
 */
export function splitBytes(bytes: Uint8Array, max: number): Uint8Array[] {
  if (max < 1) throw new RangeError(`piece size must be at least 1 (got ${max})`);
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += max) pieces.push(bytes.subarray(i, i + max));
  return pieces;
}
