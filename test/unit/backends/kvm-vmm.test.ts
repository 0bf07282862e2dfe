// The kvm backend's VMM process without booting anything: its command line (every argument
// checked, exit 2 naming it), a kernel that is not one (exit 1 with the reason on stderr, seen
// through KvmVm's serial tail as the supervisor sees it), and the runners failing cleanly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KvmVm } from '../../../core/backends/kvm/kvm-backend.ts';
import { parseVmmArgs, vmmArgs, type VmmSpec } from '../../../core/backends/kvm/vmm-args.ts';
import { projectRoot } from '../../../core/paths.ts';
import { KvmVmRunner } from '../../../core/supervisor/kvm-runner.ts';
import { probedRunner } from '../../../core/supervisor/vm-launcher.ts';
import { VmStartError } from '../../../core/supervisor/vm-runner.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-kvm-vmm-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// An "image" whose kernel is not a bzImage.
writeFileSync(join(dir, 'vmlinuz'), Buffer.alloc(4096, 0x5a));
writeFileSync(join(dir, 'initrd.img'), 'not an initrd');
writeFileSync(join(dir, 'cmdline'), 'console=ttyS0\n');
writeFileSync(join(dir, 'data.img'), '');
truncateSync(join(dir, 'data.img'), 1 << 20);

const spec: VmmSpec = {
  kernel: join(dir, 'vmlinuz'),
  initrd: join(dir, 'initrd.img'),
  cmdline: 'console=ttyS0',
  cpus: 2,
  memoryMiB: 256,
  disk: join(dir, 'data.img'),
  vsock: join(dir, 'vsock.sock'),
};

function withArg(name: string, value: string | null): string[] {
  const args = vmmArgs(spec);
  const at = args.indexOf(`--${name}`);
  if (value === null) args.splice(at, 2);
  else args[at + 1] = value;
  return args;
}

test('the command line round-trips, and every bad argument is named', () => {
  assert.deepEqual(parseVmmArgs(vmmArgs(spec)), spec);
  const full = { ...spec, systemImage: spec.initrd, passt: '/bin/true' };
  assert.deepEqual(parseVmmArgs(vmmArgs(full)), full);
  const cases: [string, string | null, RegExp][] = [
    ['kernel', null, /^--kernel is required$/],
    ['kernel', join(dir, 'nope'), /^--kernel .*nope: no such file$/],
    ['kernel', dir, /^--kernel .*: not a file$/],
    ['initrd', null, /^--initrd is required$/],
    ['cmdline', '', /^--cmdline is required$/],
    ['cpus', '0', /^--cpus 0: an integer from 1 to 254$/],
    ['cpus', '1.5', /^--cpus 1.5: an integer/],
    ['memory', '8', /^--memory 8: an integer from 16 to/],
    ['memory', 'lots', /^--memory lots: an integer/],
    ['disk', null, /^--disk is required$/],
    ['vsock', join(dir, 'no-dir', 'v.sock'), /^--vsock .*: its directory does not exist$/],
  ];
  for (const [name, value, message] of cases) {
    // assert.throws matches a RegExp against String(error): "VmmArgsError: <message>".
    const named = new RegExp(`^VmmArgsError: ${message.source.slice(1)}`);
    assert.throws(() => parseVmmArgs(withArg(name, value)), named, `${name}=${value}`);
  }
  assert.throws(() => parseVmmArgs([...vmmArgs(spec), '--bogus']), /Unknown option '--bogus'/);
  assert.throws(
    () => parseVmmArgs([...vmmArgs(spec), '--passt', join(dir, 'cmdline')]),
    /^VmmArgsError: --passt .*cmdline: not an executable$/,
  );
});

function runVmm(args: string[]) {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', join(projectRoot, 'core/backends/kvm/vmm-main.ts'), ...args],
    { cwd: projectRoot, encoding: 'utf8', timeout: 30_000 },
  );
}

test('vmm-main exits 2 on a bad argument, naming it', { timeout: 40_000 }, () => {
  const result = runVmm(withArg('cpus', 'many'));
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /^vmm: --cpus many: an integer from 1 to 254\nusage: /);
  assert.equal(result.stdout, '');
});

test('vmm-main exits 1 with the reason when the kernel is not one', { timeout: 40_000 }, () => {
  const result = runVmm(vmmArgs(spec));
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /vmm: the machine did not start: .*(bzImage|kvm)/i);
});

test(
  'KvmVm runs the VMM as a SerialProcess: an early exit carries its stderr',
  { timeout: 40_000 },
  async () => {
    const vm = new KvmVm(spec, join(dir, 'serial.log'));
    await assert.rejects(vm.waitFor(/BERTH-READY/, 'BERTH-READY', 30_000), (error: Error) => {
      assert.match(error.message, /the VM stopped \(exit code 1\) before BERTH-READY/);
      assert.match(error.message, /\[VMM stderr\] .*the machine did not start/s);
      return true;
    });
  },
);

const launch = {
  imageDir: dir,
  dataDisk: spec.disk,
  runDir: join(dir, 'run'),
  serialLog: join(dir, 'serial.log'),
  cpus: 1,
  memoryMiB: 128,
};

test(
  'KvmVmRunner rejects a failed boot with a VmStartError carrying the VMM stderr',
  { timeout: 40_000 },
  async () => {
    const runner = new KvmVmRunner({ ...launch, reason: 'BERTH_BACKEND=kvm' });
    const steps: string[] = [];
    await assert.rejects(
      runner.start(new AbortController().signal, (step) => steps.push(step)),
      (error: VmStartError) => {
        assert.ok(error instanceof VmStartError);
        assert.match(error.message, /^the VM did not start: the VM stopped \(exit code 1\)/);
        assert.match(error.serialTail, /the machine did not start/);
        return true;
      },
    );
    assert.deepEqual(steps, ['starting the VMM', 'booting the guest']);
  },
);

test('the probed runner reports a bad BERTH_BACKEND as a start error', async () => {
  const settings = { cpus: 1, memoryMiB: 128, diskGiB: 1, storageDriver: 'overlay2' } as never;
  const context = { ...launch, key: { publicKey: 'ssh-ed25519 AAAA test' } as never };
  const runner = probedRunner(settings, context, () => {
    throw new Error('BERTH_BACKEND must be kvm or qemu (got "xen")');
  });
  await assert.rejects(
    runner.start(new AbortController().signal, () => {}),
    (error: Error) => {
      assert.ok(error instanceof VmStartError);
      assert.match(error.message, /BERTH_BACKEND must be kvm or qemu/);
      return true;
    },
  );
});
