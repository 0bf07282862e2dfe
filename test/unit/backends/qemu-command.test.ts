// The QEMU command line: the machine and kernel arguments that keep TCG boots from hanging, and
// the host's TSC rate read only from sources that really are the TSC rate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tscKhzFromCpuinfo, tscKhzFromKernelLog } from '../../../core/backends/qemu/host-tsc.ts';
import { qemuArgs, type QemuVmConfig } from '../../../core/backends/qemu/qemu-command.ts';

const base: QemuVmConfig = {
  image: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'console=ttyS0 panic=-1' },
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  disk: { kind: 'qemu', path: '/data/disk,1.img' },
  serial: { kind: 'stdio' },
};

const option = (args: string[], name: string) => args[args.indexOf(name) + 1];

test('TCG with a known TSC rate boots microvm with tsc_early_khz', () => {
  const args = qemuArgs({ ...base, hostTscKhz: 2596122 });
  assert.match(option(args, '-M')!, /^microvm,.*pcie=on/);
  assert.equal(
    option(args, '-append'),
    'console=ttyS0 panic=-1 tsc_early_khz=2596122 tsc=reliable',
  );
  assert.equal(option(args, '-accel'), 'tcg,thread=multi');
});

test('TCG without a TSC rate falls back to q35, KVM uses microvm with the host CPU', () => {
  const q35 = qemuArgs({ ...base, hostTscKhz: null });
  assert.equal(option(q35, '-M'), 'q35');
  assert.equal(option(q35, '-append'), 'console=ttyS0 panic=-1');
  const kvm = qemuArgs({ ...base, accel: 'kvm' });
  assert.match(option(kvm, '-M')!, /^microvm/);
  assert.equal(option(kvm, '-cpu'), 'host');
});

test('vhost-user devices share guest RAM through a memfd and connect to their sockets', () => {
  const args = qemuArgs({
    ...base,
    hostTscKhz: 2596122,
    disk: { kind: 'vhost-user', socket: '/run/blk.sock' },
    vsock: { socket: '/run/vsock.sock' },
    rng: { socket: '/run/rng.sock' },
  });
  assert.match(option(args, '-M')!, /,memory-backend=ram$/);
  assert.equal(option(args, '-object'), 'memory-backend-memfd,id=ram,size=1024M,share=on');
  const devices = args.filter((_, i) => args[i - 1] === '-device');
  assert.deepEqual(devices, [
    'vhost-user-blk-pci,chardev=data,num-queues=1',
    'vhost-user-vsock-pci,chardev=vsock',
    'vhost-user-rng-pci,chardev=rng',
  ]);
  assert.ok(args.includes('socket,id=vsock,path=/run/vsock.sock'));
  assert.ok(!args.includes('-drive'));
});

test('paths with commas are escaped and bad sizes are refused', () => {
  const args = qemuArgs(base);
  assert.match(option(args, '-drive')!, /^file=\/data\/disk,,1\.img,/);
  assert.throws(() => qemuArgs({ ...base, cpus: 0 }), /cpus/);
  assert.throws(() => qemuArgs({ ...base, memoryMiB: 64 }), /memory/);
});

test('the TSC rate comes from cpuinfo only without APERF/MPERF, else from the kernel log', () => {
  const cpuinfo = (flags: string) => `cpu MHz\t\t: 2596.122\nflags\t\t: fpu tsc ${flags}\n`;
  assert.equal(tscKhzFromCpuinfo(cpuinfo('constant_tsc nonstop_tsc')), 2596122);
  assert.equal(
    tscKhzFromCpuinfo(cpuinfo('constant_tsc aperfmperf')),
    null,
    'cpu MHz is the current clock',
  );
  assert.equal(tscKhzFromCpuinfo(cpuinfo('')), null, 'a TSC that changes rate has no one figure');
  assert.equal(
    tscKhzFromKernelLog(
      'tsc: Detected 2900.000 MHz processor\ntsc: Refined TSC clocksource calibration: 2903.998 MHz\n',
    ),
    2903998,
  );
  assert.equal(tscKhzFromKernelLog('tsc: Detected 3000.001 MHz processor\n'), 3000001);
  assert.equal(tscKhzFromKernelLog('nothing here'), null);
});
