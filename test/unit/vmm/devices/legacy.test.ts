// The bus, the i8042 reset path and the CMOS RTC.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMmioBus, createPioBus, readLe } from '../../../../core/vmm/devices/bus.ts';
import { CmosRtc } from '../../../../core/vmm/devices/cmos-rtc.ts';
import { I8042 } from '../../../../core/vmm/devices/i8042.ts';

const nothing = { read: (_o: number, d: Uint8Array) => d.fill(0x11), write: () => {} };

describe('bus', () => {
  test('dispatches by range with the offset; refuses overlaps', () => {
    const seen: [string, number, number][] = [];
    const bus = createPioBus();
    bus.register(
      0x100,
      8,
      {
        read: (o, d) => {
          seen.push(['r', o, d.length]);
          d.fill(0x22);
        },
        write: (o, d) => seen.push(['w', o, d[0]!]),
      },
      'dev',
    );
    assert.deepEqual([...bus.read(0x104, 2)], [0x22, 0x22]);
    bus.write(0x107, Uint8Array.of(9));
    assert.deepEqual(seen, [
      ['r', 4, 2],
      ['w', 7, 9],
    ]);
    assert.throws(
      () => bus.register(0x107, 2, nothing, 'other'),
      /other at 0x107-0x108 overlaps dev at 0x100-0x107/,
    );
    assert.throws(() => bus.register(0xfff0, 0x20, nothing, 'far'), /past the bus's end/);
    bus.register(0x108, 1, nothing, 'adjacent');
    assert.equal(typeof bus.tryRegister(0x0ff, 2, nothing, 'x'), 'string');
  });

  test('unclaimed reads are all-ones, writes are dropped; counted and logged once', () => {
    const log: string[] = [];
    const bus = createMmioBus({ log: (line) => log.push(line) });
    bus.register(0x1000, 4, nothing, 'dev');
    assert.deepEqual([...bus.read(0x2000, 4)], [0xff, 0xff, 0xff, 0xff]);
    bus.read(0x2000, 4);
    bus.write(0x2000, Uint8Array.of(1));
    bus.write(0x3000, Uint8Array.of(1));
    assert.equal(bus.unclaimedReads, 2);
    assert.equal(bus.unclaimedWrites, 2);
    assert.equal(log.length, 2, 'once per address');
    // Straddling the end of a range, or an impossible size: unclaimed too.
    assert.deepEqual([...bus.read(0x1002, 4)], [0xff, 0xff, 0xff, 0xff]);
    assert.equal(bus.read(0x1000, 0).length, 0);
    bus.write(Number.NaN, Uint8Array.of(1));
  });
});

describe('i8042', () => {
  test('command 0xFE on port 0x64 requests a reset', () => {
    let resets = 0;
    const pio = createPioBus();
    new I8042({ reset: () => resets++ }).attach(pio);
    pio.write(0x64, Uint8Array.of(0xfe));
    assert.equal(resets, 1);
  });

  test('answers the probe: self-test, CTR read and write', () => {
    const pio = createPioBus();
    const irqs: boolean[] = [];
    new I8042({ reset: () => assert.fail('no reset'), irq: (l) => irqs.push(l) }).attach(pio);
    const status = () => readLe(pio.read(0x64, 1));
    const data = () => readLe(pio.read(0x60, 1));
    assert.equal(status() & 1, 0, 'output buffer empty');
    pio.write(0x64, Uint8Array.of(0xaa));
    assert.equal(status() & 1, 1);
    assert.equal(data(), 0x55);
    pio.write(0x64, Uint8Array.of(0x20));
    const ctr = data();
    pio.write(0x64, Uint8Array.of(0x60));
    pio.write(0x60, Uint8Array.of(ctr & ~1));
    pio.write(0x64, Uint8Array.of(0x20));
    assert.equal(data(), ctr & ~1);
    // A keyboard command is acknowledged; with the interrupt enabled it raises IRQ 1.
    pio.write(0x64, Uint8Array.of(0x60));
    pio.write(0x60, Uint8Array.of(ctr | 1));
    pio.write(0x60, Uint8Array.of(0xff));
    assert.equal(irqs.at(-1), true);
    assert.equal(data(), 0xfa);
    assert.equal(data(), 0xaa);
    assert.equal(irqs.at(-1), false);
  });
});

describe('CMOS RTC', () => {
  const at = Date.UTC(2026, 10, 23, 13, 45, 30, 500); // Monday
  function rtc(now: () => number) {
    const pio = createPioBus();
    const device = new CmosRtc({ now });
    device.attach(pio);
    const read = (reg: number) => {
      pio.write(0x70, Uint8Array.of(0x80 | reg)); // NMI masked, as Linux does
      return readLe(pio.read(0x71, 1));
    };
    const write = (reg: number, value: number) => {
      pio.write(0x70, Uint8Array.of(reg));
      pio.write(0x71, Uint8Array.of(value));
    };
    return { device, read, write };
  }

  test('time of day in BCD, binary and 12-hour mode', () => {
    const { read, write } = rtc(() => at);
    assert.equal(read(0x0b) & 0x06, 0x02, 'BCD, 24-hour');
    assert.deepEqual(
      [read(0), read(2), read(4), read(6), read(7), read(8), read(9), read(0x32)],
      [0x30, 0x45, 0x13, 0x02, 0x23, 0x11, 0x26, 0x20],
    );
    write(0x0b, 0x06);
    assert.deepEqual([read(0), read(2), read(4), read(9)], [30, 45, 13, 26]);
    write(0x0b, 0x04); // binary, 12-hour
    assert.equal(read(4), 0x80 | 1, '1 PM');
    assert.equal(read(0x0d), 0x80, 'valid RAM and time');
    assert.equal(read(0x0c), 0);
  });

  test('UIP is set only just before the second ticks, so waiting loops end', () => {
    let now = at;
    const { read } = rtc(() => now);
    assert.equal(read(0x0a) & 0x80, 0);
    now = at + 499.9; // 0.9999 s into the second
    assert.equal(read(0x0a) & 0x80, 0x80);
    now = at + 500.1;
    assert.equal(read(0x0a) & 0x80, 0);
    // With the real clock, a loop waiting for UIP to clear never waits long.
    const live = rtc(() => performance.timeOrigin + performance.now());
    let spins = 0;
    while (live.read(0x0a) & 0x80) spins++;
    assert.ok(spins < 1e6);
  });

  test('setting the clock with SET moves the guest time', () => {
    const { device, read, write } = rtc(() => at);
    write(0x0b, 0x82); // SET, BCD, 24h
    write(9, 0x30); // year 2030
    write(4, 0x08);
    write(0x0b, 0x02);
    assert.equal(read(9), 0x30);
    assert.equal(read(4), 0x08);
    assert.equal(new Date(device.guestTime()).getUTCFullYear(), 2030);
    assert.equal(read(2), 0x45, 'minutes kept');
  });
});
