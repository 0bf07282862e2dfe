// The split virtqueue library against virtio 1.2 section 2.7: normal chains, index wrapping,
// notification suppression, and every way an untrusted driver can malform a ring.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GuestMemory } from '../../../core/devices/guest-memory.ts';
import {
  ChainReader,
  ChainWriter,
  SplitQueue,
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_WRITE as WRITE,
  vringNeedEvent,
  type DescriptorChain,
  type PopResult,
  type SplitQueueOptions,
} from '../../../core/devices/queue/index.ts';
import {
  GuestRam,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
  VirtqDriver,
  type SubmittedChain,
} from '../../support/virtq-driver.ts';

const bytes = (...values: number[]) => Uint8Array.from(values);
const text = (s: string) => new TextEncoder().encode(s);

function setup(size = 16, options: SplitQueueOptions = {}) {
  const driver = VirtqDriver.create({ size, eventIdx: options.eventIdx });
  return { driver, ram: driver.ram, queue: driver.createQueue(options) };
}

function popChain(queue: SplitQueue): DescriptorChain {
  const result = queue.pop();
  if (result && 'chain' in result) return result.chain;
  assert.fail(`expected a chain, got ${describeResult(result)}`);
}

function popError(queue: SplitQueue, pattern: RegExp): number {
  const result: PopResult = queue.pop();
  assert.ok(result && 'error' in result, `expected an error, got ${describeResult(result)}`);
  assert.match(result.error, pattern);
  assert.equal(queue.broken, null, 'a malformed chain does not break the ring');
  return result.head;
}

function describeResult(result: PopResult): string {
  if (result === null) return 'null';
  if ('error' in result) return `error ${result.error}`;
  return `chain head ${result.chain.head}`;
}

/** The view lies where the driver put the buffer, in the RAM's backing store. */
function assertAt(view: Uint8Array, ram: GuestRam, addr: number, len: number): void {
  assert.equal(view.buffer, ram.bytes.buffer);
  assert.equal(view.byteOffset, ram.bytes.byteOffset + ram.offset(addr));
  assert.equal(view.byteLength, len);
}

function assertMatches(chain: DescriptorChain, sub: SubmittedChain, ram: GuestRam): void {
  assert.equal(chain.head, sub.head);
  assert.equal(chain.readable.length, sub.readable.length);
  assert.equal(chain.writable.length, sub.writable.length);
  sub.readable.forEach((b, i) => assertAt(chain.readable[i]!, ram, b.addr, b.len));
  sub.writable.forEach((b, i) => assertAt(chain.writable[i]!, ram, b.addr, b.len));
  const sum = (list: { len: number }[]) => list.reduce((n, b) => n + b.len, 0);
  assert.equal(chain.readableBytes, sum(sub.readable));
  assert.equal(chain.writableBytes, sum(sub.writable));
}

/** Complete a chain (or error) and check the used ring entry the driver sees. */
function complete(queue: SplitQueue, driver: VirtqDriver, head: number, len: number): void {
  assert.equal(queue.addUsed(head, len), true);
  assert.deepEqual(driver.takeUsed(), [{ id: head, len }]);
}

