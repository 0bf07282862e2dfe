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
        message: `vCPU ${vcpu}: the guest shut down (a triple fault)`,
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
          `${exit.suberror === 1 ? ' (instruction emulation failed)' : ''}` +
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
        message: `vCPU ${vcpu}: an exit the VMM does not handle (KVM exit reason ${exit.exitReason})`,
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
