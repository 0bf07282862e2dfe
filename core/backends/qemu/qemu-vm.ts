// A QEMU process running the factory image (SerialProcess: serial console on our pipes, appended
// to the serial log, waits with deadlines, failures carrying the serial tail).
import { existsSync } from 'node:fs';
import { qemuArgs, type QemuVmConfig } from './qemu-command.ts';
import { type ProcessExit, SerialProcess, VmError } from './serial-process.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';

const SETPRIV = '/usr/bin/setpriv';

/**
 * QEMU must never outlive the process that runs it (a crashed test or supervisor would leave a
 * VM holding the data disk). util-linux's setpriv sets PR_SET_PDEATHSIG and execs QEMU, so the
 * pid we hold is QEMU's own.
 */
export function withParentDeathSignal(binary: string, args: string[]): [string, string[]] {
  if (!existsSync(SETPRIV)) return [binary, args];
  return [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', binary, ...args]];
}

export { VmError };
export type VmExit = ProcessExit;

/** QEMU running the machine qemuArgs() describes, its serial console on our pipes. */
export class QemuVm extends SerialProcess {
  constructor(config: Omit<QemuVmConfig, 'serial'>, serialLogPath: string, binary = QEMU_BINARY) {
    const args = qemuArgs({ ...config, serial: { kind: 'stdio' } });
    // pdeathsig ends QEMU if we die; its own process group keeps a terminal's Ctrl-C away from it.
    super(...withParentDeathSignal(binary, args), {
      serialLog: serialLogPath,
      appendLog: true,
      name: 'QEMU',
    });
  }
}
