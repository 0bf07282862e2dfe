// Guests that fault, on the host's /dev/kvm: each prints a line on serial, then triple-faults or
// makes KVM give up (an internal error). The run must stop with reason 'error', a message that
// names the cause, and the serial tail holding the line; finished() rejects with a MachineError
// carrying both; destroy() frees everything; the process lives on and runs the next machine.
//
// Measured on this machine's PVM (an instruction emulator): every guest fault below stops the
// run ~0.03 s after start. Not used here, and why:
// - a real-mode triple fault: PVM ignores the IDT limit in real mode (an `lidt` of limit 0, then
//   `int3` or `ud2`, vectors through the IVT at 0 into zeroed RAM, which slides back into the
//   program), so the program loops until something fails to emulate ~20 s later. Setting CR0.PE
//   first gives a real triple fault at once (below).
// - `int3` or `icebp` in long mode: PVM fails to emulate them (an internal error), where hardware
//   KVM delivers the exception; a guest-specific quirk, not a case.
// - an exit the VMM does not handle: none is reachable from a guest without a capability we never
//   enable (KVM_EXIT_HYPERCALL needs KVM_CAP_EXIT_HYPERCALL, KVM_EXIT_DEBUG KVM_SET_GUEST_DEBUG,
//   KVM_EXIT_X86_RDMSR/WRMSR KVM_CAP_X86_USER_SPACE_MSR, ...). On PVM `vmcall`/`vmmcall` never
//   return to user space at all (the vCPU spins on the instruction inside KVM_RUN). So that case
//   hands a synthetic exit to a running machine's exit handler.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, test, type TestContext } from 'node:test';
import type { KvmExit, KvmVcpu } from '../../../core/native.ts';
import { handleExit } from '../../../core/vmm/exits.ts';
import { createMmioBus, createPioBus } from '../../../core/vmm/devices/bus.ts';
import { MachineError, runProgram, type Machine } from '../../../core/vmm/machine.ts';
import { GUEST_C_PRELUDE } from '../../support/guest-c.ts';
import { buildGuestProgram, guestToolchainMissing } from '../../support/guest-program.ts';
import {
  guestRamMapped,
  kvmUnavailable,
  processResources,
  withDeadline,
} from '../../support/kvm-machine.ts';

const skip = kvmUnavailable() ?? guestToolchainMissing() ?? false;
/** Each fault stops the run in ~0.03 s here; the rest is slack for a loaded 2-core machine. */
const DEADLINE = 10_000;
const options = { skip, timeout: DEADLINE * 2 + 10_000 };
/** An instruction-emulating /dev/kvm (PVM), which cannot run VEX-encoded instructions. */
const onPvm = existsSync('/sys/module/kvm_pvm');

const HELLO_GUEST = `${GUEST_C_PRELUDE}
void main(void) { puts("hello again\\n"); }
`;

const longGuest = (line: string, fault: string) => `${GUEST_C_PRELUDE}
__attribute__((unused, aligned(16))) static const u64 zero_idt[2] = {0, 0};
void main(void) {
  puts("${line}\\n");
  ${fault}
  puts("the guest went on after the fault\\n");
}
`;

/** Real-mode code at 0x1000 (CS = 0): `line` to COM1, then `fault`. */
function realModeGuest(line: string, fault: readonly number[]): Uint8Array {
  const code = [0xba, 0xf8, 0x03]; // mov dx, 0x3f8
  for (const char of `${line}\n`) code.push(0xb0, char.charCodeAt(0), 0xee); // mov al, c; out dx, al
  return new Uint8Array([...code, ...fault]);
}
/** Six zero bytes in real mode's RAM (the program at 0x1000 is far shorter): an empty IDT. */
const ZERO_DESCRIPTOR = 0x1800;

const counts = () => processResources('berth-guest-ram');

async function finish(machine: Machine) {
  return withDeadline(machine.stopped, DEADLINE, () => `serial so far:\n${machine.serialText()}`);
}

