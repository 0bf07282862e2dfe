// Backend acceleration: KVM only where the CPU really virtualizes; PVM and missing /dev/kvm get TCG
// with the "slow" notice the user sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseAccel } from '../../../core/backends/accel-probe.ts';

const cpu = (flags: string) => `processor\t: 0\nflags\t\t: fpu vme ${flags} sse2\n`;

test('vmx or svm with an accessible /dev/kvm chooses KVM', () => {
  assert.equal(
    chooseAccel({ cpuinfo: cpu('vmx'), kvmAccessible: true, kvmModules: 'kvm_intel 1 0\n' }).accel,
    'kvm',
  );
  assert.equal(
    chooseAccel({ cpuinfo: cpu('svm'), kvmAccessible: true, kvmModules: '' }).accel,
    'kvm',
  );
});

test('PVM, a CPU without virtualization, or no /dev/kvm falls back to TCG and says why', () => {
  const pvm = chooseAccel({
    cpuinfo: cpu('svm'),
    kvmAccessible: true,
    kvmModules: 'kvm_pvm 12 0 - Live\n',
  });
  assert.equal(pvm.accel, 'tcg');
  assert.match(pvm.reason, /^slow: no hardware virtualization .*PVM/);
  const plain = chooseAccel({ cpuinfo: cpu(''), kvmAccessible: true, kvmModules: '' });
  assert.match(plain.reason, /no vmx or svm/);
  const none = chooseAccel({ cpuinfo: cpu('vmx'), kvmAccessible: false, kvmModules: '' });
  assert.equal(none.accel, 'tcg');
  assert.match(none.reason, /\/dev\/kvm/);
});
