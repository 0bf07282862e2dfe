// bootLinux() end to end on the host's /dev/kvm, with a stand-in for Linux (no stock kernel runs
// on this PVM): a bzImage with a valid boot header whose 64-bit entry (load address + 0x200) is
// a tiny gcc-built program. It checks what the boot protocol promises at that entry: long mode,
// RSI pointing at the zero page with the command line pointer set, and our devices reachable.
// And the exit handler itself: a device that throws ends the run as an error, never a throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMmioBus, createPioBus } from '../../../core/vmm/devices/bus.ts';
import { handleExit } from '../../../core/vmm/exits.ts';
import { bootLinux, MachineError } from '../../../core/vmm/machine.ts';
import { GUEST_C_PRELUDE } from '../../support/guest-c.ts';
import { buildGuestProgram, guestToolchainMissing } from '../../support/guest-program.ts';
import { kvmUnavailable, withDeadline } from '../../support/kvm-machine.ts';
import { syntheticBzImage } from './fixtures.ts';

const skip = kvmUnavailable() ?? guestToolchainMissing() ?? false;
const DEADLINE = 20_000;
const KERNEL_LOAD = 0x1000000;

const FAKE_KERNEL = `${GUEST_C_PRELUDE}
void main(void) {
  u64 zero_page;
  __asm__ volatile("mov %%rsi, %0" : "=r"(zero_page));
  const char *cmdline = (const char *)(u64)*(volatile u32 *)(zero_page + 0x228);
  puts("entry64 zero page "); puthex(zero_page, 4); puts(" cmdline: "); puts(cmdline); puts("\\n");
}
`;

function fakeBzImage(): Uint8Array {
  const code = buildGuestProgram(FAKE_KERNEL, KERNEL_LOAD + 0x200);
  const setupSects = 4;
  const image = syntheticBzImage({
    setupSects,
    kernelBytes: Math.ceil((0x200 + code.length) / 16) * 16,
  });
  image.set(code, (setupSects + 1) * 512 + 0x200);
  return image;
}

test(
  'bootLinux enters a bzImage at its 64-bit entry with the zero page',
  { skip, timeout: DEADLINE + 10_000 },
  async () => {
    const { machine, boot } = bootLinux({
      kernel: fakeBzImage(),
      cmdline: 'console=ttyS0 berth.test=1',
      memoryMiB: 64,
      vcpus: 2,
    });
    try {
      const stop = await withDeadline(machine.stopped, DEADLINE, () => machine.serialText());
      assert.equal(stop.reason, 'poweroff', stop.message);
      assert.equal(boot.kernel.entry64, KERNEL_LOAD + 0x200);
      assert.equal(
        stop.serialTail,
        `entry64 zero page ${boot.zeroPage.toString(16).padStart(4, '0')} cmdline: console=ttyS0 berth.test=1\n`,
      );
    } finally {
      machine.destroy();
    }
  },
);

test('a device that throws ends the run with an error instead of throwing', () => {
  const pio = createPioBus();
  pio.register(
    0x80,
    1,
    {
      read: () => {
        throw new Error('boom');
      },
      write: () => {},
    },
    'bad',
  );
  const outcome = handleExit(
    { reason: 'io', exitReason: 2, direction: 'in', port: 0x80, size: 1, count: 1 },
    { pio, mmio: createMmioBus() },
    0,
  );
  assert.equal(outcome.kind, 'stop');
  assert.ok(outcome.kind === 'stop' && outcome.reason === 'error' && /boom/.test(outcome.message));
  const error = new MachineError({ reason: 'error', message: 'vCPU 0: x', serialTail: 'a\nb\n' });
  assert.match(error.message, /vCPU 0: x\n--- serial log \(last lines\) ---\na\nb\n/);
  const internal = handleExit(
    { reason: 'internal-error', exitReason: 17, suberror: 1, data: [0x10n] },
    { pio, mmio: createMmioBus() },
    1,
  );
  assert.deepEqual(internal, {
    kind: 'stop',
    reason: 'error',
    message: 'vCPU 1: KVM internal error, suberror 1 (instruction emulation failed) [0x10]',
  });
});
