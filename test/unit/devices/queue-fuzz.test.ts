// Randomized rings against the split virtqueue: valid chains (direct and indirect) mixed with
// garbage in descriptors, indirect tables, ring fields and ring addresses. For every ring: no
// exception, pop terminates within the queue size, every view lies inside the backing buffer,
// the device writes nothing outside the used ring, used entries are exactly what was completed,
// and on untouched rings every chain round-trips exactly.
//
// Reproduce a failure with the seed and ring it prints:
//   QUEUE_FUZZ_SEED=<seed> QUEUE_FUZZ_RING=<ring> node --import tsx --test <this file>
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ChainReader,
  ChainWriter,
  SplitQueue,
  type DescriptorChain,
  type QueueLayout,
} from '../../../core/devices/queue/index.ts';
import { GuestRam, VirtqDriver, type SubmittedChain } from '../../support/virtq-driver.ts';

const RINGS = 20_000;
const SEED = Number(process.env.QUEUE_FUZZ_SEED ?? 0x5eed_b127);
const ONLY = process.env.QUEUE_FUZZ_RING === undefined ? null : Number(process.env.QUEUE_FUZZ_RING);

/** mulberry32: small, fast, and good enough to pick fuzz cases. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    u16: () => Math.floor(next() * 0x10000),
    u32: () => Math.floor(next() * 0x1_0000_0000),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Rng = ReturnType<typeof prng>;

interface Expected {
  sub: SubmittedChain;
  data: Uint8Array[];
}

interface Stats {
  chains: number;
  errors: number;
  broken: number;
  clean: number;
}

const BASES = [0, 0x10000, 0x1_0000_0000 - 0x2000, 2 ** 44, 2 ** 52];

function runRing(seed: number, stats: Stats): void {
  const rng = prng(seed);
  const size = 1 << rng.int(7); // 1..64
  const ram = new GuestRam({ size: rng.pick([16384, 32768]), base: rng.pick(BASES) });
  const eventIdx = rng.chance(0.5);
  const driver = new VirtqDriver(ram, { size, eventIdx });
  const garbageLayout = rng.chance(0.05);
  const layout: QueueLayout = garbageLayout ? randomLayout(rng, ram, driver.layout) : driver.layout;
  const queue = new SplitQueue(ram.memory, layout, { eventIdx });
  const usable = queue.broken === null;

  const start = rng.u16();
  driver.startAt(start);
  queue.nextAvail = start;
  queue.nextUsed = start;

  // Valid chains, as a real driver would add them.
  const expected: Expected[] = [];
  const wanted = rng.int(size + 1);
  for (let c = 0; c < wanted; c++) {
    const readable = Array.from({ length: rng.int(4) }, () =>
      Uint8Array.from({ length: rng.int(65) }, () => rng.int(256)),
    );
    const writable = Array.from({ length: rng.int(4) }, () => rng.int(65));
    const count = readable.length + writable.length;
    if (count === 0) continue;
    let indirect = rng.chance(0.3) && count <= size;
    if (!indirect && count > driver.freeDescriptors) {
      if (count > size || driver.freeDescriptors === 0) break;
      indirect = true;
    }
    if (driver.freeDescriptors === 0) break;
    expected.push({ sub: driver.add({ readable, writable, indirect }), data: readable });
  }
  driver.publish();

  const corrupt = rng.chance(0.5);
  if (corrupt) corruptRing(rng, driver, expected);
  const clean = !corrupt && !garbageLayout;

  // The device: pop until empty, completing in random order, poking the notification calls.
  const before = ram.bytes.slice();
  const popped: DescriptorChain[] = [];
  const inflight: number[] = [];
  const completed: { id: number; len: number }[] = [];
  const complete = (index: number) => {
    const head = inflight.splice(index, 1)[0]!;
    const len = rng.int(100);
    assert.equal(queue.addUsed(head, len), true, `completing head ${head}`);
    completed.push({ id: head, len });
  };
  let refNext = start;
  // Notification model: used idx at the last interrupt decision (unknown after nextUsed was
  // set, so the first decision must be yes), and whether notifications are on.
  const model = { on: true, decided: start, decidedValid: false, frozenAvailEvent: 0 };
  const usedIdx = () => (start + completed.length) & 0xffff;
  const checkInterrupt = () => {
    const got = queue.needsInterrupt();
    if (queue.broken !== null) return assert.equal(got, false);
    let want: boolean;
    if (!model.decidedValid) want = true;
    else if (eventIdx) {
      const usedEvent = ram.getU16(layout.availRing + 4 + 2 * layout.size);
      want = false;
      for (let j = model.decided; j !== usedIdx(); j = (j + 1) & 0xffff) {
        if (j === usedEvent) want = true;
      }
    } else want = usedIdx() !== model.decided && (ram.getU16(layout.availRing) & 1) === 0;
    model.decided = usedIdx();
    model.decidedValid = true;
    assert.equal(got, want, 'needsInterrupt');
  };
  const availEvent = () => ram.getU16(layout.usedRing + 4 + 8 * layout.size);
  const disable = () => {
    queue.disableNotifications();
    if (queue.broken !== null) return;
    model.on = false;
    model.frozenAvailEvent = availEvent();
    if (!eventIdx) assert.equal(ram.getU16(layout.usedRing), 1, 'used.flags NO_NOTIFY');
  };
  const enable = () => {
    const got = queue.enableNotifications();
    if (queue.broken !== null) return assert.equal(got, false);
    model.on = true;
    if (eventIdx) assert.equal(availEvent(), refNext, 'avail_event on enable');
    else assert.equal(ram.getU16(layout.usedRing), 0, 'used.flags on enable');
    assert.equal(got, ram.getU16(layout.availRing + 2) !== refNext, 'enable: more pending');
  };
  let pops = 0;
  const refOk = refLayoutOk(ram, layout);
  assert.equal(usable, refOk, `layout ${JSON.stringify(layout)}: ${queue.broken}`);
  for (;;) {
    // The model reads avail idx and the head before pop, and walks the chain after it: pop may
    // write avail_event, which a hostile layout can place over the descriptors.
    let refHead: number | null = null;
    let refBroken = queue.broken !== null;
    if (!refBroken) {
      const availIdx = ram.getU16(layout.availRing + 2);
      const pending = (availIdx - refNext) & 0xffff;
      if (pending > layout.size) refBroken = true;
      else if (pending > 0) {
        refHead = ram.getU16(layout.availRing + 4 + 2 * (refNext % layout.size));
        refNext = (refNext + 1) & 0xffff;
      }
    }
    const result = queue.pop();
    assert.equal(queue.broken !== null, refBroken, `broken: ${queue.broken}`);
    if (refHead === null) assert.equal(result, null);
    if (result === null) break;
    const ref = refWalk(ram, layout, refHead!);
    if (ref === 'error') {
      assert.ok('error' in result, `the model finds chain ${refHead} malformed`);
      assert.equal(result.head, refHead);
    } else {
      assert.ok('chain' in result, `the model finds chain ${refHead} fine: ${describe(result)}`);
      assert.deepEqual(
        {
          head: result.chain.head,
          readable: spans(result.chain.readable, ram),
          writable: spans(result.chain.writable, ram),
        },
        ref,
      );
    }
    if (eventIdx) {
      const want = model.on ? refNext : model.frozenAvailEvent;
      assert.equal(availEvent(), want, 'avail_event after pop');
    }
    pops++;
    assert.ok(pops <= size, `more than ${size} pops from a ring of ${size}`);
    if ('error' in result) {
      assert.ok(!clean, `valid ring, chain ${pops - 1}: ${result.error}`);
      assert.equal(typeof result.error, 'string');
      stats.errors++;
      inflight.push(result.head);
    } else {
      checkViews(result.chain, ram);
      popped.push(result.chain);
      inflight.push(result.chain.head);
      stats.chains++;
    }
    if (rng.chance(0.3)) complete(rng.int(inflight.length));
    if (eventIdx && !garbageLayout && rng.chance(0.3)) {
      // The driver moves used_event near the used idx, as Linux does (a driver-side write: the
      // snapshot takes it too, so the "nothing outside the used ring" check still holds).
      driver.usedEvent = usedIdx() + rng.int(5) - 2;
      const at = ram.offset(driver.fields.usedEvent);
      before.set(ram.bytes.subarray(at, at + 2), at);
    }
    if (rng.chance(0.2)) checkInterrupt();
    if (rng.chance(0.1)) disable();
    if (rng.chance(0.1)) enable();
    if (rng.chance(0.1)) {
      const bogus = rng.chance(0.5) ? rng.int(size * 2) : rng.u16();
      const accepted = queue.addUsed(bogus, 1);
      const index = inflight.indexOf(bogus);
      assert.equal(accepted, index >= 0, `addUsed(${bogus}) with in-flight ${inflight}`);
      if (accepted) {
        inflight.splice(index, 1);
        completed.push({ id: bogus, len: 1 });
      }
    }
  }
  while (inflight.length > 0) {
    if (queue.broken !== null) {
      assert.equal(queue.addUsed(inflight.pop()!, 0), false, 'broken: addUsed refused');
    } else complete(rng.int(inflight.length));
  }
  checkInterrupt();
  enable();
  if (queue.broken !== null) stats.broken++;

  // Nothing but the used ring changed (pop, addUsed and the notification calls write there only).
  const usedStart = usable ? layout.usedRing - ram.base : 0;
  const usedEnd = usable ? usedStart + 6 + 8 * queue.size : 0;
  assertUnchangedOutside(before, ram.bytes, usedStart, usedEnd);

  // The used ring holds exactly the completions, in order (when the ring is the driver's own;
  // with no completion, used idx is whatever a corrupting driver left there).
  if (!garbageLayout && queue.broken === null && completed.length > 0) {
    assert.deepEqual(driver.takeUsed(), completed);
  }

  if (clean) {
    stats.clean++;
    assert.equal(queue.broken, null);
    assert.equal(popped.length, expected.length, 'every valid chain popped');
    popped.forEach((chain, i) => checkRoundTrip(chain, expected[i]!, ram, driver, rng));
  } else {
    // Garbage chains still read and write safely through the stream helpers.
    for (const chain of popped) {
      const reader = new ChainReader(chain);
      while (reader.remaining > 0) {
        const n = 1 + rng.int(9);
        const got = reader.read(n);
        if (got === null) assert.ok(n > reader.remaining && reader.readU8() !== null);
      }
      assert.equal(reader.readU32(), null);
      const writer = new ChainWriter(chain);
      while (writer.remaining > 0) {
        if (!writer.writeU64(rng.u32())) assert.ok(writer.remaining < 8 && writer.writeU8(1));
      }
      assert.equal(writer.writeU8(1), false);
    }
  }
}

/**
 * An independent model of the device side, written from the spec rather than from the library:
 * BigInt addresses, a visited set for loops, plain RAM bounds. Only outcomes are compared (chain
 * spans, error or not, broken or not), not error messages.
 */
