// Our VMM's side of the nested harness. core/vmm and the kvm backend (issue 4) do not exist yet,
// so this reports that instead of a figure: the harness never invents the berth number.
//
// When they exist, return a NestedVmm whose boot(run):
//   1. starts our VMM (the kvm backend's VMM child, as the supervisor would) with run.image,
//      run.dataDisk and vsock, logging the serial console to run.serialLog;
//   2. waits for READY_LINE with L2_READY_DEADLINE_MS and takes readyMs from the VMM's start;
//   3. runs a shell command over vsock and over SSH (core/guest), writes a file on the data disk
//      (/var), syncs, reads it back;
//   4. powers the guest off within L2_POWEROFF_DEADLINE_MS;
// and rejects with a VmError (serial tail) on any failure. The runner and the host need no change.
import type { NestedVmm } from './l2-vmm.ts';

export type BerthVmmChoice = { vmm: NestedVmm } | { unavailable: string };

export function berthVmm(): BerthVmmChoice {
  return { unavailable: 'our VMM is not built yet' };
}
