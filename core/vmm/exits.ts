// What one vCPU exit means for the machine: I/O and MMIO go to the buses and are completed with
// the bytes a read returns; everything else ends the run, with a reason a person can act on.
// The guest is untrusted, so nothing here throws: a device model that throws ends the run as an
// error too, instead of escaping into the addon's callback.
import type { KvmExit } from '../native.ts';
import type { Bus } from './devices/bus.ts';

/** KVM_SYSTEM_EVENT_* (linux/kvm.h). */
const SYSTEM_EVENT_SHUTDOWN = 1;
const SYSTEM_EVENT_RESET = 2;
const SYSTEM_EVENT_CRASH = 3;

/** KVM_INTERNAL_ERROR_* (linux/kvm.h), by suberror. */
const INTERNAL_ERRORS: Readonly<Record<number, string>> = {
  1: 'instruction emulation failed',
  2: 'an exception while delivering another one',
  3: 'an event could not be delivered',
  4: 'an exit reason KVM did not expect',
};
/** KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES: data[1..2] hold insn_size and 15 bytes. */
const EMULATION_FLAG_INSTRUCTION_BYTES = 1n;

/** KVM_EXIT_* (linux/kvm.h), by exit reason: the ones exits.ts does not handle get named. */
const EXIT_NAMES: readonly string[] = [
  'KVM_EXIT_UNKNOWN',
  'KVM_EXIT_EXCEPTION',
  'KVM_EXIT_IO',
  'KVM_EXIT_HYPERCALL',
  'KVM_EXIT_DEBUG',
  'KVM_EXIT_HLT',
  'KVM_EXIT_MMIO',
  'KVM_EXIT_IRQ_WINDOW_OPEN',
  'KVM_EXIT_SHUTDOWN',
  'KVM_EXIT_FAIL_ENTRY',
  'KVM_EXIT_INTR',
  'KVM_EXIT_SET_TPR',
  'KVM_EXIT_TPR_ACCESS',
  'KVM_EXIT_S390_SIEIC',
  'KVM_EXIT_S390_RESET',
  'KVM_EXIT_DCR',
  'KVM_EXIT_NMI',
  'KVM_EXIT_INTERNAL_ERROR',
  'KVM_EXIT_OSI',
  'KVM_EXIT_PAPR_HCALL',
  'KVM_EXIT_S390_UCONTROL',
  'KVM_EXIT_WATCHDOG',
  'KVM_EXIT_S390_TSCH',
  'KVM_EXIT_EPR',
  'KVM_EXIT_SYSTEM_EVENT',
  'KVM_EXIT_S390_STSI',
  'KVM_EXIT_IOAPIC_EOI',
  'KVM_EXIT_HYPERV',
  'KVM_EXIT_ARM_NISV',
  'KVM_EXIT_X86_RDMSR',
  'KVM_EXIT_X86_WRMSR',
  'KVM_EXIT_DIRTY_RING_FULL',
  'KVM_EXIT_AP_RESET_HOLD',
  'KVM_EXIT_X86_BUS_LOCK',
  'KVM_EXIT_XEN',
  'KVM_EXIT_RISCV_SBI',
  'KVM_EXIT_RISCV_CSR',
  'KVM_EXIT_NOTIFY',
  'KVM_EXIT_LOONGARCH_IOCSR',
  'KVM_EXIT_MEMORY_FAULT',
  'KVM_EXIT_TDX',
];

export type StopReason = 'poweroff' | 'reset' | 'halt' | 'error';

export type ExitOutcome =
  /** Complete the exit with these bytes (undefined for writes) and go on. */
  { kind: 'continue'; data?: Uint8Array } | { kind: 'stop'; reason: StopReason; message: string };

export interface ExitBuses {
  pio: Bus;
  mmio: Bus;
}

export function handleExit(exit: KvmExit, buses: ExitBuses, vcpu: number): ExitOutcome {
  try {
    return dispatch(exit, buses, vcpu);
  } catch (error) {
    return {
      kind: 'stop',
      reason: 'error',
      message: `vCPU ${vcpu}: a device failed handling ${describeAccess(exit)}: ${(error as Error).stack ?? String(error)}`,
    };
  }
}

