import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HDR } from '../../../core/vmm/boot/bzimage.ts';
import { setupLinuxBoot } from '../../../core/vmm/boot/linux-boot.ts';
import { BP_ACPI_RSDP_ADDR } from '../../../core/vmm/boot/zero-page.ts';
import { plainGuestRam } from '../../../core/vmm/guest-ram.ts';
import {
  CMDLINE_START,
  MiB,
  ZERO_PAGE_START,
  memoryLayout,
} from '../../../core/vmm/memory-layout.ts';
import { realKernel, syntheticBzImage } from './fixtures.ts';

function boot(
  kernel: Uint8Array,
  memory: number,
  extra: { initrd?: Uint8Array; cmdline?: string; vcpus?: number } = {},
) {
  const layout = memoryLayout(memory);
  const { ram, buffers } = plainGuestRam(layout.ramRegions);
  const result = setupLinuxBoot({
    ram,
    layout,
    kernel,
    cmdline: extra.cmdline ?? 'console=ttyS0 panic=-1',
    vcpus: extra.vcpus ?? 2,
    ...(extra.initrd ? { initrd: extra.initrd } : {}),
  });
  return { result, low: buffers[0]!, layout };
}

describe('setupLinuxBoot', () => {
  const real = realKernel();
  test('the real kernel with an initrd in 256 MiB', { skip: 'skip' in real && real.skip }, () => {
    if ('skip' in real) return;
    const initrd = new Uint8Array(3 * MiB + 17).fill(0x5a);
    const { result, low } = boot(real.bytes, 256 * MiB, { initrd });
    assert.equal(result.regs.rip, 0x1000200n);
    assert.equal(result.regs.rsi, BigInt(ZERO_PAGE_START));
    const zp = new DataView(low.buffer, ZERO_PAGE_START, 4096);
    assert.equal(zp.getUint32(HDR.cmdLinePtr, true), CMDLINE_START);
    assert.equal(zp.getUint32(HDR.ramdiskImage, true), result.initrd!.address);
    assert.equal(zp.getUint32(HDR.ramdiskSize, true), initrd.length);
    assert.ok(result.initrd!.address >= result.kernel.endOfKernel);
    assert.ok(result.initrd!.address + initrd.length <= 256 * MiB);
    assert.equal(low[result.initrd!.address], 0x5a);
    assert.equal(zp.getBigUint64(BP_ACPI_RSDP_ADDR, true), BigInt(result.acpi.rsdp));
    assert.equal(zp.getUint8(HDR.typeOfLoader), 0xff);
    assert.equal(zp.getUint32(HDR.header, true), 0x53726448);
  });

  test('bad inputs name what was wrong', () => {
    const kernel = syntheticBzImage({ cmdlineSize: 32 });
    assert.throws(() => boot(kernel, 64 * MiB, { vcpus: 0 }), /vCPU count: 0/);
    assert.throws(
      () => boot(kernel, 64 * MiB, { cmdline: 'x'.repeat(33) }),
      /command line too long/,
    );
    assert.throws(
      () => boot(kernel, 64 * MiB, { initrd: new Uint8Array(60 * MiB) }),
      /initrd too big/,
    );
    assert.throws(
      () => boot(syntheticBzImage({ initSize: 64 * MiB }), 64 * MiB),
      /kernel too big for the RAM/,
    );
    assert.throws(() => boot(new Uint8Array(4096), 64 * MiB), /bzImage: header: magic/);
  });

  test('a synthetic kernel without initrd', () => {
    const { result, low } = boot(syntheticBzImage(), 64 * MiB, { vcpus: 1 });
    assert.equal(result.initrd, null);
    assert.equal(low[0x1000000 + 7], 7, 'kernel bytes at pref_address');
    assert.equal(result.sregs.cr3, 0x9000n);
    assert.deepEqual(result.msrs, [{ index: 0x1a0, value: 1n }]);
  });
});