describe('normal chains', () => {
  test('an empty ring pops nothing', () => {
    const { queue } = setup();
    assert.equal(queue.broken, null);
    assert.equal(queue.pop(), null);
    assert.equal(queue.pop(), null);
  });

  test('a single device-readable descriptor', () => {
    const { driver, ram, queue } = setup();
    const sub = driver.submit({ readable: [text('hello')] });
    const chain = popChain(queue);
    assertMatches(chain, sub, ram);
    assert.deepEqual([...chain.readable[0]!], [...text('hello')]);
    assert.equal(queue.pop(), null);
    complete(queue, driver, chain.head, 0);
    assert.equal(driver.usedIdx, 1);
    assert.equal(queue.nextUsed, 1);
  });

  test('a single device-writable descriptor, filled through ChainWriter', () => {
    const { driver, ram, queue } = setup();
    const sub = driver.submit({ writable: [8] });
    const chain = popChain(queue);
    assertMatches(chain, sub, ram);
    const w = new ChainWriter(chain);
    assert.equal(w.writeU32(0xdeadbeef), true);
    assert.equal(w.written, 4);
    complete(queue, driver, chain.head, w.written);
    assert.deepEqual([...driver.written(sub, 4)], [0xef, 0xbe, 0xad, 0xde]);
  });

  test('a chain of readable then writable buffers, following NEXT in any order', () => {
    const { driver, ram, queue } = setup();
    const header = ram.place(bytes(1, 2, 3, 4));
    const payload = ram.place(text('payload'));
    const reply = ram.alloc(16);
    const status = ram.alloc(1);
    driver.writeDescriptor(9, { addr: header, len: 4, flags: NEXT, next: 2 });
    driver.writeDescriptor(2, { addr: payload, len: 7, flags: NEXT, next: 15 });
    driver.writeDescriptor(15, { addr: reply, len: 16, flags: WRITE | NEXT, next: 0 });
    driver.writeDescriptor(0, { addr: status, len: 1, flags: WRITE, next: 11 }); // no NEXT
    driver.pushHead(9);
    driver.publish();
    const chain = popChain(queue);
    assert.equal(chain.head, 9);
    assertAt(chain.readable[0]!, ram, header, 4);
    assertAt(chain.readable[1]!, ram, payload, 7);
    assertAt(chain.writable[0]!, ram, reply, 16);
    assertAt(chain.writable[1]!, ram, status, 1);
    assert.equal(chain.readableBytes, 11);
    assert.equal(chain.writableBytes, 17);
  });

  test('chains pop in avail order and may complete in any order', () => {
    const { driver, ram, queue } = setup(16);
    const subs = [0, 1, 2].map((i) => driver.add({ readable: [bytes(i), 3], writable: [i + 1] }));
    driver.publish();
    const chains = subs.map(() => popChain(queue));
    chains.forEach((c, i) => assertMatches(c, subs[i]!, ram));
    assert.equal(queue.pop(), null);
    assert.equal(queue.inflightCount, 3);
    for (const i of [2, 0, 1]) assert.equal(queue.addUsed(chains[i]!.head, i), true);
    assert.deepEqual(driver.takeUsed(), [
      { id: subs[2]!.head, len: 2 },
      { id: subs[0]!.head, len: 0 },
      { id: subs[1]!.head, len: 1 },
    ]);
    assert.equal(queue.inflightCount, 0);
  });

  test('an indirect chain (and the WRITE flag on the table descriptor is ignored)', () => {
    const { driver, ram, queue } = setup(4);
    const sub = driver.submit({
      readable: [text('abc'), text('defgh')],
      writable: [4, 1, 2, 3], // six descriptors in the table: more than the queue size is
      indirect: true, //          fine when maxIndirectEntries allows (default: queue size)
    });
    const result = queue.pop();
    assert.ok(result && 'error' in result, 'six entries exceed the default limit of 4');
    queue.addUsed(result.head, 0);

    const relaxed = new SplitQueue(driver.memory, driver.layout, { maxIndirectEntries: 8 });
    relaxed.nextAvail = queue.nextAvail - 1;
    const chain = popChain(relaxed);
    assertMatches(chain, sub, ram);

    const sub2 = driver.submit({ readable: [text('x')], writable: [2], indirect: true });
    const head = driver.readDescriptor(sub2.head);
    driver.writeDescriptor(sub2.head, { ...head, flags: INDIRECT | WRITE });
    assertMatches(popChain(queue), sub2, ram);
  });

  test('direct descriptors followed by one indirect descriptor', () => {
    const { driver, ram, queue } = setup();
    const hdr = ram.place(text('hdr'));
    const data = ram.place(text('data'));
    const out = ram.alloc(8);
    const table = ram.alloc(32, 16);
    driver.writeDescriptor(0, { addr: data, len: 4, flags: 0 | NEXT, next: 1 }, table);
    driver.writeDescriptor(1, { addr: out, len: 8, flags: WRITE, next: 0 }, table);
    driver.writeDescriptor(3, { addr: hdr, len: 3, flags: NEXT, next: 7 });
    driver.writeDescriptor(7, { addr: table, len: 32, flags: INDIRECT, next: 0 });
    driver.pushHead(3);
    driver.publish();
    const chain = popChain(queue);
    assert.equal(chain.head, 3);
    assertAt(chain.readable[0]!, ram, hdr, 3);
    assertAt(chain.readable[1]!, ram, data, 4);
    assertAt(chain.writable[0]!, ram, out, 8);
  });

  test('zero-length descriptors give empty views', () => {
    const { driver, ram, queue } = setup();
    const sub = driver.submit({ readable: [0, text('x'), 0], writable: [0, 1] });
    const chain = popChain(queue);
    assertMatches(chain, sub, ram);
    assert.deepEqual(
      chain.readable.map((v) => v.length),
      [0, 1, 0],
    );
    const r = new ChainReader(chain);
    assert.equal(r.readU8(), 'x'.charCodeAt(0));
    assert.equal(r.readU8(), null);
    const w = new ChainWriter(chain);
    assert.equal(w.writeU8(7), true);
    assert.equal(w.writeU8(8), false);
  });

  test('u16 indices wrap past 65535 (set from outside, as vhost-user SET_VRING_BASE)', () => {
    const { driver, ram, queue } = setup(8);
    driver.startAt(65530);
    queue.nextAvail = 65530;
    queue.nextUsed = 65530;
    assert.equal(queue.nextAvail, 65530);
    for (let batch = 0; batch < 4; batch++) {
      const subs = [0, 1, 2].map((i) => driver.add({ readable: [bytes(batch, i)], writable: [1] }));
      driver.publish();
      for (const sub of subs) {
        const chain = popChain(queue);
        assertMatches(chain, sub, ram);
        assert.equal(queue.addUsed(chain.head, 1), true);
      }
      assert.equal(queue.pop(), null);
      assert.deepEqual(
        driver.takeUsed().map((u) => u.id),
        subs.map((s) => s.head),
      );
      subs.forEach((s) => driver.release(s));
    }
    assert.equal(queue.nextAvail, (65530 + 12) & 0xffff);
    assert.equal(queue.nextUsed, 6);
    assert.equal(driver.usedIdx, 6);
  });

  test('u16 indices wrap naturally after 65536 chains', () => {
    const { driver, queue } = setup(4);
    const data = driver.ram.place(bytes(42));
    for (let n = 0; n < 70000; n++) {
      driver.writeDescriptor(n & 3, { addr: data, len: 1, flags: 0, next: 0 });
      driver.pushHead(n & 3);
      if ((n & 3) === 3) {
        driver.publish();
        for (let k = 0; k < 4; k++) {
          const chain = popChain(queue);
          assert.equal(queue.addUsed(chain.head, 0), true);
        }
      }
    }
    assert.equal(queue.nextAvail, 70000 & 0xffff);
    assert.equal(driver.usedIdx, 70000 & 0xffff);
    assert.equal(driver.usedEntry((70000 - 1) & 3).id, (70000 - 1) & 3);
  });

  test('nextAvail and nextUsed are u16', () => {
    const { queue } = setup();
    queue.nextAvail = 65536 + 5;
    queue.nextUsed = -1;
    assert.equal(queue.nextAvail, 5);
    assert.equal(queue.nextUsed, 65535);
  });
});