function dispatch(exit: KvmExit, { pio, mmio }: ExitBuses, vcpu: number): ExitOutcome {
  switch (exit.reason) {
    case 'io': {
      const { size, count, port } = exit;
      if (exit.direction === 'in') {
        const data = new Uint8Array(size * count);
        for (let i = 0; i < count; i++) pio.readInto(port, data.subarray(i * size, (i + 1) * size));
        return { kind: 'continue', data };
      }
      const data = exit.data ?? new Uint8Array(0);
      for (let i = 0; i < count && (i + 1) * size <= data.length; i++) {
        pio.write(port, data.subarray(i * size, (i + 1) * size));
      }
      return { kind: 'continue' };
    }
    case 'mmio': {
      if (exit.direction === 'read') {
        const data = new Uint8Array(exit.size);
        mmio.readInto(exit.address, data);
        return { kind: 'continue', data };
      }
      mmio.write(exit.address, exit.data ?? new Uint8Array(0));
      return { kind: 'continue' };
    }
    case 'hlt':
      return { kind: 'stop', reason: 'halt', message: `vCPU ${vcpu} halted` };
    case 'shutdown':
      return {
        kind: 'stop',
        reason: 'error',
        message:
          `vCPU ${vcpu}: triple fault (KVM_EXIT_SHUTDOWN): the guest hit an exception it could ` +
          'not deliver (check its IDT, GDT, stack and page tables)',
      };
    case 'system-event':
      if (exit.type === SYSTEM_EVENT_SHUTDOWN) {
        return {
          kind: 'stop',
          reason: 'poweroff',
          message: `vCPU ${vcpu}: system event: shutdown`,
        };
      }
      if (exit.type === SYSTEM_EVENT_RESET) {
        return { kind: 'stop', reason: 'reset', message: `vCPU ${vcpu}: system event: reset` };
      }
      return {
        kind: 'stop',
        reason: 'error',
        message: `vCPU ${vcpu}: system event ${exit.type === SYSTEM_EVENT_CRASH ? 'crash' : exit.type}`,
      };
    case 'internal-error':
      return {
        kind: 'stop',
        reason: 'error',
        message:
          `vCPU ${vcpu}: KVM internal error, suberror ${exit.suberror}` +
          `${INTERNAL_ERRORS[exit.suberror] ? ` (${INTERNAL_ERRORS[exit.suberror]})` : ''}` +
          `${instructionBytes(exit.suberror, exit.data)}` +
          ` [${exit.data.map((d) => `0x${d.toString(16)}`).join(', ')}]`,
      };
    case 'fail-entry':
      return {
        kind: 'stop',
        reason: 'error',
        message: `vCPU ${vcpu}: entry failed, hardware reason 0x${exit.hardwareEntryFailureReason.toString(16)} (cpu ${exit.cpu})`,
      };
    case 'error':
      return {
        kind: 'stop',
        reason: 'error',
        message: `vCPU ${vcpu}: KVM_RUN failed: ${exit.error.message}`,
      };
    case 'unknown':
      return {
        kind: 'stop',
        reason: 'error',
        message:
          `vCPU ${vcpu}: unhandled exit ${EXIT_NAMES[exit.exitReason] ?? 'KVM_EXIT_?'} ` +
          `(KVM exit reason ${exit.exitReason}): the VMM does not handle this exit`,
      };
  }
}

function describeAccess(exit: KvmExit): string {
  if (exit.reason === 'io')
    return `${exit.direction} port 0x${exit.port.toString(16)} (${exit.size} bytes)`;
  if (exit.reason === 'mmio')
    return `MMIO ${exit.direction} at 0x${exit.address.toString(16)} (${exit.size} bytes)`;
  return `exit ${exit.reason}`;
}

/**
 * The instruction KVM failed to emulate, when it reports it (suberror 1 with the instruction-bytes
 * flag): ", instruction bytes c4 e2 ...", else "". data[1] and data[2] are the 16 bytes of
 * insn_size and insn_bytes[15], little-endian.
 */
function instructionBytes(suberror: number, data: readonly bigint[]): string {
  if (suberror !== 1 || data.length < 3 || (data[0]! & EMULATION_FLAG_INSTRUCTION_BYTES) === 0n) {
    return '';
  }
  const raw: number[] = [];
  for (const word of [data[1]!, data[2]!]) {
    for (let i = 0n; i < 8n; i++) raw.push(Number((word >> (8n * i)) & 0xffn));
  }
  const size = Math.min(raw[0]!, 15);
  if (size === 0) return '';
  return `, instruction bytes ${raw
    .slice(1, 1 + size)
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(' ')}`;
}
