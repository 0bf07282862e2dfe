// A virtio-rng request through the real virtio-pci transport on the host's /dev/kvm, with its
// completion signalled by MSI-X: the guest (gcc-built, 64-bit) programs BAR0, the MSI-X table and
// capability, negotiates VERSION_1, sets up queue 0 (8 entries) with vector 0, kicks it (an
// ioeventfd where the kernel takes it), and waits in HLT for vector 0x40 from the LAPIC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtioRngDevice } from '../../../core/devices/rng/index.ts';
import { runProgram } from '../../../core/vmm/machine.ts';
import { GUEST_C_PRELUDE } from '../../support/guest-c.ts';
import { buildGuestProgram, guestToolchainMissing } from '../../support/guest-program.ts';
import { kvmUnavailable, withDeadline } from '../../support/kvm-machine.ts';

const skip = kvmUnavailable() ?? guestToolchainMissing() ?? false;
const DEADLINE = 20_000;

const RNG_GUEST = `${GUEST_C_PRELUDE}
#define BAR 0xc0000000ul
#define COMMON BAR
#define NOTIFY (BAR + 0x3000)
#define MSIX_TABLE (BAR + 0x4000)
#define LAPIC 0xfee00000ul

struct idt_entry { u16 off0, sel; u8 ist, type; u16 off1; u32 off2, zero; } __attribute__((packed));
static struct idt_entry idt[256] __attribute__((aligned(16)));
struct desc { u64 addr; u32 len; u16 flags, next; };
static struct desc descs[8] __attribute__((aligned(4096)));
static volatile u16 avail[2 + 8 + 1] __attribute__((aligned(4096)));
static volatile u32 used[1 + 2 * 8 + 1] __attribute__((aligned(4096)));
static volatile u8 buffer[16];
static volatile u32 interrupts;

struct interrupt_frame;
__attribute__((interrupt)) static void on_msi(struct interrupt_frame *frame) {
  (void)frame;
  interrupts++;
  mmio_write32(LAPIC + 0xb0, 0); /* EOI */
}

void main(void) {
  u16 cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  u64 handler = (u64)on_msi;
  idt[0x40] = (struct idt_entry){(u16)handler, cs, 0, 0x8e, (u16)(handler >> 16), (u32)(handler >> 32), 0};
  struct { u16 limit; u64 base; } __attribute__((packed)) idtr = {sizeof(idt) - 1, (u64)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr));
  mmio_write32(LAPIC + 0xf0, 0x1ff); /* software-enable the LAPIC */

  pci_write32(1, 0x10, (u32)BAR);
  pci_write32(1, 0x14, 0);
  pci_write32(1, 0x04, pci_read32(1, 0x04) | 0x6);

  /* MSI-X: vector 0 -> LAPIC 0, vector 0x40, unmasked; then enable in the capability. */
  mmio_write32(MSIX_TABLE + 0, 0xfee00000);
  mmio_write32(MSIX_TABLE + 4, 0);
  mmio_write32(MSIX_TABLE + 8, 0x40);
  mmio_write32(MSIX_TABLE + 12, 0);
  for (u32 cap = pci_read32(1, 0x34) & 0xff; cap; cap = (pci_read32(1, cap) >> 8) & 0xff) {
    u32 head = pci_read32(1, cap);
    if ((head & 0xff) == 0x11) pci_write32(1, cap, head | 0x80000000u);
  }

  mmio_write8(COMMON + 0x14, 0);
  mmio_write8(COMMON + 0x14, 1 | 2);
  mmio_write32(COMMON + 0x08, 1);
  mmio_write32(COMMON + 0x0c, 1); /* VERSION_1 */
  mmio_write32(COMMON + 0x08, 0);
  mmio_write32(COMMON + 0x0c, 0);
  mmio_write8(COMMON + 0x14, 1 | 2 | 8);
  if (!(mmio_read8(COMMON + 0x14) & 8)) { puts("FEATURES_OK refused\\n"); return; }
  mmio_write16(COMMON + 0x16, 0);
  mmio_write16(COMMON + 0x18, 8);
  mmio_write16(COMMON + 0x1a, 0);
  mmio_write32(COMMON + 0x20, (u32)(u64)descs);
  mmio_write32(COMMON + 0x24, 0);
  mmio_write32(COMMON + 0x28, (u32)(u64)avail);
  mmio_write32(COMMON + 0x2c, 0);
  mmio_write32(COMMON + 0x30, (u32)(u64)used);
  mmio_write32(COMMON + 0x34, 0);
  mmio_write16(COMMON + 0x1c, 1);
  mmio_write8(COMMON + 0x14, 1 | 2 | 8 | 4);

  descs[0] = (struct desc){(u64)buffer, sizeof(buffer), 2 /* WRITE */, 0};
  avail[2] = 0;
  __asm__ volatile("" ::: "memory");
  avail[1] = 1;
  __asm__ volatile("mfence" ::: "memory");
  mmio_write16(NOTIFY + 0 * 4, 0);

  for (int i = 0; i < 100 && !interrupts; i++) __asm__ volatile("sti; hlt; cli");
  u32 nonzero = 0;
  for (u32 i = 0; i < sizeof(buffer); i++) nonzero |= buffer[i];
  puts("interrupts "); puthex(interrupts, 2);
  puts(" used idx "); puthex(used[0] >> 16, 4);
  puts(" id "); puthex(used[1], 2);
  puts(" len "); puthex(used[2], 2);
  puts(nonzero ? " random\\n" : " zeros\\n");
}
`;

test(
  'a virtio-rng request goes through virtio-pci and MSI-X interrupts the guest',
  { skip, timeout: DEADLINE + 10_000 },
  async () => {
    const log: string[] = [];
    const rng = new VirtioRngDevice({ fill: (b) => b.fill(0xa5) });
    const machine = runProgram({
      code: buildGuestProgram(RNG_GUEST),
      mode: 'long',
      devices: [rng],
      log: (line) => log.push(line),
    });
    try {
      const stop = await withDeadline(
        machine.stopped,
        DEADLINE,
        () => `serial so far:\n${machine.serialText()}\nlog:\n${log.join('\n')}`,
      );
      assert.equal(stop.reason, 'poweroff', `${stop.message}\n${log.join('\n')}`);
      assert.equal(
        stop.serialTail,
        'interrupts 01 used idx 0001 id 00 len 10 random\n',
        log.join('\n'),
      );
      assert.equal(machine.virtio[0]!.msix.delivered, 1);
      assert.equal(machine.interrupts.msiDelivered, 1);
      // The kick reached the device through the ioeventfd, not an MMIO exit fallback.
      assert.ok(!log.some((line) => line.includes('no ioeventfd')), log.join('\n'));
    } finally {
      machine.destroy();
    }
  },
);
