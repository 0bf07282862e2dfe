// The guest's network through our virtio-net and passt: a real guest under QEMU (TCG here) with
// the net device server (vhost-user) and passt behind it. The guest gets its address by DHCP
// (from passt), resolves a name through the host's resolver, and reaches host services on
// 127.0.0.1 over TCP and UDP through the gateway address (passt maps it to the host's loopback).
// Commands go through the serial shell; every wait has a deadline and failures print its tail.
//
// BERTH_NET_TEST_IMAGE=DIR boots another image than build/image (while developing).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DeviceServer } from '../../core/backends/qemu/device-servers.ts';
import type { QemuVm } from '../../core/backends/qemu/qemu-vm.ts';
import { findPasst } from '../../core/devices/net/passt.ts';
import { bootImage, powerOff, shell } from '../support/guest-vm.ts';

const MAC = '52:54:00:b3:47:03';
const DHCP_DEADLINE_MS = 60_000;
/** A name the host resolves through DNS (not /etc/hosts), compared with the guest's answer. */
const NAME = 'deb.debian.org';

const passt = findPasst();
const skip = passt ? false : 'passt is not installed (apt-get install passt)';
const work = mkdtempSync(join(tmpdir(), 'berth-net-'));
let server: DeviceServer | undefined;
let vm: QemuVm | undefined;
let lease = '';
let gateway = '';

before(async () => {
  if (skip) return;
  const disk = join(work, 'disk.img');
  // Neither ext4 nor blank: init leaves it alone and /var is a tmpfs.
  const fd = openSync(disk, 'w', 0o600);
  writeSync(fd, randomBytes(128 * 1024));
  closeSync(fd);
  const socket = join(work, 'net.sock');
  server = await DeviceServer.start({ device: 'net', socket, mac: MAC });
  const booted = await bootImage({
    disk: { kind: 'qemu', path: disk },
    net: { kind: 'vhost-user', socket, mac: MAC },
    serialLog: join(work, 'serial.log'),
    ...(process.env.BERTH_NET_TEST_IMAGE ? { imageDir: process.env.BERTH_NET_TEST_IMAGE } : {}),
  });
  vm = booted.vm;
  const links = await shell(vm, 'ls /sys/class/net', 'listing the network interfaces');
  if (!/\beth0\b/.test(links)) {
    throw new Error(
      `the guest has no eth0 (${links.trim()}): is virtio_net in the image's modules ` +
        '(assets/image/berth.yaml)? Rebuild the image with `npm run image`.',
    );
  }
  // init does not wait for DHCP: the lease comes after BERTH-READY, announced by the script.
  lease = (
    await vm.waitFor(/berth-net: (eth0 .*)\r?\n/, 'a DHCP lease on eth0', DHCP_DEADLINE_MS)
  )[1]!;
  gateway = /via (\d+\.\d+\.\d+\.\d+)/.exec(lease)?.[1] ?? '';
});

after(async () => {
  try {
    if (vm) await powerOff(vm);
  } finally {
    vm?.kill();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('the guest gets an address, a default route, the MTU and DNS by DHCP', { skip }, async () => {
  assert.match(lease, /^eth0 \d+\.\d+\.\d+\.\d+\/\d+ via \d+\.\d+\.\d+\.\d+, mtu 65520, dns \S+/);
  assert.notEqual(gateway, '');
  const out = await shell(
    vm!,
    'ip -4 addr show dev eth0; ip route show default; cat /sys/class/net/eth0/mtu; cat /etc/resolv.conf',
    'reading the network configuration',
  );
  assert.match(out, /inet \d+\.\d+\.\d+\.\d+\/\d+/);
  assert.match(out, new RegExp(`default via ${gateway.replaceAll('.', '\\.')} dev eth0`));
  assert.match(out, /^65520\r?$/m);
  assert.match(out, /^nameserver \S+/m);
});

test('a name resolves through the host resolver', { skip }, async (t) => {
  let hostAddresses: string[];
  try {
    hostAddresses = await dns.resolve4(NAME);
  } catch (error) {
    t.skip(`the host itself cannot resolve ${NAME}: ${(error as Error).message}`);
    return;
  }
  const out = await shell(vm!, `nslookup -type=a ${NAME}`, `nslookup ${NAME} in the guest`);
  const guestAddresses = [...out.matchAll(/^Address: (\d+\.\d+\.\d+\.\d+)\r?$/gm)].map(
    (m) => m[1]!,
  );
  assert.ok(
    guestAddresses.some((a) => hostAddresses.includes(a)),
    `guest ${JSON.stringify(guestAddresses)} vs host ${JSON.stringify(hostAddresses)}\n${out}`,
  );
});

test('TCP to a host service on 127.0.0.1, through the gateway address', { skip }, async () => {
  const greeting = `hello-from-host-${randomBytes(4).toString('hex')}`;
  let received = '';
  // The host closes first, once it has the guest's line: passt 0.0~git20230309 sometimes loses
  // the host's FIN when the guest's came first (the guest then waits in FIN_WAIT2).
  const host = createServer((socket: Socket) => {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      received += text;
      if (received.endsWith('\n')) socket.end();
    });
    socket.write(`${greeting}\n`);
  });
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  try {
    const port = (host.address() as AddressInfo).port;
    const out = await shell(
      vm!,
      `(echo hello-from-guest; sleep 1) | nc ${gateway} ${port}`,
      'nc from the guest to the host',
    );
    assert.match(out, new RegExp(greeting));
    assert.equal(received, 'hello-from-guest\n');
  } finally {
    host.close();
  }
});

test('UDP to a host service on 127.0.0.1 (a one-block TFTP read)', { skip }, async () => {
  const content = `udp-ok-${randomBytes(4).toString('hex')}\n`;
  const host = createSocket('udp4');
  const requests: string[] = [];
  host.on('message', (message, from) => {
    // RRQ (opcode 1): answer with DATA block 1; shorter than 512 bytes, so it is the last.
    if (message.readUInt16BE(0) !== 1) return;
    requests.push(message.subarray(2, message.indexOf(0, 2)).toString());
    const data = Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.from(content)]);
    host.send(data, from.port, from.address);
  });
  await new Promise<void>((resolve) => host.bind(0, '127.0.0.1', resolve));
  try {
    const port = host.address().port;
    const out = await shell(
      vm!,
      `tftp -g -r berth-file -l /tmp/udp-file ${gateway} ${port} && cat /tmp/udp-file`,
      'tftp from the guest to the host',
    );
    assert.deepEqual(requests, ['berth-file']);
    assert.match(out, new RegExp(content.trim()));
  } finally {
    host.close();
  }
});
