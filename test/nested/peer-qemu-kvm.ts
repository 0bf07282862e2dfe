// The peer of the nested harness: QEMU with -enable-kvm -cpu host inside L1, booting the factory
// image the way the qemu backend does (core/backends/qemu/qemu-command.ts: microvm, the data disk
// on QEMU's own virtio-blk), plus the system image as a read-only virtio-blk with the serial
// berth-system. qemuArgs has no read-only QEMU disk, so that one is appended here.
import { qemuArgs } from '../../core/backends/qemu/qemu-command.ts';
import { READY_LINE, SYSTEM_DISK_SERIAL } from '../../core/backends/guest-devices.ts';
import { SerialProcess, VmError } from '../../core/backends/qemu/serial-process.ts';
import {
  L2_POWEROFF_DEADLINE_MS,
  L2_READY_DEADLINE_MS,
  type L2Boot,
  type L2Run,
  type NestedVmm,
} from './l2-vmm.ts';

export const QEMU_IN_L1 = '/usr/bin/qemu-system-x86_64';

export function peerArgs(run: L2Run): string[] {
  const { image } = run;
  return [
    ...qemuArgs({
      image: { kernel: image.kernel, initrd: image.initrd, cmdline: image.cmdline },
      accel: 'kvm',
      cpus: run.cpus,
      memoryMiB: run.memoryMiB,
      disk: { kind: 'qemu', path: run.dataDisk, serial: 'berth-data' },
      serial: { kind: 'stdio' },
    }),
    ...(image.systemImage
      ? [
          '-drive',
          `file=${image.systemImage.replaceAll(',', ',,')},if=none,id=system,format=raw,readonly=on`,
          '-device',
          `virtio-blk-pci,drive=system,serial=${SYSTEM_DISK_SERIAL}`,
        ]
      : []),
  ];
}

export const qemuKvm: NestedVmm = {
  name: 'qemu-kvm',
  async boot(run: L2Run): Promise<L2Boot> {
    const vm = new SerialProcess(QEMU_IN_L1, peerArgs(run), { serialLog: run.serialLog });
    let firstOutputMs = NaN;
    const unsubscribe = vm.subscribeSerial(() => {
      firstOutputMs = performance.now() - vm.startedAt;
      unsubscribe();
    });
    try {
      const ready = await vm.waitFor(
        READY_LINE,
        `qemu-kvm run ${run.run}: BERTH-READY`,
        L2_READY_DEADLINE_MS,
      );
      const readyMs = performance.now() - vm.startedAt;
      const after = vm.serialOffset;
      const serialBytes = Buffer.byteLength(vm.serialSince(0));
      vm.write('poweroff\n');
      const exit = await vm.waitExit(L2_POWEROFF_DEADLINE_MS, `qemu-kvm run ${run.run}: poweroff`);
      if (exit.code !== 0) {
        throw new VmError(
          `qemu-kvm run ${run.run}: QEMU exited with ${exit.signal ?? exit.code} after poweroff`,
          vm.serialSince(after),
        );
      }
      return { readyMs, firstOutputMs, serialBytes, guestUptime: Number(ready[1]) };
    } finally {
      vm.kill();
    }
  },
};