type RefChain = { head: number; readable: [number, number][]; writable: [number, number][] };

function refLayoutOk(ram: GuestRam, l: QueueLayout): boolean {
  const place = (addr: number, len: number, alignment: number) =>
    Number.isSafeInteger(addr) &&
    addr % alignment === 0 &&
    addr >= ram.base &&
    addr + len <= ram.end;
  return (
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768].includes(
      l.size,
    ) &&
    place(l.descTable, 16 * l.size, 16) &&
    place(l.availRing, 6 + 2 * l.size, 2) &&
    place(l.usedRing, 6 + 8 * l.size, 4)
  );
}

function refWalk(ram: GuestRam, l: QueueLayout, head: number): RefChain | 'error' {
  const inRam = (addr: bigint, len: number) =>
    addr >= BigInt(ram.base) && addr + BigInt(len) <= BigInt(ram.end);
  if (head >= l.size) return 'error';
  let table = l.descTable;
  let entries = l.size;
  let indirect = false;
  let seen = new Set<number>();
  let i = head;
  const chain: RefChain = { head, readable: [], writable: [] };
  for (;;) {
    if (seen.has(i)) return 'error';
    seen.add(i);
    const at = table + 16 * i;
    const addr = ram.getU64(at);
    const len = ram.getU32(at + 8);
    const flags = ram.getU16(at + 12);
    const next = ram.getU16(at + 14);
    if (flags & 4) {
      if (indirect || flags & 1 || len === 0 || len % 16 !== 0 || len / 16 > l.size) return 'error';
      if (!inRam(addr, len)) return 'error';
      table = Number(addr);
      entries = len / 16;
      indirect = true;
      seen = new Set();
      i = 0;
      continue;
    }
    if (!inRam(addr, len)) return 'error';
    const span: [number, number] = [Number(addr) - ram.base, len];
    if (flags & 2) chain.writable.push(span);
    else if (chain.writable.length > 0) return 'error';
    else chain.readable.push(span);
    if (!(flags & 1)) return chain;
    if (next >= entries) return 'error';
    i = next;
  }
}

