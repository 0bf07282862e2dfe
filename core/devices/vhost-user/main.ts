// A vhost-user device server process: one device (blk, rng, vsock or net) behind one Unix socket.
// The qemu backend starts one per device, so a slow disk never stalls vsock, and a device that
// fails takes down only its own process. Prints "vhost-user: <device> ready on <socket>" once
// QEMU can connect; SIGTERM closes it cleanly.
import { parseArgs } from 'node:util';
import { VirtioBlkDevice } from '../blk/index.ts';
import { PasstLink, VirtioNetDevice } from '../net/index.ts';
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
    mac: { type: 'string' },
    mtu: { type: 'string' },
    'no-checksum-offload': { type: 'boolean', default: false },
    passt: { type: 'string' },
  },
});

if (!values.socket) fail('--socket PATH is required');
const log = (line: string) => console.error(line);
let device: VirtioDevice & { close?: () => void | Promise<void>; stats?: () => object };
let vhostQueues: number | undefined;
/** QEMU's virtio-net keeps its config space (mac, status, mtu) and warns about CONFIG. */
let configSpace = true;
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
  case 'net': {
    // The guest's network: our virtio-net, with passt (started here, ended with us) as the stack.
    if (!values.mac) fail('--mac XX:XX:XX:XX:XX:XX is required for net');
    let net: VirtioNetDevice;
    let link: PasstLink;
    try {
      net = new VirtioNetDevice({
        mac: values.mac,
        ...(values.mtu ? { mtu: Number(values.mtu) } : {}),
        checksumOffload: !values['no-checksum-offload'],
        log,
      });
      link = new PasstLink({
        device: net,
        ...(values.passt ? { binary: values.passt } : {}),
        log,
      });
    } catch (error) {
      fail((error as Error).message);
    }
    link.start();
    configSpace = false;
    const deviceStats = net.stats.bind(net);
    device = Object.assign(net, {
      close: () => link.close(),
      stats: () => ({
        ...deviceStats(),
        passt: { pid: link.pid ?? null, starts: link.starts, lastExit: link.lastExit },
      }),
    });
    break;
  }
  default:
    fail(`--device must be blk, rng, vsock or net (got ${JSON.stringify(values.device)})`);
}

const server = new VhostUserServer({
  socketPath: values.socket,
  device,
  ...(vhostQueues ? { vhostQueues } : {}),
  configSpace,
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