describe('used buffer notifications', () => {
  test('without EVENT_IDX: NO_INTERRUPT decides, and nothing new means no interrupt', () => {
    const { driver, queue } = setup();
    assert.equal(queue.needsInterrupt(), false, 'nothing used yet');
    driver.submit({ writable: [1] });
    driver.submit({ writable: [1] });
    queue.addUsed(popChain(queue).head, 1);
    assert.equal(queue.needsInterrupt(), true);
    assert.equal(queue.needsInterrupt(), false, 'already decided for that entry');
    driver.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    driver.usedEvent = queue.nextUsed; // ignored without EVENT_IDX
    queue.addUsed(popChain(queue).head, 1);
    assert.equal(queue.needsInterrupt(), false);
  });

  test('with EVENT_IDX: vring_need_event over the batch since the last decision', () => {
    // The spec's rule: interrupt iff one of the entries written in the batch went to the used
    // ring index equal to used_event. Checked against vring_need_event for many batches.
    const { driver, queue } = setup(8, { eventIdx: true });
    const data = driver.ram.place(bytes(1));
    for (let i = 0; i < 8; i++)
      driver.writeDescriptor(i, { addr: data, len: 1, flags: 0, next: 0 });
    driver.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT; // must be ignored with EVENT_IDX
    let decided = 0;
    let checks = 0;
    const start = 65530;
    driver.startAt(start);
    queue.nextAvail = start;
    queue.nextUsed = start;
    assert.equal(queue.needsInterrupt(), true, 'after nextUsed is set, be safe: interrupt');
    decided = start;
    for (let round = 0; round < 40; round++) {
      const batch = round % 5; // 0..4 entries
      for (let k = 0; k < batch; k++) driver.pushHead(k);
      driver.publish();
      for (let k = 0; k < batch; k++) queue.addUsed(popChain(queue).head, 0);
      for (const offset of [-2, -1, 0, 1, 2, 3, 4, 5, 300]) {
        const usedEvent = (decided + offset) & 0xffff;
        let expected = false;
        for (let j = 0; j < batch; j++) if (((decided + j) & 0xffff) === usedEvent) expected = true;
        assert.equal(vringNeedEvent(usedEvent, queue.nextUsed, decided), expected);
        checks++;
      }
      const usedEvent = (decided + (round % 4)) & 0xffff;
      driver.usedEvent = usedEvent;
      let expected = false;
      for (let j = 0; j < batch; j++) if (((decided + j) & 0xffff) === usedEvent) expected = true;
      assert.equal(queue.needsInterrupt(), expected, `round ${round}`);
      decided = queue.nextUsed;
      driver.takeUsed();
    }
    assert.ok(checks > 300);
    assert.ok(queue.nextUsed < start, 'the used idx wrapped during the test');
  });

  test('vringNeedEvent agrees with its definition on random triples', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xffff;
    for (let i = 0; i < 5000; i++) {
      const old = rand();
      const count = rand() % 40;
      const newIdx = (old + count) & 0xffff;
      const event = i % 2 ? (old + (rand() % 50) - 5) & 0xffff : rand();
      let expected = false;
      for (let j = 0; j < count; j++) if (((old + j) & 0xffff) === event) expected = true;
      assert.equal(vringNeedEvent(event, newIdx, old), expected, `${event} ${newIdx} ${old}`);
    }
  });
});

