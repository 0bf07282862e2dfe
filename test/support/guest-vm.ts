// Booting the factory image for a test, and typing commands into its serial shell. Every wait
// has a deadline and every failure carries the serial log's tail (VmError).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseAccel } from '../../core/backends/accel-probe.ts';
import { READY_LINE } from '../../core/backends/guest-devices.ts';
import { hostTscKhz } from '../../core/backends/qemu/host-tsc.ts';
import type { QemuVmConfig } from '../../core/backends/qemu/qemu-command.ts';
import { QemuVm, VmError } from '../../core/backends/qemu/qemu-vm.ts';
import { verifyImage } from '../../core/image/manifest.ts';
import { buildPaths } from '../../core/paths.ts';

/** Generous for a loaded 2-core machine under TCG; a healthy boot takes a few seconds. */
export const READY_DEADLINE_MS = 90_000;
export const COMMAND_DEADLINE_MS = 60_000;
export const POWEROFF_DEADLINE_MS = 30_000;

export interface BootOptions {
  disk: QemuVmConfig['disk'];
  extraDisks?: QemuVmConfig['extraDisks'];
  vsock?: QemuVmConfig['vsock'];
  rng?: QemuVmConfig['rng'];
  net?: QemuVmConfig['net'];
  /** The image to boot (default build/image). */
  imageDir?: string;
  serialLog: string;
  cpus?: number;
  memoryMiB?: number;
  /** Extra kernel arguments (e.g. berth.authorized_key=...). */
  kernelArgs?: string[];
}

export interface BootedVm {
  vm: QemuVm;
  readyMs: number;
  guestUptime: number;
  accelReason: string;
}

export async function bootImage(options: BootOptions): Promise<BootedVm> {
  const dir = options.imageDir ?? buildPaths.image;
  verifyImage(dir);
  const accel = chooseAccel();
  const cmdline = [
    readFileSync(join(dir, 'cmdline'), 'utf8').trim(),
    ...(options.kernelArgs ?? []),
  ].join(' ');
  const vm = new QemuVm(
    {
      image: { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), cmdline },
      accel: accel.accel,
      hostTscKhz: hostTscKhz(),
      cpus: options.cpus ?? 2,
      memoryMiB: options.memoryMiB ?? 1024,
      disk: options.disk,
      ...(options.extraDisks ? { extraDisks: options.extraDisks } : {}),
      ...(options.vsock ? { vsock: options.vsock } : {}),
      ...(options.rng ? { rng: options.rng } : {}),
      ...(options.net ? { net: options.net } : {}),
    },
    options.serialLog,
  );
  try {
    const ready = await vm.waitFor(READY_LINE, 'BERTH-READY', READY_DEADLINE_MS);
    return {
      vm,
      readyMs: performance.now() - vm.startedAt,
      guestUptime: Number(ready[1]),
      accelReason: accel.reason,
    };
  } catch (error) {
    vm.kill();
    throw error;
  }
}

/**
 * Runs a command in the serial shell and returns what the console showed until it finished.
 * The end marker is computed by the shell ($((6*7))), so the echoed input line cannot match it.
 * A non-zero exit status fails with the serial tail.
 */
export async function shell(
  vm: QemuVm,
  command: string,
  what: string,
  timeoutMs = COMMAND_DEADLINE_MS,
): Promise<string> {
  const tag = randomBytes(4).toString('hex');
  const after = vm.serialOffset;
  vm.write(`${command}; echo "@${tag}:$((6*7)):$?@"\n`);
  const done = await vm.waitFor(new RegExp(`@${tag}:42:(\\d+)@`), what, timeoutMs, after);
  if (done[1] !== '0')
    throw new VmError(`${what} failed in the guest (exit ${done[1]})`, vm.serialTail());
  return vm.serialSince(after);
}

/** `poweroff` in the guest; resolves when /var is unmounted and QEMU has exited. */
export async function powerOff(vm: QemuVm): Promise<void> {
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
