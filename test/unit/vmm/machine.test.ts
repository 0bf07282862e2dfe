// The machine on the host's /dev/kvm with tiny guest programs (gcc-built, 64-bit, a few thousand
// instructions: /dev/kvm here may be PVM, an emulator at ~375 ns per instruction): serial output
// through the 16550, ACPI poweroff, PCI enumeration through 0xcf8/0xcfc with a sized and mapped
// BAR, and a destroy() that leaves no fd, thread or mapping.
import assert from 'node:assert/strict';

import { test } from 'node:test';
import { VirtioRngDevice } from '../../../core/devices/rng/index.ts';
import { runProgram, type Machine } from '../../../core/vmm/machine.ts';
import { GUEST_C_PRELUDE } from '../../support/guest-c.ts';
import { buildGuestProgram, guestToolchainMissing } from '../../support/guest-program.ts';
import {
  guestRamMapped,
  kvmUnavailable,
  processResources,
  withDeadline,
} from '../../support/kvm-machine.ts';

const skip = kvmUnavailable() ?? guestToolchainMissing() ?? false;
const DEADLINE = 20_000;
const options = { skip, timeout: DEADLINE + 10_000 };

async function finish(machine: Machine) {
  return withDeadline(machine.stopped, DEADLINE, () => `serial so far:\n${machine.serialText()}`);
}

const SERIAL_GUEST = `${GUEST_C_PRELUDE}
void main(void) { puts("hello from the guest\\n"); }
`;

test('serial output arrives and ACPI poweroff stops the machine cleanly', options, async () => {
  const chunks: Uint8Array[] = [];
  const machine = runProgram({
    code: buildGuestProgram(SERIAL_GUEST),
    mode: 'long',
    serial: (bytes) => chunks.push(bytes),
  });
  try {
    const stop = await finish(machine);
    assert.equal(stop.reason, 'poweroff', stop.message);
    assert.equal(Buffer.concat(chunks).toString('latin1'), 'hello from the guest\n');
    assert.equal(stop.serialTail, 'hello from the guest\n');
  } finally {
    machine.destroy();
  }
});

const PCI_GUEST = `${GUEST_C_PRELUDE}
void main(void) {
  for (u32 dev = 0; dev < 32; dev++) {
    u32 id = pci_read32(dev, 0);
    if ((id & 0xffff) == 0xffff) continue;
    puts("pci "); puthex(dev, 2); puts(" "); puthex(id & 0xffff, 4); puts(":"); puthex(id >> 16, 4);
    puts(" class "); puthex(pci_read32(dev, 8) >> 8, 6); puts("\\n");
  }
  /* BAR0 of device 1: size it, place it at 0xc0000000, enable memory decoding. */
  u32 bar0 = pci_read32(1, 0x10);
  pci_write32(1, 0x10, 0xffffffff);
  pci_write32(1, 0x14, 0xffffffff);
  u64 mask = ((u64)pci_read32(1, 0x14) << 32) | (pci_read32(1, 0x10) & ~0xfu);
  puts("bar0 flags "); puthex(bar0 & 0xf, 1); puts(" size "); puthex(~mask + 1, 8); puts("\\n");
  pci_write32(1, 0x10, 0xc0000000);
  pci_write32(1, 0x14, 0);
  pci_write32(1, 0x04, pci_read32(1, 0x04) | 0x6);
  puts("num_queues "); puthex(mmio_read16(0xc0000012), 4); puts("\\n");
}
`;

test('PCI enumeration reads the virtio IDs and a sized, mapped BAR', options, async () => {
  const machine = runProgram({
    code: buildGuestProgram(PCI_GUEST),
    mode: 'long',
    devices: [new VirtioRngDevice()],
  });
  try {
    const stop = await finish(machine);
    assert.equal(stop.reason, 'poweroff', stop.message);
    assert.equal(
      stop.serialTail,
      [
        'pci 00 8086:0d57 class 060000', // the host bridge
        'pci 01 1af4:1044 class ff0000', // virtio-rng, modern (0x1040 + 4)
        'bar0 flags 4 size 00008000', // 64-bit memory BAR of 32 KiB
        'num_queues 0001', // read through the BAR on the MMIO bus
        '',
      ].join('\n'),
    );
  } finally {
    machine.destroy();
  }
});