describe('available buffer notifications', () => {
  test('without EVENT_IDX: used.flags NO_NOTIFY while disabled', () => {
    const { driver, queue } = setup();
    assert.equal(driver.usedFlags, 0);
    queue.disableNotifications();
    assert.equal(driver.usedFlags, VIRTQ_USED_F_NO_NOTIFY);
    driver.add({ readable: [1] });
    assert.equal(driver.publish(), false, 'the driver would not kick');
    assert.equal(queue.enableNotifications(), true, 'a buffer arrived while disabled');
    assert.equal(driver.usedFlags, 0);
    popChain(queue);
    assert.equal(queue.enableNotifications(), false, 'nothing pending');
    driver.add({ readable: [1] });
    assert.equal(driver.publish(), true, 'driver kicks');
  });

  test('with EVENT_IDX: pop moves avail_event, disabled it stays, enable catches up', () => {
    const { driver, queue } = setup(8, { eventIdx: true });
    driver.submit({ readable: [1] });
    driver.submit({ readable: [1] });
    popChain(queue);
    assert.equal(driver.availEvent, 1);
    queue.disableNotifications();
    assert.equal(driver.usedFlags, 0, 'flags stay 0 with EVENT_IDX');
    popChain(queue);
    assert.equal(driver.availEvent, 1, 'not moved while disabled');
    driver.add({ readable: [1] });
    assert.equal(driver.publish(), false, 'avail idx 2 -> 3 does not pass avail_event 1');
    assert.equal(queue.enableNotifications(), true, 'a buffer arrived meanwhile');
    assert.equal(driver.availEvent, 2, 'avail_event = nextAvail');
    popChain(queue);
    assert.equal(driver.availEvent, 3);
    assert.equal(queue.enableNotifications(), false);
    driver.add({ readable: [1] });
    assert.equal(driver.publish(), true, 'avail idx 3 -> 4 passes avail_event 3: kick');
  });
});

