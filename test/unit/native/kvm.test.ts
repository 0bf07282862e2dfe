// The KVM layer of the addon on the host's /dev/kvm: capabilities, exits handed to JavaScript
// and completed (I/O, MMIO, HLT), ioeventfd, pausing, errors, and a destroy() that
// leaves no fd, thread or mapping. Guest programs are hand-assembled real-mode code (a few dozen
// instructions: /dev/kvm here may be an emulator at ~375 ns per instruction).
import assert from 'node:assert/strict';

import { test } from 'node:test';
import {
  close,
  createKvmVm,
  eventfd,
  eventfdRead,
  isSystemCallError,
  KVM_CAP,
  kvmCheckExtension,
  kvmGetApiVersion,
  kvmGetSupportedCpuid,
  kvmGetVcpuMmapSize,
  kvmOpen,
  type KvmExit,
} from '../../../core/native.ts';
import {
  kvmUnavailable,
  processResources,
  realModeMachine,
  withDeadline,
} from '../../support/kvm-machine.ts';

const skip = kvmUnavailable() ?? false;
const DEADLINE = 20_000;
const options = { skip, timeout: DEADLINE + 5_000 };

const describe = (exits: KvmExit[]) => () => `exits so far: ${JSON.stringify(exits, replacer)}`;
function replacer(_key: string, value: unknown) {
  if (typeof value === 'bigint') return `${value}n`;
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') {
    return `<${(value as { data: number[] }).data.join(',')}>`;
  }
  return value;
}

/** Port I/O exits as [direction, port, bytes]. */
function ioOf(exits: KvmExit[]): [string, number, number[]][] {
  return exits.flatMap((e) =>
    e.reason === 'io'
      ? [[e.direction, e.port, [...(e.data ?? [])]] as [string, number, number[]]]
      : [],
  );
}

test('/dev/kvm: API version 12, the capabilities Berth needs, supported CPUID', options, () => {
  const kvm = kvmOpen();
  try {
    assert.equal(kvmGetApiVersion(kvm), 12);
    for (const cap of [
      'IRQCHIP',
      'USER_MEMORY',
      'SET_TSS_ADDR',
      'EXT_CPUID',
      'PIT2',
      'IOEVENTFD',
      'IRQFD',
      'IRQ_ROUTING',
      'SIGNAL_MSI',
      'IMMEDIATE_EXIT',
      'SET_IDENTITY_MAP_ADDR',
    ] as const) {
      assert.ok(kvmCheckExtension(kvm, KVM_CAP[cap]) > 0, `KVM_CAP_${cap}`);
    }
    assert.ok(kvmGetVcpuMmapSize(kvm) >= 4096);
    const cpuid = kvmGetSupportedCpuid(kvm);
    const leaf0 = cpuid.find((e) => e.function === 0);
    assert.ok(leaf0 && leaf0.eax >= 1, 'leaf 0 reports the highest basic leaf');
  } finally {
    close(kvm);
  }
});

test('a failed ioctl is an Error with the errno name and the ioctl', options, () => {
  const kvm = kvmOpen();
  try {
    assert.throws(
      () => kvmGetApiVersion(0x7fff0000),
      (e) => isSystemCallError(e, 'EBADF') && e.syscall === 'KVM_GET_API_VERSION',
    );
    const vm = createKvmVm(kvm);
    try {
      assert.throws(
        () => vm.irqLine(0, true),
        (e) => isSystemCallError(e) && e.syscall === 'KVM_IRQ_LINE',
      );
      assert.throws(
        () => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, region: {} as never }),
        (e) => e instanceof TypeError,
      );
    } finally {
      vm.destroy();
    }
    assert.throws(
      () => vm.createIrqchip(),
      (e) => isSystemCallError(e, 'ERR_VM_DESTROYED'),
    );
  } finally {
    close(kvm);
  }
});

test('port writes arrive as I/O exits in order, then HLT', options, async () => {
  // mov dx, 0x3f8; mov al, 'H'; out dx, al; mov al, 'i'; out dx, al; mov al, '!'; out dx, al; hlt
  const m = realModeMachine([
    0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0xb0, 0x69, 0xee, 0xb0, 0x21, 0xee, 0xf4,
  ]);
  try {
    m.vcpu.run();
    const last = await withDeadline(m.finished, DEADLINE, describe(m.exits));
    assert.equal(last.reason, 'hlt');
    assert.deepEqual(ioOf(m.exits), [
      ['out', 0x3f8, [0x48]],
      ['out', 0x3f8, [0x69]],
      ['out', 0x3f8, [0x21]],
    ]);
    const io = m.exits[0];
    assert.ok(io?.reason === 'io' && io.size === 1 && io.count === 1);
  } finally {
    m.destroy();
  }
});

test(
  'MMIO reads and port reads are answered by JavaScript; MMIO writes carry their data',
  options,
  async () => {
    const program = [
      ...[0xb8, 0x00, 0x10], // mov ax, 0x1000
      ...[0x8e, 0xd8], // mov ds, ax          (ds:0 = guest address 0x10000, unmapped: MMIO)
      ...[0xa1, 0x00, 0x00], // mov ax, [0]    (16-bit MMIO read)
      ...[0xba, 0x00, 0x05], // mov dx, 0x500
      0xef, // out dx, ax                      (the value read, back out)
      ...[0xc7, 0x06, 0x02, 0x00, 0xef, 0xbe], // mov word [2], 0xbeef (MMIO write)
      ...[0xba, 0x01, 0x05], // mov dx, 0x501
      0xec, // in al, dx
      0xee, // out dx, al
      0xf4, // hlt
    ];
    const m = realModeMachine(program, {
      answer: (exit) =>
        exit.reason === 'mmio'
          ? Uint8Array.of(0x34, 0x12)
          : exit.reason === 'io'
            ? Uint8Array.of(0x7a)
            : undefined,
    });
    try {
      m.vcpu.run();
      const last = await withDeadline(m.finished, DEADLINE, describe(m.exits));
      assert.equal(last.reason, 'hlt');
      const mmio = m.exits.filter((e) => e.reason === 'mmio');
      assert.deepEqual(
        mmio.map((e) => [e.direction, e.address, e.size, [...(e.data ?? [])]]),
        [
          ['read', 0x10000, 2, []],
          ['write', 0x10002, 2, [0xef, 0xbe]],
        ],
      );
      assert.deepEqual(ioOf(m.exits), [
        ['out', 0x500, [0x34, 0x12]],
        ['in', 0x501, []],
        ['out', 0x501, [0x7a]],
      ]);
    } finally {
      m.destroy();
    }
  },
);

