import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HDR, XLF_KERNEL_64, loadBzImage, parseBzImage } from '../../../core/vmm/boot/bzimage.ts';
import { plainGuestRam } from '../../../core/vmm/guest-ram.ts';
import { MiB, memoryLayout } from '../../../core/vmm/memory-layout.ts';
import { realKernel, syntheticBzImage } from './fixtures.ts';

function patched(edit: (dv: DataView) => void, image = syntheticBzImage()): Uint8Array {
  edit(new DataView(image.buffer, image.byteOffset, image.byteLength));
  return image;
}

describe('parseBzImage on the real kernel', () => {
  const kernel = realKernel();
  test('reads the 6.12 cloud kernel header', { skip: 'skip' in kernel && kernel.skip }, () => {
    if ('skip' in kernel) return;
    const image = parseBzImage(kernel.bytes);
    const h = image.header;
    assert.ok(h.version >= 0x020f, `boot protocol ${h.version.toString(16)}`);
    assert.ok(h.xloadflags & XLF_KERNEL_64);
    assert.ok(h.relocatable);
    assert.equal(h.prefAddress, 0x1000000);
    assert.equal(h.kernelAlignment, 0x200000);
    assert.ok(h.initSize > image.kernel.length, 'init_size covers the decompressed kernel');
    assert.ok(h.cmdlineSize >= 2047);
    assert.equal(image.kernel.length, kernel.bytes.length - (h.setupSects + 1) * 512);
    assert.equal(image.headerBytes.length, 0x202 + kernel.bytes[0x201]! - 0x1f1);
  });

  test(
    'loads at pref_address with the 64-bit entry 0x200 in',
    { skip: 'skip' in kernel && kernel.skip },
    () => {
      if ('skip' in kernel) return;
      const image = parseBzImage(kernel.bytes);
      const layout = memoryLayout(128 * MiB);
      const { ram, buffers } = plainGuestRam(layout.ramRegions);
      const loaded = loadBzImage(ram, layout, image);
      assert.equal(loaded.loadAddress, 0x1000000);
      assert.equal(loaded.entry64, 0x1000200);
      assert.equal(loaded.endOfKernel, 0x1000000 + image.header.initSize);
      assert.deepEqual(
        buffers[0]!.subarray(0x1000000, 0x1000000 + 4096),
        image.kernel.subarray(0, 4096),
      );
      // 32 MiB cannot hold pref_address (16 MiB) + init_size (tens of MiB).
      const small = memoryLayout(32 * MiB);
      assert.throws(
        () => loadBzImage(plainGuestRam(small.ramRegions).ram, small, image),
        /kernel too big for the RAM/,
      );
    },
  );
});

describe('parseBzImage on malformed images', () => {
  test('a valid synthetic image parses', () => {
    const image = parseBzImage(syntheticBzImage({ setupSects: 4, kernelBytes: 0x3000 }));
    assert.equal(image.kernel.length, 0x3000);
    assert.equal(image.kernel[5], 5);
    assert.equal(image.header.syssizeBytes, 0x3000);
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(100), /bzImage: size: 100 bytes/],
    [
      'no HdrS',
      () => patched((dv) => dv.setUint32(HDR.header, 0x12345678, true)),
      /header: magic .* not "HdrS"/,
    ],
    ['no 0xaa55', () => patched((dv) => dv.setUint16(HDR.bootFlag, 0, true)), /boot_flag/],
    [
      'protocol 2.11',
      () => syntheticBzImage({ version: 0x020b }),
      /version: boot protocol 2\.11 is too old/,
    ],
    [
      'no XLF_KERNEL_64',
      () => syntheticBzImage({ xloadflags: 0x7e }),
      /xloadflags: XLF_KERNEL_64 is not set/,
    ],
    ['zImage', () => syntheticBzImage({ loadflags: 0 }), /loadflags: LOADED_HIGH/],
    [
      'truncated kernel',
      () => syntheticBzImage().subarray(0, 5 * 512 + 0x100),
      /syssize: .*truncated/,
    ],
    ['setup past end', () => patched((dv) => dv.setUint8(HDR.setupSects, 200)), /setup_sects: 200/],
    [
      'alignment 3',
      () => syntheticBzImage({ kernelAlignment: 3 }),
      /kernel_alignment: 0x3 is not a power of two/,
    ],
    [
      'pref_address low',
      () => syntheticBzImage({ prefAddress: 0x1000 }),
      /pref_address: 0x1000 is below 1 MiB/,
    ],
    [
      'pref_address unaligned',
      () => syntheticBzImage({ prefAddress: 0x1100000 }),
      /pref_address: .* not aligned/,
    ],
    ['init_size small', () => syntheticBzImage({ initSize: 16 }), /init_size: 16 bytes/],
    ['cmdline_size 0', () => syntheticBzImage({ cmdlineSize: 0 }), /cmdline_size: is 0/],
    ['syssize 0', () => patched((dv) => dv.setUint32(HDR.syssize, 0, true)), /syssize: is 0/],
    ['short header', () => patched((dv) => dv.setUint8(HDR.jump + 1, 0x20)), /header length/],
  ];
  for (const [name, make, error] of cases) {
    test(`refuses: ${name}`, () => assert.throws(() => parseBzImage(make()), error));
  }

  test('setup_sects 0 means 4', () => {
    const image = patched(
      (dv) => dv.setUint8(HDR.setupSects, 0),
      syntheticBzImage({ setupSects: 4 }),
    );
    assert.equal(parseBzImage(image).header.setupSects, 4);
  });
});