describe('malformed chains: error, completed by the device, queue carries on', () => {
  test('descriptor address outside guest memory, and the queue goes on', () => {
    const { driver, ram, queue } = setup();
    driver.writeDescriptor(0, { addr: ram.end + 0x1000, len: 4, flags: 0, next: 0 });
    driver.writeDescriptor(1, { addr: ram.base - 0x100, len: 4, flags: 0, next: 0 });
    driver.pushHead(0);
    driver.pushHead(1);
    driver.publish();
    complete(queue, driver, popError(queue, /outside guest memory/), 0);
    complete(queue, driver, popError(queue, /outside guest memory/), 0);
    const sub = driver.submit({ readable: [text('ok')] });
    assertMatches(popChain(queue), sub, ram);
  });

  test('descriptor length reaching past the end of memory', () => {
    const { driver, ram, queue } = setup();
    driver.writeDescriptor(0, { addr: ram.end - 4, len: 5, flags: 0, next: 0 });
    driver.writeDescriptor(1, { addr: ram.end - 4, len: 0xffffffff, flags: WRITE, next: 0 });
    driver.writeDescriptor(2, { addr: ram.end - 4, len: 4, flags: WRITE, next: 0 });
    for (const h of [0, 1, 2]) driver.pushHead(h);
    driver.publish();
    popError(queue, /outside guest memory/);
    popError(queue, /outside guest memory|exceeds/);
    assertAt(popChain(queue).writable[0]!, ram, ram.end - 4, 4);
  });

  test('descriptor address at or past 2^53 (u64 high half > 0x1fffff)', () => {
    const { driver, queue } = setup();
    driver.writeDescriptor(0, { addr: 2n ** 53n, len: 1, flags: 0, next: 0 });
    driver.writeDescriptor(1, { addr: 0xffff_ffff_ffff_fff0n, len: 1, flags: 0, next: 0 });
    driver.writeDescriptor(2, { addr: 2n ** 53n + 0x10000n, len: 16, flags: INDIRECT, next: 0 });
    for (const h of [0, 1, 2]) driver.pushHead(h);
    driver.publish();
    popError(queue, /beyond 2\^53/);
    popError(queue, /beyond 2\^53/);
    popError(queue, /indirect table .* outside guest memory/);
  });

  test('a buffer crossing the end of a region into the next one', () => {
    const ram = new GuestRam({ size: 1 << 16 });
    const next = new Uint8Array(4096);
    const memory = new GuestMemory([ram.region, { guestAddress: ram.end, bytes: next }]);
    const driver = new VirtqDriver(ram, { size: 4 });
    const queue = new SplitQueue(memory, driver.layout);
    driver.writeDescriptor(0, { addr: ram.end - 8, len: 16, flags: 0, next: 0 });
    driver.writeDescriptor(1, { addr: ram.end + 8, len: 16, flags: 0, next: 0 });
    driver.pushHead(0);
    driver.pushHead(1);
    driver.publish();
    popError(queue, /outside guest memory/);
    const chain = popChain(queue);
    assert.equal(chain.readable[0]!.buffer, next.buffer);
    assert.equal(chain.readable[0]!.byteOffset, 8);
  });

  test('a NEXT loop (self, and through several descriptors) ends after one lap', () => {
    const { driver, ram, queue } = setup(8);
    const b = ram.place(bytes(1));
    driver.writeDescriptor(0, { addr: b, len: 1, flags: NEXT, next: 0 });
    driver.writeDescriptor(1, { addr: b, len: 1, flags: NEXT, next: 2 });
    driver.writeDescriptor(2, { addr: b, len: 1, flags: NEXT, next: 3 });
    driver.writeDescriptor(3, { addr: b, len: 1, flags: NEXT, next: 1 });
    driver.pushHead(0);
    driver.pushHead(1);
    driver.publish();
    popError(queue, /loop/);
    popError(queue, /loop/);
  });

  test('a chain through every descriptor is fine; one more is longer than the queue', () => {
    const { driver, ram, queue } = setup(4);
    const b = ram.place(bytes(1, 2, 3, 4));
    for (let i = 0; i < 4; i++) {
      driver.writeDescriptor(i, { addr: b + i, len: 1, flags: i < 3 ? NEXT : 0, next: i + 1 });
    }
    driver.pushHead(0);
    driver.publish();
    assert.equal(popChain(queue).readable.length, 4);
    driver.writeDescriptor(3, { addr: b + 3, len: 1, flags: NEXT, next: 0 });
    driver.pushHead(0);
    driver.publish();
    popError(queue, /longer than the queue size/);
  });

  test('next index >= queue size', () => {
    const { driver, ram, queue } = setup(8);
    driver.writeDescriptor(0, { addr: ram.place(bytes(1)), len: 1, flags: NEXT, next: 8 });
    driver.pushHead(0);
    driver.publish();
    popError(queue, /next index 8 out of range/);
  });

  test('head index >= queue size: an error whose raw head the device gives back', () => {
    const { driver, queue } = setup(8);
    driver.pushHead(8);
    driver.pushHead(0xffff);
    driver.publish();
    const h1 = popError(queue, /head index 8 out of range/);
    const h2 = popError(queue, /head index 65535 out of range/);
    assert.deepEqual([h1, h2], [8, 0xffff]);
    assert.equal(queue.addUsed(8, 0), true);
    assert.equal(queue.addUsed(8, 0), false, 'only as often as popped');
    assert.equal(queue.addUsed(0xffff, 0), true);
    assert.deepEqual(driver.takeUsed(), [
      { id: 8, len: 0 },
      { id: 0xffff, len: 0 },
    ]);
  });

  test('indirect table length not a multiple of 16, zero, or too many entries', () => {
    const { driver, ram, queue } = setup(8);
    const table = ram.alloc(16 * 9, 16);
    const b = ram.place(bytes(1));
    for (let i = 0; i < 9; i++) {
      driver.writeDescriptor(i, { addr: b, len: 1, flags: i < 8 ? NEXT : 0, next: i + 1 }, table);
    }
    const cases: [number, RegExp][] = [
      [24, /not a non-zero multiple of 16/],
      [0, /not a non-zero multiple of 16/],
      [17, /not a non-zero multiple of 16/],
      [16 * 9, /9 entries exceeds 8/],
      [0xfffffff0, /exceeds 8/],
    ];
    cases.forEach(([len], i) => {
      driver.writeDescriptor(i, { addr: table, len, flags: INDIRECT, next: 0 });
      driver.pushHead(i);
    });
    driver.writeDescriptor(7, { addr: table, len: 16 * 8, flags: INDIRECT, next: 0 });
    driver.pushHead(7);
    driver.publish();
    for (const [, pattern] of cases) popError(queue, pattern);
    // Eight entries: allowed, but entry 7 chains to 8, which is past the table's end.
    popError(queue, /indirect descriptor 7: next index 8 out of range \(table of 8\)/);
  });

  test('indirect table outside guest memory', () => {
    const { driver, ram, queue } = setup();
    driver.writeDescriptor(0, { addr: ram.end - 16, len: 32, flags: INDIRECT, next: 0 });
    driver.pushHead(0);
    driver.publish();
    popError(queue, /indirect table .* outside guest memory/);
  });

  test('INDIRECT inside an indirect table', () => {
    const { driver, ram, queue } = setup();
    const inner = ram.alloc(16, 16);
    const outer = ram.alloc(32, 16);
    driver.writeDescriptor(0, { addr: ram.place(bytes(1)), len: 1, flags: 0, next: 0 }, inner);
    driver.writeDescriptor(0, { addr: ram.place(bytes(2)), len: 1, flags: NEXT, next: 1 }, outer);
    driver.writeDescriptor(1, { addr: inner, len: 16, flags: INDIRECT, next: 0 }, outer);
    driver.writeDescriptor(5, { addr: outer, len: 32, flags: INDIRECT, next: 0 });
    driver.pushHead(5);
    driver.publish();
    popError(queue, /INDIRECT inside an indirect table/);
  });

  test('INDIRECT together with NEXT', () => {
    const { driver, ram, queue } = setup();
    const table = ram.alloc(16, 16);
    driver.writeDescriptor(0, { addr: ram.place(bytes(1)), len: 1, flags: 0, next: 0 }, table);
    driver.writeDescriptor(0, { addr: table, len: 16, flags: INDIRECT | NEXT, next: 1 });
    driver.writeDescriptor(1, { addr: ram.place(bytes(1)), len: 1, flags: 0, next: 0 });
    driver.pushHead(0);
    driver.publish();
    popError(queue, /INDIRECT and NEXT/);
  });

  test('INDIRECT when VIRTIO_F_INDIRECT_DESC was not negotiated', () => {
    const driver = VirtqDriver.create();
    const queue = driver.createQueue({ indirectDesc: false });
    driver.submit({ readable: [1], indirect: true });
    popError(queue, /without VIRTIO_F_INDIRECT_DESC/);
  });

  test('a NEXT loop inside an indirect table', () => {
    const { driver, ram, queue } = setup();
    const table = ram.alloc(48, 16);
    const b = ram.place(bytes(1));
    driver.writeDescriptor(0, { addr: b, len: 1, flags: NEXT, next: 1 }, table);
    driver.writeDescriptor(1, { addr: b, len: 1, flags: NEXT, next: 2 }, table);
    driver.writeDescriptor(2, { addr: b, len: 1, flags: NEXT, next: 0 }, table);
    driver.writeDescriptor(0, { addr: table, len: 48, flags: INDIRECT, next: 0 });
    driver.pushHead(0);
    driver.publish();
    popError(queue, /indirect chain longer than its table/);
  });

  test('a device-readable buffer after a device-writable one (direct and indirect)', () => {
    const { driver, ram, queue } = setup();
    const b = ram.alloc(8);
    driver.writeDescriptor(0, { addr: b, len: 4, flags: WRITE | NEXT, next: 1 });
    driver.writeDescriptor(1, { addr: b + 4, len: 4, flags: 0, next: 0 });
    const table = ram.alloc(32, 16);
    driver.writeDescriptor(0, { addr: b, len: 4, flags: WRITE | NEXT, next: 1 }, table);
    driver.writeDescriptor(1, { addr: b + 4, len: 4, flags: 0, next: 0 }, table);
    driver.writeDescriptor(2, { addr: table, len: 32, flags: INDIRECT, next: 0 });
    driver.pushHead(0);
    driver.pushHead(2);
    driver.publish();
    popError(queue, /^descriptor 1: device-readable buffer after a device-writable one/);
    popError(queue, /^indirect descriptor 1: device-readable buffer after/);
  });

  test('a chain longer than maxChainBytes (and exactly maxChainBytes is fine)', () => {
    const { driver, ram, queue } = setup(8, { maxChainBytes: 3 << 20 });
    const mib = ram.alloc(1 << 20);
    for (let i = 0; i < 4; i++) {
      driver.writeDescriptor(i, { addr: mib, len: 1 << 20, flags: NEXT, next: i + 1 });
    }
    driver.writeDescriptor(3, { addr: mib, len: 1 << 20, flags: 0, next: 0 });
    driver.writeDescriptor(4, { addr: mib, len: 1 << 20, flags: WRITE, next: 0 });
    driver.pushHead(0); // four MiB
    driver.pushHead(1); // three MiB
    driver.publish();
    popError(queue, /descriptor 3: chain length 4194304 exceeds 3145728/);
    assert.equal(popChain(queue).readableBytes, 3 << 20);
  });

  test('lengths whose sum overflows u32, and the 256 MiB default cap', () => {
    // A 16 GiB region that is never really allocated: the walk rejects the chain on its total
    // before asking memory for the buffer that would take it over.
    const huge = {
      length: 2 ** 34,
      subarray: () => new Uint8Array(0),
    } as unknown as Uint8Array;
    const ram = new GuestRam({ size: 1 << 16 });
    const memory = new GuestMemory([ram.region, { guestAddress: 2 ** 40, bytes: huge }]);
    const driver = new VirtqDriver(ram, { size: 8 });
    driver.writeDescriptor(0, { addr: 2 ** 40, len: 0xffffffff, flags: NEXT, next: 1 });
    driver.writeDescriptor(1, { addr: 2 ** 40, len: 1, flags: WRITE, next: 0 });
    driver.writeDescriptor(2, { addr: 2 ** 40, len: 0x10000001, flags: 0, next: 0 });
    driver.writeDescriptor(3, { addr: 2 ** 40, len: 0x10000000, flags: 0, next: 0 });
    for (const h of [0, 2, 3]) driver.pushHead(h);
    driver.publish();
    const full = new SplitQueue(memory, driver.layout, { maxChainBytes: 2 ** 40 });
    popError(full, /chain length 4294967296 exceeds 4294967295/);
    const normal = new SplitQueue(memory, driver.layout);
    normal.nextAvail = 1;
    popError(normal, /chain length 268435457 exceeds 268435456/);
    assert.equal(popChain(normal).readableBytes, 0x10000000);
  });
});

