// The smoke boot: the factory image under QEMU (TCG where KVM cannot run it) with QEMU's own
// virtio-blk on a fresh sparse data disk. Boot, wait for BERTH-READY, write a file on /var,
// power off cleanly, boot again and find the file. Every wait has a deadline, and a failure
// carries the serial log's tail.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QemuVm } from '../../core/backends/qemu/qemu-vm.ts';
import { DataDisk, GiB } from '../../core/disk/data-disk.ts';
import { bootImage, powerOff, shell } from '../support/guest-vm.ts';

export interface SmokeResult {
  firstReadyMs: number;
  secondReadyMs: number;
  firstGuestUptime: number;
  secondGuestUptime: number;
  dataKept: boolean;
  accelReason: string;
}

export async function runSmoke(log: (line: string) => void = console.log): Promise<SmokeResult> {
  const work = mkdtempSync(join(tmpdir(), 'berth-smoke-'));
  let vm: QemuVm | undefined;
  try {
    const disk = new DataDisk(join(work, 'data.img'));
    disk.create(4 * GiB);
    const token = `berth-smoke-${randomBytes(8).toString('hex')}`;
    const boot = async (n: number) => {
      const serialLog = join(work, `serial-${n}.log`);
      log(`smoke: boot ${n} on qemu, serial log ${serialLog}`);
      const booted = await bootImage({ disk: { kind: 'qemu', path: disk.path }, serialLog });
      vm = booted.vm;
      return booted;
    };

    const first = await boot(1);
    log(`smoke: ${first.accelReason}`);
    await shell(first.vm, `echo ${token} > /var/smoke.txt && sync`, 'writing /var/smoke.txt');
    await powerOff(first.vm);
    log(
      `smoke: first boot READY in ${Math.round(first.readyMs)} ms (guest uptime ${first.guestUptime} s); file written, powered off`,
    );

    const second = await boot(2);
    const output = await shell(second.vm, 'cat /var/smoke.txt', 'reading /var/smoke.txt');
    await powerOff(second.vm);
    vm = undefined;
    return {
      firstReadyMs: first.readyMs,
      secondReadyMs: second.readyMs,
      firstGuestUptime: first.guestUptime,
      secondGuestUptime: second.guestUptime,
      dataKept: output.includes(token),
      accelReason: first.accelReason,
    };
  } finally {
    (vm as QemuVm | undefined)?.kill();
    if (!process.env.BERTH_KEEP_SMOKE) rmSync(work, { recursive: true, force: true });
  }
}

export function smokeLine(result: SmokeResult): string {
  return (
    `smoke: READY in ${Math.round(result.firstReadyMs)} ms, second boot READY in ` +
    `${Math.round(result.secondReadyMs)} ms, data kept: ${result.dataKept ? 'yes' : 'no'}`
  );
}
