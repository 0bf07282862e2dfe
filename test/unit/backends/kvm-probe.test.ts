// The backend choice: the KVM speed probe on this machine's /dev/kvm (PVM here: the qemu backend,
// with the measured figure in the reason), the decision on synthetic speeds, and BERTH_BACKEND.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  backendOverride,
  chooseBackend,
  decideBackend,
  HARDWARE_SPEED_NS,
  measureKvmSpeed,
  measureKvmSpeedInChild,
  probeProgram,
} from '../../../core/backends/kvm-probe.ts';
import { kvmUnavailable } from '../../support/kvm-machine.ts';

const skip = kvmUnavailable() ?? false;
/** Without vmx or svm, /dev/kvm cannot be hardware virtualization (here it is PVM). */
const emulated = !/^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

test('the probe guest is mov ecx, N; dec ecx; jnz; ACPI S5 out; jmp $', () => {
  const code = probeProgram(0x01020304);
  assert.deepEqual([...code.subarray(0, 9)], [0xb9, 4, 3, 2, 1, 0xff, 0xc9, 0x75, 0xfc]);
  assert.deepEqual([...code.subarray(9)], [0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee, 0xeb, 0xfe]);
  assert.throws(() => probeProgram(0), /iterations: 0/);
});

test('hardware speed chooses kvm; an emulated KVM chooses qemu and names its speed', () => {
  assert.deepEqual(decideBackend({ nsPerInstruction: 0.42 }), {
    backend: 'kvm',
    reason: 'KVM runs guests at hardware speed (0.4 ns per instruction)',
  });
  assert.equal(decideBackend({ nsPerInstruction: HARDWARE_SPEED_NS }).backend, 'kvm');
  const slow = decideBackend({ nsPerInstruction: 412.3 });
  assert.equal(slow.backend, 'qemu');
  assert.equal(
    slow.reason,
    'KVM here runs guests at 412 ns per instruction (emulated, e.g. PVM), not hardware speed (at most 100 ns)',
  );
  assert.equal(decideBackend({ nsPerInstruction: 100.5 }).backend, 'qemu');
  assert.deepEqual(decideBackend({ unusable: '/dev/kvm missing or not accessible' }), {
    backend: 'qemu',
    reason: '/dev/kvm missing or not accessible',
  });
});

test('BERTH_BACKEND forces a backend, and anything but kvm or qemu is refused', async () => {
  assert.equal(backendOverride({}), null);
  assert.equal(backendOverride({ BERTH_BACKEND: '' }), null);
  assert.equal(backendOverride({ BERTH_BACKEND: 'kvm' }), 'kvm');
  assert.equal(backendOverride({ BERTH_BACKEND: ' qemu ' }), 'qemu');
  for (const bad of ['KVM', 'tcg', 'qemu,kvm']) {
    assert.throws(
      () => backendOverride({ BERTH_BACKEND: bad }),
      new RegExp(`^Error: BERTH_BACKEND must be kvm or qemu \\(got "${bad}"\\)$`),
    );
  }
  const never = () => Promise.reject(new Error('the probe must not run'));
  assert.deepEqual(await chooseBackend({ BERTH_BACKEND: 'kvm' }, never), {
    backend: 'kvm',
    reason: 'BERTH_BACKEND=kvm',
  });
  assert.throws(() => chooseBackend({ BERTH_BACKEND: 'xen' }, never), /BERTH_BACKEND/);
});

test('a missing /dev/kvm is reported as the reason', async () => {
  const speed = await measureKvmSpeed({ kvmPath: '/nonexistent/kvm' });
  assert.deepEqual(speed, { unusable: '/nonexistent/kvm missing or not accessible' });
  assert.equal(decideBackend(speed).backend, 'qemu');
});

test(
  'the probe on this machine measures ns per instruction (no vmx/svm: the qemu backend)',
  { skip, timeout: 10_000 },
  async () => {
    const speed = await measureKvmSpeed();
    assert.ok('nsPerInstruction' in speed, JSON.stringify(speed));
    assert.ok(speed.nsPerInstruction > 0 && Number.isFinite(speed.nsPerInstruction));
    const choice = decideBackend(speed);
    console.log(
      `probe: ${speed.nsPerInstruction.toFixed(2)} ns per instruction: ${choice.backend}: ${choice.reason}`,
    );
    if (emulated) {
      assert.equal(choice.backend, 'qemu');
      assert.match(choice.reason, /^KVM here runs guests at \d+ ns per instruction \(emulated/);
    }
  },
);

test(
  'the probe runs in a child process and reports the same kind of figure',
  { skip, timeout: 40_000 },
  async () => {
    const speed = await measureKvmSpeedInChild();
    assert.ok('nsPerInstruction' in speed, JSON.stringify(speed));
    if (emulated) assert.equal(decideBackend(speed).backend, 'qemu');
  },
);