describe('a broken ring', () => {
  test('avail idx more than the queue size ahead: broken, pop null forever', () => {
    const { driver, queue } = setup(8);
    driver.submit({ readable: [1] });
    popChain(queue);
    driver.availIdx = 1 + 9;
    assert.equal(queue.pop(), null);
    assert.match(queue.broken ?? '', /avail idx 10 is 9 entries ahead/);
    driver.availIdx = 2;
    assert.equal(queue.pop(), null, 'stays broken');
    assert.equal(queue.addUsed(0, 0), false, 'head 0 was popped, but the ring is broken');
    assert.equal(queue.needsInterrupt(), false);
    assert.equal(queue.enableNotifications(), false);
    queue.disableNotifications();
  });

  test('avail idx going backwards looks like a jump of almost 65536: broken', () => {
    const { driver, queue } = setup(8);
    driver.submit({ readable: [1] });
    driver.submit({ readable: [1] });
    popChain(queue);
    popChain(queue);
    driver.availIdx = 1;
    assert.equal(queue.pop(), null);
    assert.match(queue.broken ?? '', /65535 entries ahead/);
  });

  test('avail idx exactly the queue size ahead is a full ring, not an error', () => {
    const { driver, queue } = setup(4);
    for (let i = 0; i < 4; i++) driver.add({ readable: [1] });
    driver.publish();
    for (let i = 0; i < 4; i++) popChain(queue);
    assert.equal(queue.pop(), null);
    assert.equal(queue.broken, null);
  });

  test('ring layouts that cannot be used are refused at construction, without throwing', () => {
    const ram = new GuestRam({ size: 1 << 16 });
    const ok = {
      size: 16,
      descTable: ram.base,
      availRing: ram.base + 256,
      usedRing: ram.base + 512,
    };
    const cases: [Record<string, number>, RegExp][] = [
      [{ size: 0 }, /queue size 0/],
      [{ size: 12 }, /queue size 12/],
      [{ size: 65536 }, /queue size 65536/],
      [{ size: 1.5 }, /queue size 1.5/],
      [{ size: NaN }, /queue size NaN/],
      [{ descTable: ram.base + 8 }, /descriptor table .* not 16-byte aligned/],
      [{ availRing: ram.base + 257 }, /available ring .* not 2-byte aligned/],
      [{ usedRing: ram.base + 514 }, /used ring .* not 4-byte aligned/],
      [{ descTable: ram.end - 128 }, /descriptor table .* outside guest memory/],
      [{ availRing: ram.end - 36 }, /available ring .* outside guest memory/],
      [{ usedRing: ram.end - 132 }, /used ring .* outside guest memory/],
      [{ usedRing: 0 }, /used ring 0x0 .* outside guest memory/],
      [{ descTable: -16 }, /descriptor table address -16 is not a guest address/],
      [{ availRing: 2 ** 60 }, /available ring address \d+ is not a guest address/],
      [{ usedRing: 2 ** 52 }, /used ring .* outside guest memory/],
    ];
    for (const [change, pattern] of cases) {
      const queue = new SplitQueue(ram.memory, { ...ok, ...change });
      assert.match(queue.broken ?? 'not broken', pattern, JSON.stringify(change));
      assert.equal(queue.pop(), null);
      assert.equal(queue.addUsed(0, 0), false);
      assert.equal(queue.needsInterrupt(), false);
      assert.equal(queue.enableNotifications(), false);
      queue.disableNotifications();
    }
    // The exact fit at the end of memory is fine.
    const edge = new SplitQueue(ram.memory, { ...ok, usedRing: ram.end - 136 });
    assert.equal(edge.broken, null);
  });
});

