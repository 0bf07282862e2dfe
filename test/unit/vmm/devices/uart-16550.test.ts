// The 16550A as Linux's 8250 driver probes and drives it (drivers/tty/serial/8250/8250_port.c).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPioBus, readLe } from '../../../../core/vmm/devices/bus.ts';
import { COM1_BASE, Uart16550 } from '../../../../core/vmm/devices/uart-16550.ts';

const RX = 0;
const IER = 1;
const IIR = 2;
const FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

function com1() {
  const pio = createPioBus();
  const sent: number[] = [];
  const irqs: boolean[] = [];
  const uart = new Uart16550({ transmit: (b) => sent.push(b), irq: (l) => irqs.push(l) });
  pio.register(COM1_BASE, 8, uart, 'com1');
  const outb = (reg: number, v: number) => pio.write(COM1_BASE + reg, Uint8Array.of(v));
  const inb = (reg: number) => readLe(pio.read(COM1_BASE + reg, 1));
  return { uart, sent, irqs, outb, inb };
}

describe('16550A UART', () => {
  test('autoconfig: scratch register, IER test, loopback, FIFO detection as a 16550A', () => {
    const { outb, inb } = com1();
    // The scratch register test (8250 "ST16C450" check).
    outb(SCR, 0xa5);
    assert.equal(inb(SCR), 0xa5);
    outb(SCR, 0x5a);
    assert.equal(inb(SCR), 0x5a);
    // IER: write 0 reads 0, write 0x0f reads 0x0f.
    outb(IER, 0);
    assert.equal(inb(IER) & 0x0f, 0);
    outb(IER, 0x0f);
    assert.equal(inb(IER) & 0x0f, 0x0f);
    outb(IER, 0);
    // Loopback: MCR = LOOP | OUT2 | RTS -> MSR high nibble 0x90 (DCD | CTS).
    outb(MCR, 0x10 | 0x0a);
    assert.equal(inb(MSR) & 0xf0, 0x90);
    outb(MCR, 0);
    // EFR probe with LCR = 0xBF: offset 2 reads IIR, nonzero, so no EFR.
    outb(LCR, 0xbf);
    assert.notEqual(inb(2), 0);
    outb(LCR, 0);
    // FIFO detection: IIR bits 7:6 = 3 after enabling the FIFO.
    outb(FCR, 0x01);
    assert.equal(inb(IIR) >> 6, 3);
    // No 64-byte FIFO (16750 check: IIR bit 5 stays clear).
    outb(FCR, 0x01 | 0x20);
    assert.equal(inb(IIR) & 0x20, 0);
    // No XScale UUE bit in IER.
    outb(IER, 0x40);
    assert.equal(inb(IER) & 0x40, 0);
    outb(FCR, 0);
    assert.equal(inb(IIR) >> 6, 0, 'FIFO off');
  });

  test('LCR DLAB selects the divisor latch', () => {
    const { uart, outb, inb } = com1();
    outb(LCR, 0x80);
    outb(0, 0x01);
    outb(1, 0x00);
    assert.equal(inb(0), 0x01);
    assert.equal(inb(1), 0x00);
    assert.notEqual(inb(IIR) & 1, 0, 'IIR readable with DLAB set');
    outb(LCR, 0x03); // 8N1
    assert.equal(uart.divisor, 1);
    assert.equal(inb(LCR), 0x03);
    outb(IER, 0x05);
    assert.equal(inb(IER), 0x05, 'IER back behind DLAB=0');
  });

  test('enabling ETBEI raises THRE at once; reading IIR or writing THR acknowledges it', () => {
    const { outb, inb, irqs, sent } = com1();
    outb(FCR, 0x07);
    assert.equal(inb(LSR) & 0x60, 0x60, 'THRE and TEMT');
    // The start-up test: IER = THRI, then IIR must report THRE (not NO_INT).
    outb(IER, 0x02);
    assert.deepEqual(irqs, [true]);
    assert.equal(inb(IIR), 0xc2);
    assert.deepEqual(irqs, [true, false], 'acknowledged by the IIR read');
    assert.equal(inb(IIR), 0xc1);
    outb(RX, 0x41);
    assert.deepEqual(sent, [0x41]);
    assert.equal(inb(IIR), 0xc2, 'THR empty again after the byte left');
    outb(IER, 0);
    assert.equal(inb(IIR), 0xc1);
  });

  test('host input enters the RX FIFO, raises RDA, and none is lost past 16 bytes', () => {
    const { uart, outb, inb, irqs } = com1();
    outb(FCR, 0xc1); // FIFO on, trigger 14
    outb(IER, 0x01);
    const text = new TextEncoder().encode('hello, this is more than sixteen bytes');
    assert.equal(uart.receive(text), text.length);
    assert.equal(irqs.at(-1), true);
    assert.equal(inb(IIR), 0xc4, 'data at the trigger level');
    const got: number[] = [];
    while (inb(LSR) & 1) got.push(inb(RX));
    assert.equal(new TextDecoder().decode(Uint8Array.from(got)), new TextDecoder().decode(text));
    assert.equal(inb(IIR), 0xc1);
    assert.equal(irqs.at(-1), false);
    uart.receive(Uint8Array.of(0x61));
    assert.equal(inb(IIR), 0xcc, 'below the trigger level: character timeout');
  });

  test('loopback echoes THR into RBR instead of the sink', () => {
    const { outb, inb, sent } = com1();
    outb(MCR, 0x10);
    outb(RX, 0x55);
    assert.deepEqual(sent, []);
    assert.equal(inb(LSR) & 1, 1);
    assert.equal(inb(RX), 0x55);
  });

  test('line status interrupt on overrun; modem status deltas', () => {
    const { outb, inb } = com1();
    outb(MCR, 0x10); // loopback, FIFO off: one byte holds
    outb(IER, 0x04);
    outb(RX, 1);
    outb(RX, 2);
    assert.equal(inb(IIR) & 0x0f, 0x06, 'RLS');
    assert.equal(inb(LSR) & 0x02, 0x02);
    assert.equal(inb(LSR) & 0x02, 0, 'cleared by reading LSR');
    outb(IER, 0x08);
    inb(MSR);
    outb(MCR, 0x10 | 0x01); // DTR -> DSR
    assert.equal(inb(IIR) & 0x0f, 0x00, 'modem status');
    assert.equal(inb(MSR) & 0x22, 0x22, 'DSR and its delta');
    assert.equal(inb(IIR) & 0x01, 1);
  });

  test('wide and out-of-range accesses do not throw', () => {
    const { uart } = com1();
    const data = new Uint8Array(4);
    uart.read(6, data);
    uart.write(5, Uint8Array.of(1, 2, 3, 4));
    uart.read(100, new Uint8Array(1));
  });
});

