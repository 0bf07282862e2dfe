// Ordering kernel modules from modules.dep: dependencies first, each once; unknown and built-in
// modules named by their spec field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  moduleName,
  orderModules,
  parseModulesBuiltin,
  parseModulesDep,
} from '../../../core/image/kernel-modules.ts';
import { ImageSpecError } from '../../../core/image/spec.ts';

const dep = parseModulesDep(
  [
    'kernel/drivers/block/virtio_blk.ko.xz:',
    'kernel/net/vmw_vsock/vsock.ko.xz:',
    'kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz: kernel/net/vmw_vsock/vsock.ko.xz',
    'kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz kernel/net/vmw_vsock/vsock.ko.xz',
    'kernel/drivers/char/hw_random/virtio-rng.ko.xz:',
  ].join('\n'),
);
const builtin = parseModulesBuiltin(
  'kernel/fs/ext4/ext4.ko\nkernel/drivers/virtio/virtio_pci.ko\n',
);

test('module names treat - and _ alike and drop the compressed suffix', () => {
  assert.equal(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko.xz'), 'virtio_rng');
  assert.equal(moduleName('ext4.ko'), 'ext4');
});

test('dependencies load first and each module appears once', () => {
  const order = orderModules(
    ['vmw_vsock_virtio_transport', 'vsock', 'virtio_rng', 'virtio_blk'],
    dep,
    builtin,
    'r',
  );
  assert.deepEqual(order, [
    'kernel/net/vmw_vsock/vsock.ko.xz',
    'kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz',
    'kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz',
    'kernel/drivers/char/hw_random/virtio-rng.ko.xz',
    'kernel/drivers/block/virtio_blk.ko.xz',
  ]);
});

test('an unknown module, or one built into the kernel, names its field', () => {
  assert.throws(
    () => orderModules(['virtio_blk', 'no_such_module'], dep, builtin, '6.12-test'),
    (e: unknown) =>
      e instanceof ImageSpecError &&
      e.field === 'modules[1]' &&
      /no kernel module "no_such_module" in the 6\.12-test kernel/.test(e.message),
  );
  assert.throws(
    () => orderModules(['ext4'], dep, builtin, 'r'),
    (e: unknown) =>
      e instanceof ImageSpecError && e.field === 'modules[0]' && /built into/.test(e.message),
  );
});