describe('addUsed', () => {
  test('a head that was never popped, or twice, is rejected without touching the ring', () => {
    const { driver, ram, queue } = setup(8);
    driver.submit({ writable: [4] });
    const used = driver.layout.usedRing;
    const before = ram.read(used, 6 + 8 * 8);
    for (const head of [0, 3, 7, 8, 65535, -1, 1.5, NaN, 2 ** 32]) {
      assert.equal(queue.addUsed(head, 4), false, `head ${head}`);
    }
    assert.deepEqual(ram.read(used, 6 + 8 * 8), before);
    const chain = popChain(queue);
    assert.equal(queue.addUsed(chain.head, 4), true);
    assert.equal(queue.addUsed(chain.head, 4), false, 'already given back');
    assert.equal(driver.usedIdx, 1);
    assert.equal(queue.nextUsed, 1);
  });

  test('written bytes are clamped to a u32', () => {
    const { driver, queue } = setup(8);
    for (let i = 0; i < 3; i++) driver.submit({ writable: [1] });
    queue.addUsed(popChain(queue).head, -5);
    queue.addUsed(popChain(queue).head, 2 ** 40);
    queue.addUsed(popChain(queue).head, 3.7);
    assert.deepEqual(
      driver.takeUsed().map((u) => u.len),
      [0, 0xffffffff, 3],
    );
  });

  test('a driver that reuses a head before it is used gets it back twice', () => {
    const { driver, queue } = setup(8);
    const sub = driver.add({ readable: [1] });
    driver.pushHead(sub.head);
    driver.publish();
    const a = popChain(queue);
    const b = popChain(queue);
    assert.equal(a.head, b.head);
    assert.equal(queue.addUsed(a.head, 0), true);
    assert.equal(queue.addUsed(a.head, 0), true);
    assert.equal(queue.addUsed(a.head, 0), false);
  });
});