function spans(views: Uint8Array[], ram: GuestRam): [number, number][] {
  return views.map((v) => [v.byteOffset - ram.bytes.byteOffset, v.byteLength]);
}

function checkViews(chain: DescriptorChain, ram: GuestRam): void {
  let readable = 0;
  let writable = 0;
  for (const [list, kind] of [
    [chain.readable, 'readable'],
    [chain.writable, 'writable'],
  ] as const) {
    for (const view of list) {
      assert.equal(view.buffer, ram.bytes.buffer, `${kind} view of another buffer`);
      assert.ok(
        view.byteOffset >= ram.bytes.byteOffset &&
          view.byteOffset + view.byteLength <= ram.bytes.byteOffset + ram.bytes.byteLength,
        `${kind} view [${view.byteOffset}, +${view.byteLength}) outside guest RAM`,
      );
      if (kind === 'readable') readable += view.byteLength;
      else writable += view.byteLength;
    }
  }
  assert.equal(chain.readableBytes, readable);
  assert.equal(chain.writableBytes, writable);
}

function checkRoundTrip(
  chain: DescriptorChain,
  want: Expected,
  ram: GuestRam,
  driver: VirtqDriver,
  rng: Rng,
): void {
  const { sub, data } = want;
  assert.equal(chain.head, sub.head);
  assert.equal(chain.readable.length, sub.readable.length);
  assert.equal(chain.writable.length, sub.writable.length);
  sub.readable.forEach((b, i) => {
    assert.equal(chain.readable[i]!.byteOffset, ram.offset(b.addr));
    assert.deepEqual(chain.readable[i], data[i]);
  });
  sub.writable.forEach((b, i) => {
    assert.equal(chain.writable[i]!.byteOffset, ram.offset(b.addr));
    assert.equal(chain.writable[i]!.length, b.len);
  });
  // Contents, through the stream helpers: what the driver wrote is what the device reads...
  const all = new Uint8Array(data.reduce((n, d) => n + d.length, 0));
  let at = 0;
  for (const d of data) {
    all.set(d, at);
    at += d.length;
  }
  assert.deepEqual(new ChainReader(chain).read(all.length), all);
  // ...and what the device writes is what the driver reads back.
  const reply = Uint8Array.from({ length: chain.writableBytes }, () => rng.int(256));
  const writer = new ChainWriter(chain);
  assert.equal(writer.write(reply), reply.length);
  assert.deepEqual(driver.written(sub), reply);
}

