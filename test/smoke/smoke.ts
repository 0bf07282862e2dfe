// The smoke boot: the factory image under QEMU (TCG where KVM cannot run it) with QEMU's own
// virtio-blk on a fresh sparse data disk. Boot, wait for BERTH-READY, write a file on /var,
// power off cleanly, boot again and find the file. Every wait has a deadline, and a failure
// carries the serial log's tail.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccel } from '../../core/backends/accel-probe.ts';
import { hostTscKhz } from '../../core/backends/qemu/host-tsc.ts';
import { QemuVm, VmError } from '../../core/backends/qemu/qemu-vm.ts';
import { DataDisk, GiB } from '../../core/disk/data-disk.ts';
import { verifyImage } from '../../core/image/manifest.ts';
import { buildPaths } from '../../core/paths.ts';

export interface SmokeResult {
  firstReadyMs: number;
  secondReadyMs: number;
  firstGuestUptime: number;
  secondGuestUptime: number;
  dataKept: boolean;
  accelReason: string;
}

/** Deadlines are generous for a loaded 2-core CI machine under TCG; a healthy boot takes ~5 s. */
const READY_DEADLINE_MS = 90_000;
const COMMAND_DEADLINE_MS = 30_000;
const POWEROFF_DEADLINE_MS = 30_000;

const READY = /BERTH-READY (\d+\.\d+)\r?\n/;

async function boot(disk: string, serialLog: string, log: (line: string) => void) {
  const dir = buildPaths.image;
  verifyImage(dir);
  const accel = chooseAccel();
  const vm = new QemuVm(
    {
      image: {
        kernel: join(dir, 'vmlinuz'),
        initrd: join(dir, 'initrd.img'),
        cmdline: readFileSync(join(dir, 'cmdline'), 'utf8').trim(),
      },
      accel: accel.accel,
      hostTscKhz: hostTscKhz(),
      cpus: 2,
      memoryMiB: 1024,
      dataDisk: disk,
    },
    serialLog,
  );
  log(`smoke: booting on qemu (${accel.accel}: ${accel.reason}), serial log ${serialLog}`);
  try {
    const ready = await vm.waitFor(READY, 'BERTH-READY', READY_DEADLINE_MS);
    return { vm, readyMs: performance.now() - vm.startedAt, guestUptime: Number(ready[1]), accel };
  } catch (error) {
    vm.kill();
    throw error;
  }
}

/**
 * Runs a command in the serial shell and returns what the console showed until it finished.
 * The end marker is computed by the shell ($((6*7))), so the echoed input line cannot match it.
 */
async function shell(vm: QemuVm, command: string, what: string): Promise<string> {
  const tag = randomBytes(4).toString('hex');
  const after = vm.serialOffset;
  vm.write(`${command}; echo "@${tag}:$((6*7)):$?@"\n`);
  const done = await vm.waitFor(new RegExp(`@${tag}:42:(\\d+)@`), what, COMMAND_DEADLINE_MS, after);
  if (done[1] !== '0')
    throw new VmError(`${what} failed in the guest (exit ${done[1]})`, vm.serialTail());
  return vm.serialSince(after);
}

async function powerOff(vm: QemuVm): Promise<void> {
  const after = vm.serialOffset;
  vm.write('poweroff\n');
  await vm.waitFor(
    /berth-init: \/var unmounted/,
    'the guest unmounting /var',
    POWEROFF_DEADLINE_MS,
    after,
  );
  await vm.waitExit(POWEROFF_DEADLINE_MS);
}

export async function runSmoke(log: (line: string) => void = console.log): Promise<SmokeResult> {
  const work = mkdtempSync(join(tmpdir(), 'berth-smoke-'));
  let vm: QemuVm | undefined;
  try {
    const disk = new DataDisk(join(work, 'data.img'));
    disk.create(4 * GiB);
    const token = `berth-smoke-${randomBytes(8).toString('hex')}`;

    const first = await boot(disk.path, join(work, 'serial-1.log'), log);
    vm = first.vm;
    await shell(vm, `echo ${token} > /var/smoke.txt && sync`, 'writing /var/smoke.txt');
    await powerOff(vm);
    log(
      `smoke: first boot READY in ${Math.round(first.readyMs)} ms (guest uptime ${first.guestUptime} s); file written, powered off`,
    );

    const second = await boot(disk.path, join(work, 'serial-2.log'), log);
    vm = second.vm;
    const output = await shell(vm, 'cat /var/smoke.txt', 'reading /var/smoke.txt');
    const dataKept = output.includes(token);
    await powerOff(vm);
    vm = undefined;
    return {
      firstReadyMs: first.readyMs,
      secondReadyMs: second.readyMs,
      firstGuestUptime: first.guestUptime,
      secondGuestUptime: second.guestUptime,
      dataKept,
      accelReason: first.accel.reason,
    };
  } finally {
    vm?.kill();
    if (!process.env.BERTH_KEEP_SMOKE) rmSync(work, { recursive: true, force: true });
  }
}

export function smokeLine(result: SmokeResult): string {
  return (
    `smoke: READY in ${Math.round(result.firstReadyMs)} ms, second boot READY in ` +
    `${Math.round(result.secondReadyMs)} ms, data kept: ${result.dataKept ? 'yes' : 'no'}`
  );
}