/** A machine runs and powers off: what follows a fault still works. */
async function assertNextMachineRuns() {
  const machine = runProgram({ code: buildGuestProgram(HELLO_GUEST), mode: 'long' });
  try {
    const stop = await finish(machine);
    assert.equal(stop.reason, 'poweroff', stop.message);
    assert.equal(stop.serialTail, 'hello again\n');
  } finally {
    machine.destroy();
  }
}

interface FaultCase {
  code: Uint8Array;
  mode: 'long' | 'real';
  /** What the guest prints before it faults. */
  line: string;
  /** What the stop message must say. */
  message: RegExp;
  /** Called once the machine runs (the synthetic exit's way in). */
  started?: (machine: Machine) => Promise<void>;
}

async function assertFaultStops(t: TestContext, fault: FaultCase) {
  const before = counts();
  const started = performance.now();
  const machine = runProgram({ code: fault.code, mode: fault.mode });
  try {
    await fault.started?.(machine);
    const stop = await finish(machine);
    t.diagnostic(`stopped after ${(performance.now() - started).toFixed(0)} ms: ${stop.message}`);
    assert.equal(stop.reason, 'error', stop.message);
    assert.match(stop.message, fault.message);
    assert.match(stop.serialTail, new RegExp(`${fault.line}\n`));
    assert.doesNotMatch(stop.serialTail, /went on after the fault/);
    await assert.rejects(machine.finished(), (error) => {
      assert.ok(error instanceof MachineError);
      assert.equal(error.stop, stop);
      assert.ok(error.message.startsWith(`${stop.message}\n--- serial log (last lines) ---\n`));
      assert.ok(error.message.includes(`${fault.line}\n`), error.message);
      return true;
    });
  } finally {
    machine.destroy();
  }
  machine.destroy();
  assert.ok(machine.vcpus.every((vcpu) => vcpu.state === 'destroyed'));
  assert.equal((await machine.stopped).reason, 'error', 'destroy() keeps the first stop');
  assert.deepEqual(counts(), before, 'destroy() leaves no fd, thread or mapping');
  assert.equal(guestRamMapped(machine.ram), 0, 'guest RAM is unmapped');
  await assertNextMachineRuns();
}

before(async () => {
  if (skip) return;
  // Warm up once, so lazily created resources of Node itself are not counted as ours.
  await assertNextMachineRuns();
});

test('a long-mode triple fault (an empty IDT, then ud2) stops the run', options, async (t) => {
  await assertFaultStops(t, {
    code: buildGuestProgram(
      longGuest('about to triple fault', `__asm__ volatile("lidt %0; ud2" : : "m"(zero_idt));`),
    ),
    mode: 'long',
    line: 'about to triple fault',
    message: /^vCPU 0: triple fault \(KVM_EXIT_SHUTDOWN\)/,
  });
});

test('a triple fault through page tables that map nothing stops the run', options, async (t) => {
  await assertFaultStops(t, {
    // 0x200000 is zeroed RAM: the next fetch page-faults, and so does delivering #PF and #DF.
    code: buildGuestProgram(
      longGuest(
        'about to drop the page tables',
        `__asm__ volatile("mov %0, %%cr3; nop" : : "r"(0x200000UL));`,
      ),
    ),
    mode: 'long',
    line: 'about to drop the page tables',
    message: /^vCPU 0: triple fault \(KVM_EXIT_SHUTDOWN\)/,
  });
});

test('a triple fault from a program started in real mode stops the run', options, async (t) => {
  const lo = ZERO_DESCRIPTOR & 0xff;
  const hi = ZERO_DESCRIPTOR >> 8;
  await assertFaultStops(t, {
    code: realModeGuest('real mode, about to triple fault', [
      ...[0xfa], // cli
      ...[0x0f, 0x01, 0x1e, lo, hi], // lidt [ZERO_DESCRIPTOR]
      ...[0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0], // mov eax, cr0; or al, 1; mov cr0, eax
      ...[0x0f, 0x0b], // ud2, now in (16-bit) protected mode, which honours the IDT limit
    ]),
    mode: 'real',
    line: 'real mode, about to triple fault',
    message: /^vCPU 0: triple fault \(KVM_EXIT_SHUTDOWN\)/,
  });
});