/** Scribble over the rings the way a buggy or hostile driver might. */
function corruptRing(rng: Rng, driver: VirtqDriver, expected: Expected[]): void {
  const { ram, size } = driver;
  const randomAddr = (): number | bigint => {
    switch (rng.int(5)) {
      case 0:
        return ram.base + rng.int(ram.bytes.length); // anywhere in RAM, rings included
      case 1:
        return ram.end - rng.int(64); // near the end
      case 2:
        return rng.chance(0.5) ? ram.base - 1 - rng.int(4096) : rng.u32();
      case 3:
        return (BigInt(rng.u32()) << 32n) | BigInt(rng.u32()); // any u64
      default:
        return (BigInt(0x1fffff + rng.int(3)) << 32n) | BigInt(rng.u32()); // around 2^53
    }
  };
  const randomLen = (): number =>
    rng.pick([0, 1, 16, 32, 48, rng.int(256), rng.int(ram.bytes.length), rng.u32(), 0xffffffff]);
  const randomDescriptor = () => ({
    addr: randomAddr(),
    len: randomLen(),
    flags: rng.chance(0.8) ? rng.int(8) : rng.u16(),
    next: rng.chance(0.8) ? rng.int(size + 2) : rng.u16(),
  });
  const tables = expected.flatMap((e) => (e.sub.indirectTable ? [e.sub.indirectTable] : []));

  for (let n = 1 + rng.int(8); n > 0; n--) {
    switch (rng.int(9)) {
      case 0: {
        driver.writeDescriptor(rng.int(size), randomDescriptor());
        break;
      }
      case 1: {
        // One field of a descriptor the driver really used.
        const index = rng.int(size);
        const desc = { ...driver.readDescriptor(index) };
        const field = rng.int(4);
        if (field === 0) desc.addr = randomAddr();
        else if (field === 1) desc.len = randomLen();
        else if (field === 2) desc.flags = rng.int(8);
        else desc.next = rng.int(size + 2);
        driver.writeDescriptor(index, desc);
        break;
      }
      case 2: {
        const table = tables.length > 0 ? rng.pick(tables) : null;
        if (table) driver.writeDescriptor(rng.int(table.len / 16), randomDescriptor(), table.addr);
        break;
      }
      case 3:
        driver.setAvailEntry(rng.int(size), rng.chance(0.5) ? rng.int(size * 2) : rng.u16());
        break;
      case 4:
        // avail idx: mostly within reach, sometimes anywhere.
        driver.availIdx = rng.chance(0.7) ? driver.availIdx + rng.int(size + 3) - 1 : rng.u16();
        break;
      case 5:
        driver.availFlags = rng.u16();
        driver.usedEvent = rng.u16();
        break;
      case 6: {
        // Raw bytes anywhere in the rings and tables.
        const { descTable, availRing, usedRing } = driver.layout;
        const [addr, len] = rng.pick([
          [descTable, 16 * size],
          [availRing, 6 + 2 * size],
          [usedRing, 6 + 8 * size],
        ] as const);
        ram.write(addr + rng.int(len), [rng.int(256)]);
        break;
      }
      case 7: {
        // A table descriptor turned into an indirect pointer at random memory.
        driver.writeDescriptor(rng.int(size), {
          addr: rng.chance(0.5) ? ram.base + 16 * rng.int(ram.bytes.length / 16) : randomAddr(),
          len: rng.pick([16, 32, 16 * size, 16 * (size + 1), rng.int(1024), rng.u32()]),
          flags: 4 | (rng.chance(0.2) ? 1 : 0) | (rng.chance(0.2) ? 2 : 0),
          next: rng.int(size + 1),
        });
        break;
      }
      default: {
        // A loop: some descriptor chains back to a head.
        const head = expected.length > 0 ? rng.pick(expected).sub.head : rng.int(size);
        const index = rng.int(size);
        const desc = { ...driver.readDescriptor(index) };
        driver.writeDescriptor(index, { ...desc, flags: desc.flags | 1, next: head });
      }
    }
  }
}

