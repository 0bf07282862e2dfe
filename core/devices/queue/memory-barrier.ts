// A full memory barrier for rings shared with a guest running on other CPUs (or another process).
//
// Why: virtio's notification suppression needs a store followed by a load of another location to
// stay in that order (we publish used idx, then read used_event; we write avail_event, then
// re-read avail idx). x86 may let such a load pass the store (store buffering), and plain typed
// array accesses in JavaScript give no ordering at all. Without the barrier the device can, rarely
// and under load, skip an interrupt or miss a kick, and the guest's I/O hangs (seen at queue
// depth 32). An Atomics read-modify-write is sequentially consistent: V8 emits a lock-prefixed
// instruction (a full barrier on x86) and keeps other memory accesses on their side of it.
const cell = new Int32Array(new SharedArrayBuffer(4));

export function fullBarrier(): void {
  Atomics.add(cell, 0, 0);
}
