// The QEMU command line for the guest's network card: our virtio-net over vhost-user (shared
// memory, the MTU, INTx), or QEMU's own virtio-net with `-netdev user` (the benchmark's peer).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qemuArgs, type QemuVmConfig } from '../../../core/backends/qemu/qemu-command.ts';

const base: QemuVmConfig = {
  image: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'console=ttyS0' },
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  disk: { kind: 'qemu', path: '/data/disk.img' },
  serial: { kind: 'stdio' },
};

const options = (args: string[], name: string) =>
  args.flatMap((arg, i) => (arg === name ? [args[i + 1]!] : []));

test('our virtio-net: a vhost-user netdev on the socket, shared RAM, MTU 65520, no MSI-X', () => {
  const args = qemuArgs({
    ...base,
    net: { kind: 'vhost-user', socket: '/run/a,b/net.sock', mac: '52:54:00:00:00:01' },
  });
  assert.ok(options(args, '-object').some((o) => o.startsWith('memory-backend-memfd,')));
  assert.ok(options(args, '-chardev').includes('socket,id=net0,path=/run/a,,b/net.sock'));
  assert.deepEqual(options(args, '-netdev'), ['vhost-user,id=net0,chardev=net0']);
  const device = options(args, '-device').find((d) => d.startsWith('virtio-net-pci,'));
  assert.match(device!, /netdev=net0,mac=52:54:00:00:00:01,host_mtu=65520,.*vectors=0/);
});

test("QEMU's user networking: -netdev user and no shared memory needed", () => {
  const args = qemuArgs({ ...base, net: { kind: 'qemu-user', mac: '52:54:00:00:00:02' } });
  assert.deepEqual(options(args, '-netdev'), ['user,id=net0']);
  assert.ok(options(args, '-device').includes('virtio-net-pci,netdev=net0,mac=52:54:00:00:00:02'));
  assert.deepEqual(options(args, '-object'), []);
});