function randomLayout(rng: Rng, ram: GuestRam, good: QueueLayout): QueueLayout {
  const wild = () =>
    rng.pick([
      ram.base + rng.int(ram.bytes.length),
      ram.end - rng.int(256),
      rng.u32(),
      -rng.int(64),
      2 ** 53 + rng.int(16),
      NaN,
    ]);
  return {
    size: rng.chance(0.8) ? good.size : rng.pick([0, 3, 65536, 32768, 1.5]),
    descTable: rng.chance(0.5) ? good.descTable : wild(),
    availRing: rng.chance(0.5) ? good.availRing : wild(),
    usedRing: rng.chance(0.5) ? good.usedRing : wild(),
  };
}

function describe(result: { error: string } | { chain: DescriptorChain }): string {
  return 'error' in result ? result.error : `chain ${result.chain.head}`;
}

function assertUnchangedOutside(before: Uint8Array, after: Uint8Array, from: number, to: number) {
  const a = Buffer.from(before.buffer, before.byteOffset, before.byteLength);
  const b = Buffer.from(after.buffer, after.byteOffset, after.byteLength);
  const lo = Math.max(0, Math.min(from, a.length));
  const hi = Math.max(lo, Math.min(to, a.length));
  if (a.compare(b, 0, lo, 0, lo) !== 0 || a.compare(b, hi, b.length, hi, a.length) !== 0) {
    const at = a.findIndex((v, i) => v !== b[i] && (i < lo || i >= hi));
    assert.fail(`guest memory changed outside the used ring at offset ${at}`);
  }
}

test(`${RINGS} random rings, valid and garbage (seed ${SEED})`, () => {
  const stats: Stats = { chains: 0, errors: 0, broken: 0, clean: 0 };
  const started = performance.now();
  const rings = ONLY === null ? Array.from({ length: RINGS }, (_, i) => i) : [ONLY];
  for (const ring of rings) {
    const seed = (SEED + Math.imul(ring, 0x9e3779b1)) >>> 0;
    try {
      runRing(seed, stats);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(
        `queue fuzz failed: QUEUE_FUZZ_SEED=${SEED} QUEUE_FUZZ_RING=${ring}: ${message}`,
        { cause: error },
      );
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `queue fuzz: seed ${SEED}, ${rings.length} rings in ${seconds} s: ${stats.chains} chains, ` +
      `${stats.errors} malformed, ${stats.broken} broken rings, ${stats.clean} clean rings`,
  );
  if (ONLY === null) {
    // The mix stays meaningful: plenty of each outcome.
    assert.ok(stats.clean > RINGS / 4, 'clean rings');
    assert.ok(stats.errors > RINGS / 10, 'malformed chains');
    assert.ok(stats.broken > RINGS / 50, 'broken rings');
  }
});
