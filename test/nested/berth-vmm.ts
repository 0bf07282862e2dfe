// Our VMM's side of the nested harness: core/vmm's bootLinux in this (the L1 runner's) process,
// on L1's /dev/kvm, booting the factory image with the data disk as virtio-blk, the system image
// as a read-only virtio-blk (serial berth-system) and virtio-vsock (guest CID 3), the devices of
// core/devices in process. The serial console goes to run.serialLog.
//
// boot(run):
//   1. builds the machine and starts it, logging the serial console to run.serialLog;
//   2. waits for READY_LINE (BERTH_READY_DEADLINE_MS) and takes readyMs from the VMM's start;
//   3. powers the guest off (`poweroff` on the console) within L2_POWEROFF_DEADLINE_MS;
// and rejects with a VmError (serial tail, and the VMM's own last log lines) on any failure.
// Still to come (issue 4): a shell command over vsock and SSH, and a data disk write/read-back;
// and the VMM as the kvm backend's child process rather than in the runner's process.
import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VmError } from '../../core/backends/qemu/serial-process.ts';
import { SYSTEM_DISK_SERIAL } from '../../core/backends/qemu/qemu-backend.ts';
import { VirtioBlkDevice } from '../../core/devices/blk/index.ts';
import { VsockDevice } from '../../core/devices/vsock/index.ts';
import type { VirtioDevice } from '../../core/devices/virtio-device.ts';
import {
  bootLinux,
  formatExitProfile,
  type Machine,
  type MachineStop,
} from '../../core/vmm/machine.ts';
import {
  L2_POWEROFF_DEADLINE_MS,
  L2_READY_DEADLINE_MS,
  READY_LINE,
  type L2Boot,
  type L2Run,
  type NestedVmm,
} from './l2-vmm.ts';

export type BerthVmmChoice = { vmm: NestedVmm } | { unavailable: string };

export const GUEST_CID = 3;
/**
 * Longer than the peer's L2_READY_DEADLINE_MS, for now: every vCPU exit of ours is a round trip
 * from the vCPU thread to the JavaScript event loop (about 1 ms in L1 under TCG, against QEMU's
 * in-thread handling), and the serial console alone costs two exits per byte, so the factory
 * image takes about 100 s to BERTH-READY here. A hang still fails.
 */
export const BERTH_READY_DEADLINE_MS = 3 * L2_READY_DEADLINE_MS;
/** VMM log lines an error quotes (unclaimed port and MMIO accesses, devices, interrupts). */
const LOG_LINES = 40;
const TAIL_LINES = 60;

/** A waitUntil in progress: checked on every serial batch and when the machine stops. */
type Waiter = () => void;

export const berthKvm: NestedVmm = {
  name: 'berth',
  async boot(run: L2Run): Promise<L2Boot> {
    const { image } = run;
    const what = `berth run ${run.run}`;
    const logLines: string[] = [];
    const log = (line: string) => {
      logLines.push(line);
      if (logLines.length > LOG_LINES) logLines.shift();
    };
    const serialFd = openSync(run.serialLog, 'w', 0o600);
    const waiters = new Set<Waiter>();
    let text = '';
    let serialBytes = 0;
    let firstOutputMs = NaN;
    let readyMs = NaN;
    const ready: { match: RegExpExecArray | null } = { match: null };
    let stop: MachineStop | null = null;
    let machine: Machine | null = null;
    const devices: VirtioDevice[] = [];
    const blks: VirtioBlkDevice[] = [];
    let vsock: VsockDevice | null = null;
    const startedAt = performance.now();

    const tail = () => {
      const lines = (machine ? machine.serialText() : text).split('\n');
      return (
        lines.slice(-TAIL_LINES).join('\n') +
        `\n--- VMM log (last lines) ---\n${logLines.join('\n') || '(empty)'}` +
        (machine ? `\n--- ${machine.exitCount} exits handled in JS ---` : '')
      );
    };
    const waitUntil = (test: () => boolean, label: string, timeoutMs: number) =>
      new Promise<void>((resolve, reject) => {
        const check: Waiter = () => {
          if (test()) {
            done();
            resolve();
          } else if (stop && stop.reason !== 'poweroff') {
            done();
            reject(new VmError(`${what}: ${label}: the VMM stopped: ${stop.message}`, tail()));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new VmError(`${what}: ${label}: no result within ${timeoutMs} ms`, tail()));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    const wake = () => {
      for (const waiter of [...waiters]) waiter();
    };

    try {
      const dataDisk = new VirtioBlkDevice({ path: run.dataDisk, serial: 'berth-data' });
      blks.push(dataDisk);
      devices.push(dataDisk);
      if (image.systemImage) {
        const system = new VirtioBlkDevice({
          path: image.systemImage,
          readOnly: true,
          serial: SYSTEM_DISK_SERIAL,
        });
        blks.push(system);
        devices.push(system);
      }
      vsock = new VsockDevice({
        guestCid: GUEST_CID,
        udsPath: join(dirname(run.serialLog), `vsock-berth-${run.run}.sock`),
        log,
      });
      await vsock.listen();
      devices.push(vsock);

      const booted = bootLinux({
        kernel: image.kernel,
        initrd: image.initrd,
        cmdline: image.cmdline,
        memoryMiB: run.memoryMiB,
        vcpus: run.cpus,
        devices,
        log,
        profileExits: true,
        serial: (bytes) => {
          if (serialBytes === 0) firstOutputMs = performance.now() - startedAt;
          serialBytes += bytes.length;
          writeSync(serialFd, bytes);
          if (!ready.match) {
            text = (text + Buffer.from(bytes).toString('latin1')).slice(-4096);
            ready.match = READY_LINE.exec(text);
            if (ready.match) readyMs = performance.now() - startedAt;
          }
          wake();
        },
      });
      machine = booted.machine;
      void machine.stopped.then((s) => {
        stop = s;
        wake();
      });

      await waitUntil(() => ready.match !== null, 'BERTH-READY', BERTH_READY_DEADLINE_MS);
      const bytesAtReady = serialBytes;
      machine.uart.receive(Buffer.from('poweroff\n'));
      await waitUntil(() => stop !== null, 'poweroff', L2_POWEROFF_DEADLINE_MS);
      return {
        readyMs,
        firstOutputMs,
        serialBytes: bytesAtReady,
        guestUptime: Number(ready.match![1]),
        exits: machine.exitCount,
        exitProfile: `${formatExitProfile(machine.exitProfile!)}; finished in the vCPU threads: ${JSON.stringify(machine.vm.fastIoCounts())}`,
      };
    } catch (error) {
      if (error instanceof VmError) throw error;
      throw new VmError(`${what}: ${(error as Error).message}`, tail());
    } finally {
      machine?.destroy();
      for (const blk of blks) blk.close();
      await vsock?.close();
      closeSync(serialFd);
    }
  },
};

export function berthVmm(): BerthVmmChoice {
  return { vmm: berthKvm };
}
