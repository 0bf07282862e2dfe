// Our VMM's side of the nested harness: the kvm backend's VMM process (core/backends/kvm, what
// the supervisor starts) on L1's /dev/kvm, booting the factory image with the data disk, the
// system image and vsock, exactly as the qemu peer is timed: from starting the process to the
// guest's BERTH-READY on its serial console. Then it proves the machine works:
//   1. a shell command over vsock and SSH (ssh2 to the guest's dropbear through our vsock device);
//   2. a data disk write and read-back: 4 MiB of random bytes sent over SSH into /var (the data
//      disk), synced, the page cache dropped, read back through our virtio-blk and hashed;
//   3. the VMM process's own memory (RSS beyond the guest RAM it touched), at READY and after;
// then powers the guest off and expects exit code 0. Any failure is a VmError with the serial
// tail and the VMM's stderr.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KvmVm } from '../../core/backends/kvm/kvm-backend.ts';
import { READY_LINE } from '../../core/backends/guest-devices.ts';
import { VmError } from '../../core/backends/qemu/serial-process.ts';
import { GuestSsh } from '../../core/guest/ssh-session.ts';
import { authorizedKeyArgument, loadOrCreateSshKey } from '../../core/guest/ssh-keys.ts';
import {
  L2_POWEROFF_DEADLINE_MS,
  L2_READY_DEADLINE_MS,
  type L2Boot,
  type L2Run,
  type NestedVmm,
  type VmmMemory,
} from './l2-vmm.ts';

export type BerthVmmChoice = { vmm: NestedVmm } | { unavailable: string };

/** The checks after READY: an SSH handshake and 4 MiB through the disk, in emulated L1. */
const CHECK_DEADLINE_MS = 120_000;
const DISK_CHECK_BYTES = 4 << 20;
const DISK_CHECK_FILE = '/var/nested-disk-check';

/**
 * From /proc/<pid>/smaps: the resident size of the guest RAM windows (the VMM logs where they
 * are: "guest RAM windows: 0x<start>+<length> ...") against the whole process's.
 */
export function vmmMemory(pid: number, vmmLog: string): VmmMemory {
  const starts = new Set(
    [...(/guest RAM windows: (.*)/.exec(vmmLog)?.[1] ?? '').matchAll(/0x([0-9a-f]+)\+/g)].map((m) =>
      Number.parseInt(m[1]!, 16),
    ),
  );
  if (starts.size === 0) throw new Error('the VMM did not log its guest RAM windows');
  let rssKiB = 0;
  let guestKiB = 0;
  for (const block of readFileSync(`/proc/${pid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-)/)) {
    const rss = Number(/^Rss:\s+(\d+) kB/m.exec(block)?.[1] ?? 0);
    rssKiB += rss;
    if (starts.has(Number.parseInt(block.split('-')[0]!, 16))) guestKiB += rss;
  }
  return { rssKiB, guestKiB, ownKiB: rssKiB - guestKiB };
}

/** Runs `command` in the guest over SSH; its stdout, or a thrown error with stderr and status. */
async function guestRun(ssh: GuestSsh, command: string, stdin?: Buffer): Promise<string> {
  const result = await ssh.exec(command, stdin);
  if (result.code !== 0) {
    throw new Error(
      `\`${command}\` in the guest: exit ${result.code ?? result.signal}: ${result.stderr.toString().trim()}`,
    );
  }
  return result.stdout.toString();
}

