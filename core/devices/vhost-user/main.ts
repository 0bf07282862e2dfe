// A vhost-user device server process: one device (blk, rng or vsock) behind one Unix socket.
// The qemu backend starts one per device, so a slow disk never stalls vsock, and a device that
// fails takes down only its own process. Prints "vhost-user: <device> ready on <socket>" once
// QEMU can connect; SIGTERM closes it cleanly.
import { parseArgs } from 'node:util';
import { VirtioBlkDevice } from '../blk/index.ts';
import { VirtioRngDevice } from '../rng/index.ts';
import type { VirtioDevice } from '../virtio-device.ts';
import { VsockDevice } from '../vsock/index.ts';
import { VhostUserServer } from './server.ts';

/** QEMU's vhost-user-vsock keeps the event queue itself; the back-end serves rx and tx. */
const VSOCK_VHOST_QUEUES = 2;

function fail(message: string): never {
  console.error(`vhost-user: ${message}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    device: { type: 'string' },
    socket: { type: 'string' },
    disk: { type: 'string' },
    'read-only': { type: 'boolean', default: false },
    serial: { type: 'string' },
    'guest-cid': { type: 'string' },
    uds: { type: 'string' },
  },
});

if (!values.socket) fail('--socket PATH is required');
const log = (line: string) => console.error(line);
let device: VirtioDevice & { close?: () => void | Promise<void>; stats?: () => object };
let vhostQueues: number | undefined;
switch (values.device) {
  case 'blk':
    if (!values.disk) fail('--disk PATH is required for blk');
    device = new VirtioBlkDevice({
      path: values.disk,
      readOnly: values['read-only'],
      ...(values.serial ? { serial: values.serial } : {}),
    });
    break;
  case 'rng':
    device = new VirtioRngDevice({});
    break;
  case 'vsock': {
    const cid = Number(values['guest-cid']);
    if (!Number.isInteger(cid) || cid < 3) fail('--guest-cid must be an integer of at least 3');
    if (!values.uds) fail('--uds PATH is required for vsock');
    const vsock = new VsockDevice({ guestCid: cid, udsPath: values.uds, log });
    await vsock.listen();
    device = vsock;
    vhostQueues = VSOCK_VHOST_QUEUES;
    break;
  }
  default:
    fail(`--device must be blk, rng or vsock (got ${JSON.stringify(values.device)})`);
}

const server = new VhostUserServer({
  socketPath: values.socket,
  device,
  ...(vhostQueues ? { vhostQueues } : {}),
  log,
});
console.log(`vhost-user: ${device.name} ready on ${values.socket}`);

const shutdown = () => {
  server.close();
  void Promise.resolve(device.close?.()).finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
// SIGUSR2: one line of the device's counters on stdout (tests check that no state is left).
process.on('SIGUSR2', () => {
  const stats = { ...(device.stats?.() ?? {}), vhost: server.session?.debugState() ?? null };
  console.log(`vhost-user: stats ${JSON.stringify(stats)}`);
});
// SIGINT (a terminal's Ctrl-C) is for the owner to handle: the guest may still be syncing.
process.on('SIGINT', () => {});
