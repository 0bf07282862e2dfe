// The kvm backend's VMM process: our VMM (core/vmm) on /dev/kvm booting the factory image, with
// our device models in process: the data disk and the system image as virtio-blk, virtio-vsock
// on the hybrid-vsock socket, virtio-rng, and virtio-net with passt when passt is given.
//
// It looks to its parent exactly like QEMU with `-serial stdio -no-reboot`: stdout is the serial
// console (raw bytes), stdin is serial input, VMM log lines go to stderr; it exits 0 when the
// guest powers off or resets, 1 when the run fails (the error and the serial tail on stderr), 2
// on a bad command line (vmm-args.ts). SIGTERM or SIGINT destroys the machine and exits 0, as
// QEMU does. Devices are closed on every way out.
import { VirtioBlkDevice } from '../../devices/blk/index.ts';
import { PasstLink, VirtioNetDevice } from '../../devices/net/index.ts';
import { VirtioRngDevice } from '../../devices/rng/index.ts';
import type { VirtioDevice } from '../../devices/virtio-device.ts';
import { VsockDevice } from '../../devices/vsock/index.ts';
import {
  bootLinux,
  formatExitProfile,
  type Machine,
  MachineError,
  type MachineStop,
} from '../../vmm/machine.ts';
import { DATA_DISK_SERIAL, GUEST_CID, GUEST_MAC, SYSTEM_DISK_SERIAL } from '../guest-devices.ts';
import { parseVmmArgs, type VmmSpec, VmmArgsError } from './vmm-args.ts';

/** When this module began to run: node's start-up and the VMM's code loading are behind us. */
const loaded = performance.now();
const log = (line: string) => process.stderr.write(`vmm: ${line}\n`);

let spec: VmmSpec;
try {
  spec = parseVmmArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(
    `vmm: ${error instanceof VmmArgsError ? error.message : String(error)}\n` +
      'usage: vmm-main.ts --kernel F --initrd F --cmdline S --cpus N --memory MIB --disk F\n' +
      '                   [--system-image F] --vsock SOCKET [--passt BINARY]\n',
  );
  process.exit(2);
}

/** What must be closed on the way out, in order. */
const closers: (() => void | Promise<void>)[] = [];
let machine: Machine | null = null;
let exiting = false;

/** Destroys the machine, closes the devices (each failure logged, none stopping the rest), exits. */
async function exit(code: number, message?: string): Promise<never> {
  if (!exiting) {
    exiting = true;
    if (message) process.stderr.write(`${message}\n`);
    try {
      machine?.destroy();
    } catch (error) {
      log(`destroying the machine: ${(error as Error).message}`);
    }
    for (const close of closers) {
      try {
        await close();
      } catch (error) {
        log(`closing a device: ${(error as Error).message}`);
      }
    }
    // Serial output still queued for the pipe goes out before the exit.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    process.exit(code);
  }
  return new Promise<never>(() => {});
}

process.on('uncaughtException', (error) => void exit(1, `vmm: internal error: ${error.stack}`));
process.on('unhandledRejection', (error) =>
  exit(1, `vmm: internal error: ${(error as Error)?.stack ?? String(error)}`),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => void exit(0, `vmm: terminating on ${signal}`));
}

async function devices(spec: VmmSpec): Promise<VirtioDevice[]> {
  const list: VirtioDevice[] = [];
  const data = new VirtioBlkDevice({ path: spec.disk, serial: DATA_DISK_SERIAL });
  closers.push(() => data.close());
  list.push(data);
  if (spec.systemImage) {
    const system = new VirtioBlkDevice({
      path: spec.systemImage,
      readOnly: true,
      serial: SYSTEM_DISK_SERIAL,
    });
    closers.push(() => system.close());
    list.push(system);
  }
  const vsock = new VsockDevice({ guestCid: GUEST_CID, udsPath: spec.vsock, log });
  closers.push(() => vsock.close());
  await vsock.listen();
  list.push(vsock);
  list.push(new VirtioRngDevice({}));
  if (spec.passt) {
    const net = new VirtioNetDevice({ mac: GUEST_MAC, log });
    const link = new PasstLink({ device: net, binary: spec.passt, log });
    closers.push(() => link.close());
    link.start();
    list.push(net);
  } else {
    log('networking is off: no passt');
  }
  return list;
}

function exitCode(stop: MachineStop): number {
  // -no-reboot: a reset ends the run as a poweroff does; restarting is the supervisor's call.
  if (stop.reason === 'poweroff' || stop.reason === 'reset') return 0;
  return 1;
}

const devicesReady = performance.now();
try {
  const booted = bootLinux({
    kernel: spec.kernel,
    initrd: spec.initrd,
    cmdline: spec.cmdline,
    memoryMiB: spec.memoryMiB,
    vcpus: spec.cpus,
    devices: await devices(spec),
    serial: (bytes) => process.stdout.write(bytes),
    log,
    profileExits: true,
  });
  machine = booted.machine;
  // Where guest RAM sits in this process, so that the VMM's own memory can be told from it.
  log(
    `guest RAM windows: ${machine.ram.windows
      .map((w) => `0x${w.region.address.toString(16)}+${w.region.length}`)
      .join(' ')}`,
  );
  // performance.now() counts from the process's start: node's own start-up is in the first figure.
  log(
    `guest started ${Math.round(performance.now())} ms after the process: node and the VMM's ` +
      `code ${Math.round(loaded)} ms, devices ${Math.round(devicesReady - loaded)} ms, ` +
      `machine and boot loader ${Math.round(performance.now() - devicesReady)} ms`,
  );
} catch (error) {
  await exit(1, `vmm: the machine did not start: ${(error as Error).message}`);
}

process.stdin.on('data', (bytes: Buffer) => machine?.uart.receive(bytes));
process.stdin.on('error', () => {}); // the parent going away is handled by pdeathsig
const stop = await machine!.stopped;
// Where the vCPUs' exits went, for vmm.log and the nested harness: the VMM's speed is exits.
log(
  `exits handled in JS: ${machine!.exitCount} (${formatExitProfile(machine!.exitProfile!)}); ` +
    `finished in the vCPU threads: ${JSON.stringify(machine!.vm.fastIoCounts())}`,
);
if (stop.reason === 'destroyed') await exit(0);
const code = exitCode(stop);
await exit(
  code,
  code === 0 ? `vmm: ${stop.message}` : `vmm: ${new MachineError({ ...stop }).message}`,
);
