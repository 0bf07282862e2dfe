// Which accelerator QEMU should use. KVM only helps when the CPU really virtualizes (vmx or svm):
// /dev/kvm also exists on PVM hosts, where KVM emulates guests instruction by instruction and
// a stock Linux kernel cannot boot (shared/ENVIRONMENT.md). There, TCG is the honest choice.
import { accessSync, constants, readFileSync } from 'node:fs';

export interface AccelChoice {
  accel: 'kvm' | 'tcg';
  /** Why, in words for the user ("slow: no hardware virtualization" is shown for TCG). */
  reason: string;
}

export interface AccelProbeInputs {
  cpuinfo: string;
  kvmAccessible: boolean;
  kvmModules: string;
}

export function readAccelProbeInputs(): AccelProbeInputs {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  let kvmAccessible = true;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    kvmAccessible = false;
  }
  return { cpuinfo: read('/proc/cpuinfo'), kvmAccessible, kvmModules: read('/proc/modules') };
}

export function chooseAccel(inputs: AccelProbeInputs = readAccelProbeInputs()): AccelChoice {
  const flags = new Set(/^flags\s*:(.*)$/m.exec(inputs.cpuinfo)?.[1]?.trim().split(/\s+/) ?? []);
  const hardware = flags.has('vmx') || flags.has('svm');
  const pvm = /^kvm_pvm\s/m.test(inputs.kvmModules);
  if (!inputs.kvmAccessible) {
    return {
      accel: 'tcg',
      reason: 'slow: no hardware virtualization (/dev/kvm is missing or not accessible)',
    };
  }
  if (pvm || !hardware) {
    return {
      accel: 'tcg',
      reason: `slow: no hardware virtualization (${pvm ? 'KVM here is PVM, which emulates guests' : 'the CPU has no vmx or svm'})`,
    };
  }
  return {
    accel: 'kvm',
    reason: `KVM with hardware virtualization (${flags.has('vmx') ? 'vmx' : 'svm'})`,
  };
}