/** What the run proves after READY; resolves with a one-line account of it. */
async function checkGuest(vsock: string, key: ReturnType<typeof loadOrCreateSshKey>) {
  const started = performance.now();
  const ssh = await GuestSsh.connect(vsock, key, CHECK_DEADLINE_MS);
  try {
    const uname = (await guestRun(ssh, 'uname -sr && cat /proc/cmdline')).split('\n')[0]!;
    const shellMs = performance.now() - started;
    const payload = randomBytes(DISK_CHECK_BYTES);
    const expected = createHash('sha256').update(payload).digest('hex');
    const diskStarted = performance.now();
    await guestRun(ssh, `cat > ${DISK_CHECK_FILE} && sync`, payload);
    const readBack = await guestRun(
      ssh,
      `echo 3 > /proc/sys/vm/drop_caches && sha256sum ${DISK_CHECK_FILE} && ` +
        `rm ${DISK_CHECK_FILE} && sync && awk '$2 == "/var" {print $1, $3}' /proc/mounts`,
    );
    const [hashLine, mountLine] = readBack.trim().split('\n');
    const actual = hashLine?.split(/\s+/)[0];
    if (actual !== expected) {
      throw new Error(`the data disk read back ${actual ?? 'nothing'}, not ${expected}`);
    }
    if (!mountLine || !/^\/dev\/vd/.test(mountLine)) {
      throw new Error(`/var is not on the data disk (virtio-blk): ${mountLine ?? 'not mounted'}`);
    }
    return (
      `ssh over vsock: \`uname -sr\` -> ${uname} (${Math.round(shellMs)} ms to connect and run); ` +
      `data disk (${mountLine}): ${DISK_CHECK_BYTES >> 20} MiB written, synced, read back ` +
      `uncached, sha256 matches (${Math.round(performance.now() - diskStarted)} ms)`
    );
  } finally {
    ssh.close();
  }
}

export const berthKvm: NestedVmm = {
  name: 'berth',
  async boot(run: L2Run): Promise<L2Boot> {
    const { image } = run;
    const what = `berth run ${run.run}`;
    const dir = dirname(run.serialLog);
    const vsock = join(dir, `vsock-berth-${run.run}.sock`);
    const key = loadOrCreateSshKey(join(dir, 'ssh'));
    const vm = new KvmVm(
      {
        kernel: image.kernel,
        initrd: image.initrd,
        cmdline: `${image.cmdline} ${authorizedKeyArgument(key)}`,
        cpus: run.cpus,
        memoryMiB: run.memoryMiB,
        disk: run.dataDisk,
        ...(image.systemImage ? { systemImage: image.systemImage } : {}),
        vsock,
      },
      run.serialLog,
    );
    let firstOutputMs = NaN;
    const unsubscribe = vm.subscribeSerial(() => {
      firstOutputMs = performance.now() - vm.startedAt;
      unsubscribe();
    });
    const fail = (message: string) => new VmError(`${what}: ${message}`, `${vm.serialTail(60)}`);
    try {
      const ready = await vm.waitFor(READY_LINE, `${what}: BERTH-READY`, L2_READY_DEADLINE_MS);
      const readyMs = performance.now() - vm.startedAt;
      const serialBytes = Buffer.byteLength(vm.serialSince(0));
      const memoryAtReady = vmmMemory(vm.pid!, vm.stderrText);
      let check: string;
      try {
        check = await checkGuest(vsock, key);
      } catch (error) {
        throw fail((error as Error).message);
      }
      const memoryAfterCheck = vmmMemory(vm.pid!, vm.stderrText);
      const after = vm.serialOffset;
      vm.write('poweroff\n');
      const exit = await vm.waitExit(L2_POWEROFF_DEADLINE_MS, `${what}: poweroff`);
      if (exit.code !== 0) {
        throw new VmError(
          `${what}: the VMM exited with ${exit.signal ?? exit.code} after poweroff`,
          vm.serialSince(after),
        );
      }
      const exits = /exits handled in JS: (\d+) \((.*)\)/.exec(vm.stderrText);
      const startup = /guest started (.*)/.exec(vm.stderrText)?.[1];
      return {
        readyMs,
        firstOutputMs,
        serialBytes,
        guestUptime: Number(ready[1]),
        check: startup ? `VMM start-up: guest started ${startup}; ${check}` : check,
        memoryAtReady,
        memoryAfterCheck,
        ...(exits ? { exits: Number(exits[1]), exitProfile: exits[2] } : {}),
      };
    } finally {
      vm.kill();
    }
  },
};

export function berthVmm(): BerthVmmChoice {
  return { vmm: berthKvm };
}