describe('16550A fast path (what the vCPU threads may finish without the model)', () => {
  function withFastPath() {
    const calls: string[] = [];
    const pio = createPioBus();
    const uart = new Uart16550({
      transmit: () => {},
      fastPath: {
        lsr: (value) => calls.push(`lsr ${value === null ? 'model' : value.toString(16)}`),
        thr: (posted) => calls.push(`thr ${posted ? 'posted' : 'model'}`),
        ier: (value) => calls.push(`ier ${value === null ? 'model' : `latch ${value}`}`),
      },
    });
    pio.register(COM1_BASE, 8, uart, 'com1');
    const outb = (reg: number, v: number) => pio.write(COM1_BASE + reg, Uint8Array.of(v));
    const inb = (reg: number) => readLe(pio.read(COM1_BASE + reg, 1));
    return { uart, calls, outb, inb };
  }

  test('starts with LSR answered, THR posted and IER latched; says only what changes', () => {
    const { calls, outb } = withFastPath();
    assert.deepEqual(calls, ['lsr 60', 'thr posted', 'ier latch 0']);
    calls.length = 0;
    outb(RX, 0x41);
    outb(IER, 0x05); // through the latch (the model follows): nothing to republish
    assert.deepEqual(calls, []);
  });

  test('input waiting sets DR in the answered LSR; reading it clears it again', () => {
    const { uart, calls, inb } = withFastPath();
    calls.length = 0;
    uart.receive(Uint8Array.of(0x61));
    assert.deepEqual(calls, ['lsr 61']);
    assert.equal(inb(RX), 0x61);
    assert.deepEqual(calls, ['lsr 61', 'lsr 60']);
  });

  test('the divisor latch and loopback send THR, IER and LSR back to the model', () => {
    const { calls, outb } = withFastPath();
    calls.length = 0;
    outb(LCR, 0x80); // DLAB: 0x3f8/0x3f9 are the divisor
    assert.deepEqual(calls, ['thr model', 'ier model']);
    outb(LCR, 0x03);
    assert.deepEqual(calls.slice(2), ['thr posted', 'ier latch 0']);
    calls.length = 0;
    outb(MCR, 0x10); // loopback: THR feeds the receiver, LSR follows it
    assert.deepEqual(calls, ['lsr model', 'thr model']);
  });
});
