// Shared test inputs for the boot loader: a synthetic bzImage and the real Debian kernel if the
// image build has unpacked it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HDR } from '../../../core/vmm/boot/bzimage.ts';

export interface SyntheticOptions {
  setupSects?: number;
  kernelBytes?: number;
  version?: number;
  xloadflags?: number;
  loadflags?: number;
  prefAddress?: number;
  initSize?: number;
  kernelAlignment?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage with a valid 2.15 header whose kernel bytes are 0, 1, 2, ... (mod 256). */
export function syntheticBzImage(o: SyntheticOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const kernelBytes = o.kernelBytes ?? 0x3000;
  const image = new Uint8Array((setupSects + 1) * 512 + kernelBytes);
  const dv = new DataView(image.buffer);
  dv.setUint8(HDR.setupSects, setupSects);
  dv.setUint32(HDR.syssize, Math.ceil(kernelBytes / 16), true);
  dv.setUint16(HDR.bootFlag, 0xaa55, true);
  dv.setUint8(HDR.jump, 0xeb);
  dv.setUint8(HDR.jump + 1, 0x6a); // header ends at 0x26c, as in 6.x kernels
  dv.setUint32(HDR.header, 0x53726448, true);
  dv.setUint16(HDR.version, o.version ?? 0x020f, true);
  dv.setUint8(HDR.loadflags, o.loadflags ?? 0x01);
  dv.setUint32(HDR.initrdAddrMax, o.initrdAddrMax ?? 0x7fffffff, true);
  dv.setUint32(HDR.kernelAlignment, o.kernelAlignment ?? 0x200000, true);
  dv.setUint8(HDR.relocatableKernel, 1);
  dv.setUint16(HDR.xloadflags, o.xloadflags ?? 0x7f, true);
  dv.setUint32(HDR.cmdlineSize, o.cmdlineSize ?? 2047, true);
  dv.setBigUint64(HDR.prefAddress, BigInt(o.prefAddress ?? 0x1000000), true);
  dv.setUint32(HDR.initSize, o.initSize ?? 0x100000, true);
  const kernelStart = (setupSects + 1) * 512;
  for (let i = 0; i < kernelBytes; i++) image[kernelStart + i] = i & 0xff;
  return image;
}

const UNPACKED = join(import.meta.dirname, '../../../build/cache/unpacked');

/** The factory image's kernel, or null (with the reason) when it has not been unpacked. */
export function realKernel(): { path: string; bytes: Uint8Array } | { skip: string } {
  if (existsSync(UNPACKED)) {
    for (const dir of readdirSync(UNPACKED)) {
      if (!/^linux-image-6\.12\..*-cloud-amd64_/.test(dir)) continue;
      const boot = join(UNPACKED, dir, 'boot');
      const vmlinuz = existsSync(boot) && readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
      if (vmlinuz) {
        const path = join(boot, vmlinuz);
        return { path, bytes: new Uint8Array(readFileSync(path)) };
      }
    }
  }
  return {
    skip: `no linux-image-6.12.*-cloud-amd64 unpacked under ${UNPACKED} (build the image first)`,
  };
}
