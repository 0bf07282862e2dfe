// The nested harness's pure parts: the result lines L1 prints and the host parses, the last
// line (the contract of issue 4, and its n/a form while our VMM does not exist), ldd parsing for
// the L1 initramfs, and the L1 and peer command lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { l1Args } from '../../nested/l1-machine.ts';
import { parseLdd } from '../../nested/l1-initramfs.ts';
import { peerArgs } from '../../nested/peer-qemu-kvm.ts';
import { finalLine, formatLine, median, parseLines } from '../../nested/results.ts';

const boot = (vmm: 'berth' | 'qemu-kvm', run: number, readyMs: number) => ({
  vmm,
  run,
  readyMs,
  firstOutputMs: 900,
  serialBytes: 40000,
  guestUptime: 9.5,
});

test('result lines survive the console: kernel noise and CRs around them are ignored', () => {
  const serial = [
    '[   12.3] kvm_amd: TSC scaling supported',
    `${formatLine({ kind: 'BOOT', value: boot('qemu-kvm', 1, 20064.4) })}\r`,
    'NESTED-BOOT {"vmm":"qemu-kvm","run":2,"rea[   13.0] torn by a kernel line',
    formatLine({
      kind: 'UNAVAILABLE',
      value: { vmm: 'berth', reason: 'our VMM is not built yet' },
    }),
    formatLine({ kind: 'DONE', value: { l1UptimeAtStart: 16.5, l1UptimeAtEnd: 99.9 } }),
  ].join('\n');
  const lines = parseLines(serial);
  assert.deepEqual(
    lines.map((l) => l.kind),
    ['BOOT', 'UNAVAILABLE', 'DONE'],
  );
  assert.deepEqual(lines[0]!.value, boot('qemu-kvm', 1, 20064.4));
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.throws(() => median([]));
});

test('the last line is the contract of issue 4 when both sides ran', () => {
  assert.equal(
    finalLine({ berth: { readyMs: [900, 1100, 1000] }, qemu: { readyMs: [2000, 2600, 2500] } }),
    'nested: berth READY in 1000 ms; qemu-kvm READY in 2500 ms; ratio 0.40',
  );
});

test('without our VMM the berth side says n/a, never a number', () => {
  assert.equal(
    finalLine({
      berth: { unavailable: 'our VMM is not built yet' },
      qemu: { readyMs: [20064, 25612, 25302] },
    }),
    'nested: berth READY in n/a (our VMM is not built yet); qemu-kvm READY in 25302 ms',
  );
});

test('ldd output gives every library path once, the loader included', () => {
  const ldd = [
    '\tlinux-vdso.so.1 (0x00007ffd)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f94)',
    '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f94)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007f94)',
    '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f94)',
  ].join('\n');
  assert.deepEqual(parseLdd(ldd), [
    '/lib/x86_64-linux-gnu/libdl.so.2',
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/ld-linux-x86-64.so.2',
  ]);
});

const l1 = {
  kernel: '/k/vmlinuz',
  initramfs: '/b/initramfs.cpio',
  runDir: '/b/run',
  serialLog: '/b/l1.log',
  runs: 3,
};

test('L1 is TCG with -cpu max (svm), shared memfd RAM for virtiofs, and the TSC rate when known', () => {
  const args = l1Args(l1, '/b/run/virtiofs.sock', 2_500_000).join(' ');
  assert.match(args, /-accel tcg,thread=multi -cpu max /);
  assert.match(args, /-M microvm,[^ ]*pcie=on,memory-backend=ram /);
  assert.match(args, /memory-backend-memfd,id=ram,size=3072M,share=on/);
  assert.match(args, /vhost-user-fs-pci,chardev=vfs,tag=berth/);
  assert.match(args, /tsc_early_khz=2500000 tsc=reliable nested\.runs=3/);
  assert.match(l1Args(l1, '/s', null).join(' '), /-M q35,memory-backend=ram /);
});

test('the peer is QEMU with KVM and -cpu host, the data disk first, the system image read-only', () => {
  const args = peerArgs({
    image: {
      kernel: '/i/vmlinuz',
      initrd: '/i/initrd.img',
      systemImage: '/i/system.img',
      cmdline: 'console=ttyS0',
    },
    dataDisk: '/w/data.img',
    serialLog: '/w/serial.log',
    run: 1,
    cpus: 2,
    memoryMiB: 1024,
  }).join(' ');
  assert.match(args, /-accel kvm -cpu host /);
  assert.ok(args.indexOf('file=/w/data.img') < args.indexOf('file=/i/system.img'));
  assert.match(
    args,
    /file=\/i\/system\.img,[^ ]*readonly=on -device virtio-blk-pci,drive=system,serial=berth-system/,
  );
});