test('executing from MMIO space is a KVM internal error that stops the run', options, async (t) => {
  await assertFaultStops(t, {
    // 0xd0000000: the PCI MMIO window, where no BAR is mapped; KVM cannot fetch from it.
    code: buildGuestProgram(
      longGuest('about to jump into MMIO', `((void (*)(void))0xd0000000UL)();`),
    ),
    mode: 'long',
    line: 'about to jump into MMIO',
    message: /^vCPU 0: KVM internal error, suberror 1 \(instruction emulation failed\)/,
  });
});

test(
  'an instruction the emulator cannot run is an internal error naming its bytes',
  { ...options, skip: skip || (!onPvm && 'hardware KVM runs VEX instructions natively') },
  async (t) => {
    await assertFaultStops(t, {
      code: buildGuestProgram(
        longGuest(
          'about to run shlx',
          `__asm__ volatile("shlx %%rcx, %%rax, %%rax" : : "a"(1UL), "c"(3UL));`,
        ),
      ),
      mode: 'long',
      line: 'about to run shlx',
      message:
        /^vCPU 0: KVM internal error, suberror 1 \(instruction emulation failed\), instruction bytes c4 e2 f1 f7 c0/,
    });
  },
);

test('an exit the VMM does not handle stops a running machine', options, async (t) => {
  const line = 'spinning until the VMM stops me';
  await assertFaultStops(t, {
    code: buildGuestProgram(`${GUEST_C_PRELUDE}
void main(void) {
  puts("${line}\\n");
  for (;;) __asm__ volatile("pause");
}
`),
    mode: 'long',
    line,
    message: /^vCPU 0: unhandled exit KVM_EXIT_HYPERCALL \(KVM exit reason 3\)/,
    async started(machine) {
      const seen = new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (!machine.serialText().includes(line)) return;
          clearInterval(poll);
          resolve();
        }, 5);
      });
      await withDeadline(seen, DEADLINE, () => `serial so far:\n${machine.serialText()}`);
      // No guest can make one (see the top of this file): hand one to the machine's exit handler.
      const handler = machine as unknown as { onExit(vcpu: KvmVcpu, exit: KvmExit): void };
      assert.equal(typeof handler.onExit, 'function', 'Machine.onExit(vcpu, exit) is the way in');
      handler.onExit(machine.vcpus[0]!, { reason: 'unknown', exitReason: 3 });
    },
  });
});

test('stop messages name the exit and the internal error', () => {
  const buses = { pio: createPioBus(), mmio: createMmioBus() };
  const message = (exit: KvmExit) => {
    const outcome = handleExit(exit, buses, 0);
    assert.equal(outcome.kind, 'stop');
    assert.equal(outcome.kind === 'stop' && outcome.reason, 'error');
    return outcome.kind === 'stop' ? outcome.message : '';
  };
  assert.match(
    message({ reason: 'unknown', exitReason: 4 }),
    /unhandled exit KVM_EXIT_DEBUG \(KVM exit reason 4\)/,
  );
  assert.match(message({ reason: 'unknown', exitReason: 29 }), /unhandled exit KVM_EXIT_X86_RDMSR/);
  assert.match(
    message({ reason: 'unknown', exitReason: 999 }),
    /unhandled exit KVM_EXIT_\? \(KVM exit reason 999\)/,
  );
  assert.match(message({ reason: 'shutdown', exitReason: 8 }), /^vCPU 0: triple fault/);
  assert.match(
    message({ reason: 'internal-error', exitReason: 17, suberror: 2, data: [] }),
    /KVM internal error, suberror 2 \(an exception while delivering another one\) \[\]$/,
  );
  // As PVM reported `shlx %rcx, %rax, %rax`: flags 1 (instruction bytes), insn_size 15.
  assert.equal(
    message({
      reason: 'internal-error',
      exitReason: 17,
      suberror: 1,
      data: [0x1n, 0xe9c0f7f1e2c40fn, 0x1000n],
    }),
    'vCPU 0: KVM internal error, suberror 1 (instruction emulation failed), instruction bytes ' +
      'c4 e2 f1 f7 c0 e9 00 00 10 00 00 00 00 00 00 [0x1, 0xe9c0f7f1e2c40f, 0x1000]',
  );
});