test(
  'the vCPU threads finish the UART transmit path and PCI config reads: same output, far fewer exits',
  options,
  async () => {
    const run = async (fastIo: boolean) => {
      const machine = runProgram({
        code: buildGuestProgram(PCI_GUEST),
        mode: 'long',
        devices: [new VirtioRngDevice()],
        fastIo,
      });
      try {
        const stop = await finish(machine);
        assert.equal(stop.reason, 'poweroff', stop.message);
        return {
          serial: stop.serialTail,
          exits: machine.exitCount,
          fast: machine.vm.fastIoCounts(),
        };
      } finally {
        machine.destroy();
      }
    };
    const slow = await run(false);
    const fast = await run(true);
    assert.equal(fast.serial, slow.serial);
    assert.deepEqual(slow.fast, { answeredReads: 0, postedWrites: 0 });
    // Each byte of output is an LSR read and a THR write; each device probed, a 0xCF8 write and
    // a 0xCFC read. Left in JavaScript: the BAR and command writes, the MMIO read, the poweroff.
    const bytes = slow.serial.length;
    assert.ok(slow.exits >= 2 * bytes + 32, `without: ${slow.exits} exits for ${bytes} bytes`);
    assert.ok(fast.exits <= 12, `with: ${fast.exits} exits`);
    assert.ok(fast.fast.postedWrites >= bytes + 32, JSON.stringify(fast.fast));
    assert.ok(fast.fast.answeredReads >= bytes + 32, JSON.stringify(fast.fast));
  },
);

const counts = () => processResources('berth-guest-ram');

test('destroy() leaves no fd, thread or mapping behind', options, async () => {
  const code = buildGuestProgram(PCI_GUEST);
  // Warm up once, so lazily created resources of Node itself are not counted as ours.
  const warm = runProgram({ code, mode: 'long', devices: [new VirtioRngDevice()] });
  await finish(warm);
  warm.destroy();
  const before = counts();
  const machine = runProgram({ code, mode: 'long', vcpus: 2, devices: [new VirtioRngDevice()] });
  const stop = await finish(machine);
  assert.equal(stop.reason, 'poweroff', stop.message);
  assert.ok(guestRamMapped(machine.ram) >= 1, 'guest RAM is mapped while the machine exists');
  machine.destroy();
  machine.destroy();
  assert.deepEqual(counts(), before);
  assert.equal(guestRamMapped(machine.ram), 0, 'guest RAM is unmapped');
});

const PLATFORM_GUEST = `${GUEST_C_PRELUDE}
static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
void main(void) {
  u32 a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  puts("hypervisor "); puthex((c >> 31) & 1, 1); puts(" tsc-deadline "); puthex((c >> 24) & 1, 1);
  cpuid(0x40000000, &a, &b, &c, &d);
  puts(" signature "); puthex(b, 8); puthex(c, 8); puthex(d, 8); puts("\\n");
  outb(0x61, 1); /* PIT channel 2 gate on */
  puts("port61 "); puthex(inb(0x61) & 1, 1); puts("\\n");
}
`;

test(
  'the guest sees a hypervisor (KVM leaves, TSC deadline) and KVM keeps port 0x61',
  options,
  async () => {
    const logs: string[] = [];
    const machine = runProgram({
      code: buildGuestProgram(PLATFORM_GUEST),
      mode: 'long',
      log: (line) => logs.push(line),
    });
    try {
      const stop = await finish(machine);
      assert.equal(stop.reason, 'poweroff', stop.message);
      const kvm = Buffer.from('KVMKVMKVM\0\0\0').reduce(
        (hex, _, i, all) => (i % 4 ? hex : hex + all.readUInt32LE(i).toString(16).padStart(8, '0')),
        '',
      );
      assert.equal(stop.serialTail, `hypervisor 1 tsc-deadline 1 signature ${kvm}\nport61 1\n`);
      assert.deepEqual(
        logs.filter((line) => /unclaimed/.test(line)),
        [],
      );
    } finally {
      machine.destroy();
    }
  },
);