describe('ChainReader and ChainWriter', () => {
  test('reads integers little-endian across buffer boundaries', () => {
    const all = bytes(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c);
    const split = [all.subarray(0, 1), all.subarray(1, 1), all.subarray(1, 4), all.subarray(4)];
    const r = new ChainReader(split);
    assert.equal(r.remaining, 12);
    assert.equal(r.readU16(), 0x0201);
    assert.equal(r.readU32(), 0x06050403);
    assert.equal(r.consumed, 6);
    assert.equal(r.readU64(), null, 'only six left: nothing consumed');
    assert.equal(r.remaining, 6);
    assert.deepEqual([...r.read(2)!], [7, 8]);
    assert.equal(r.readU32(), 0x0c0b0a09);
    assert.equal(r.readU8(), null);
    assert.equal(r.read(1), null);
    assert.deepEqual(r.read(0), new Uint8Array(0));
  });

  test('u64: exact below 2^53, never below 2^53 above it, exact as a bigint', () => {
    const buf = new Uint8Array(24);
    const dv = new DataView(buf.buffer);
    dv.setBigUint64(0, 2n ** 53n - 1n, true);
    dv.setBigUint64(8, 0xffff_ffff_ffff_ffffn, true);
    dv.setBigUint64(16, 0x0123_4567_89ab_cdefn, true);
    const r = new ChainReader([buf.subarray(0, 3), buf.subarray(3, 13), buf.subarray(13)]);
    assert.equal(r.readU64(), Number.MAX_SAFE_INTEGER);
    assert.ok(r.readU64()! >= 2 ** 53);
    assert.equal(r.readU64BigInt(), 0x0123_4567_89ab_cdefn);
    assert.equal(r.readU64BigInt(), null);
  });

  test('readInto gives a short count at the end; skip is all-or-nothing', () => {
    const r = new ChainReader([bytes(1, 2), new Uint8Array(0), bytes(3)]);
    assert.equal(r.skip(4), false);
    assert.equal(r.skip(1), true);
    const dest = new Uint8Array(5);
    assert.equal(r.readInto(dest), 2);
    assert.deepEqual([...dest], [2, 3, 0, 0, 0]);
    assert.equal(r.readInto(dest), 0);
  });

  test('writes across buffers; short writes report what fit', () => {
    const a = new Uint8Array(3);
    const b = new Uint8Array(0);
    const c = new Uint8Array(6);
    const w = new ChainWriter([a, b, c]);
    assert.equal(w.writeU16(0xbbaa), true);
    assert.equal(w.writeU32(0x44332211), true);
    assert.deepEqual([...a, ...c], [0xaa, 0xbb, 0x11, 0x22, 0x33, 0x44, 0, 0, 0]);
    assert.equal(w.writeU32(1), false, 'three left: all or nothing');
    assert.equal(w.written, 6);
    assert.equal(w.write(bytes(9, 9, 9, 9, 9)), 3);
    assert.equal(w.remaining, 0);
    assert.equal(w.writeU8(1), false);
    assert.equal(w.write(bytes(1)), 0);
    assert.deepEqual([...c], [0x22, 0x33, 0x44, 9, 9, 9]);
  });

  test('writeU64, writeAll, fill and skip', () => {
    const buf = new Uint8Array(20);
    const w = new ChainWriter([buf.subarray(0, 5), buf.subarray(5)]);
    assert.equal(w.writeU64(2 ** 40 + 5), true);
    assert.equal(w.writeU64(0xfedc_ba98_7654_3210n), true);
    const dv = new DataView(buf.buffer);
    assert.equal(dv.getBigUint64(0, true), 2n ** 40n + 5n);
    assert.equal(dv.getBigUint64(8, true), 0xfedc_ba98_7654_3210n);
    assert.equal(w.writeAll(bytes(1, 2, 3, 4, 5)), false);
    assert.equal(w.skip(1), true);
    assert.equal(w.fill(10, 0xee), 3);
    assert.equal(w.written, 20);
    assert.deepEqual([...buf.subarray(16)], [0, 0xee, 0xee, 0xee]);
  });

  test('from a chain: the reader takes readable buffers, the writer writable ones', () => {
    const { driver, queue } = setup();
    const sub = driver.submit({ readable: [bytes(1, 2), bytes(3)], writable: [1, 2] });
    const chain = popChain(queue);
    const r = new ChainReader(chain);
    const w = new ChainWriter(chain);
    assert.equal(r.length, 3);
    assert.equal(w.length, 3);
    const got = r.read(3)!;
    assert.equal(w.write(got), 3);
    complete(queue, driver, chain.head, w.written);
    assert.deepEqual([...driver.written(sub)], [1, 2, 3]);
  });
});