test('an ioeventfd on a port completes the write without a JavaScript exit', options, async () => {
  const program = [
    ...[0xba, 0x00, 0x06], // mov dx, 0x600
    ...[0xb0, 0x01, 0xee, 0xb0, 0x02, 0xee, 0xb0, 0x03, 0xee], // three writes to 0x600
    ...[0xba, 0xf8, 0x03, 0xb0, 0x44, 0xee], // mov dx, 0x3f8; mov al, 'D'; out dx, al
    0xf4,
  ];
  const m = realModeMachine(program);
  const kick = eventfd(0);
  try {
    m.vm.ioeventfd({ fd: kick, address: 0x600, length: 1, space: 'pio' });
    m.vcpu.run();
    const last = await withDeadline(m.finished, DEADLINE, describe(m.exits));
    assert.equal(last.reason, 'hlt');
    assert.deepEqual(ioOf(m.exits), [['out', 0x3f8, [0x44]]]);
    assert.equal(eventfdRead(kick), 3);
  } finally {
    m.destroy();
    close(kick);
  }
});

test(
  'pause() stops a spinning vCPU; its registers can be changed; resume() goes on',
  options,
  async () => {
    const m = realModeMachine([0xeb, 0xfe, 0xf4]); // jmp $; hlt
    try {
      m.vcpu.run();
      assert.throws(
        () => m.vcpu.getRegs(),
        (e) => isSystemCallError(e, 'ERR_VCPU_RUNNING'),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      m.vcpu.pause();
      assert.equal(m.vcpu.state, 'paused');
      const regs = m.vcpu.getRegs();
      assert.equal(regs.rip, 0x1000n);
      m.vcpu.setRegs({ rip: 0x1002n });
      m.vcpu.resume();
      const last = await withDeadline(m.finished, DEADLINE, describe(m.exits));
      assert.equal(last.reason, 'hlt');
      assert.equal(m.vcpu.getRegs().rip, 0x1003n);
    } finally {
      m.destroy();
    }
  },
);

test('guest memory in a slot cannot be unmapped until the VM lets it go', options, () => {
  const m = realModeMachine([0xf4]);
  try {
    assert.throws(
      () => m.memory.unmap(),
      (e) => isSystemCallError(e, 'ERR_REGION_IN_USE'),
    );
    m.vm.removeUserMemoryRegion(0);
    m.memory.unmap();
    assert.equal(m.memory.mapped, false);
  } finally {
    m.destroy();
  }
});

const counts = () => processResources('kvm');

test('destroy() leaves no fd, thread or mapping behind', options, async () => {
  const kvm = kvmOpen();
  // Warm up once, so lazily created resources of Node itself are not counted as ours.
  createKvmVm(kvm).destroy();
  const before = counts();
  const vm = createKvmVm(kvm);
  const kick = eventfd(0);
  const irq = eventfd(0);
  vm.setTssAddr(0xfffbd000);
  vm.createIrqchip();
  vm.createPit2();
  vm.setGsiRouting([
    { gsi: 4, type: 'irqchip', irqchip: 0, pin: 4 },
    { gsi: 24, type: 'msi', addressLo: 0xfee00000, data: 0x41 },
  ]);
  vm.irqfd({ fd: irq, gsi: 24 });
  vm.ioeventfd({ fd: kick, address: 0xd0000000, length: 4, space: 'mmio' });
  vm.irqLine(4, true);
  vm.irqLine(4, false);
  const cpuid = kvmGetSupportedCpuid(kvm);
  const vcpus = [0, 1].map((id) => {
    const vcpu = vm.createVcpu(id, () => {});
    vcpu.setCpuid(cpuid);
    vcpu.setSregs({ cs: { base: 0n, selector: 0 } });
    vcpu.setRegs({ rip: 0x1000n, rflags: 2n });
    vcpu.getLapic();
    vcpu.setFpu({ fcw: 0x37f });
    assert.equal(vcpu.getFpu().fcw, 0x37f);
    vcpu.setMsrs([{ index: 0x174, value: 0x10n }]); // IA32_SYSENTER_CS
    assert.deepEqual(vcpu.getMsrs([0x174]), [{ index: 0x174, value: 0x10n }]);
    return vcpu;
  });
  // No memory: the vCPUs fault or spin in the kernel; either way their threads must stop.
  vcpus.forEach((vcpu) => vcpu.run());
  await new Promise((resolve) => setTimeout(resolve, 50));
  const during = counts();
  assert.ok(during.threads >= before.threads + 2, `threads ${before.threads} -> ${during.threads}`);
  vm.destroy();
  assert.ok(vcpus.every((vcpu) => vcpu.destroyed));
  close(kick);
  close(irq);
  assert.deepEqual(counts(), before);
  close(kvm);
});
