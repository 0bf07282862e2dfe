// The committed tray images and app icon are what assets/tray/generate.mjs draws: the generator
// runs into a temporary directory and every file must match byte for byte. Each is a valid PNG
// (signature, IHDR first, IEND last, CRCs right) of the size its name promises.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { projectRoot } from '../../../core/paths.ts';
import { TRAY_ICONS } from '../../../electron/tray-menu.ts';

const FILES: [path: string, size: number][] = [
  ...TRAY_ICONS.flatMap((icon): [string, number][] => [
    [`assets/tray/${icon}.png`, 16],
    [`assets/tray/${icon}@2x.png`, 32],
  ]),
  ['assets/icons/berth.png', 512],
];

const out = mkdtempSync(join(tmpdir(), 'berth-icons-'));
after(() => rmSync(out, { recursive: true, force: true }));

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** The chunks of a PNG, each CRC checked. */
function chunks(png: Buffer): { type: string; data: Buffer }[] {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const result = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('ascii', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(png.readUInt32BE(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)));
    result.push({ type, data });
    at += 12 + length;
  }
  return result;
}

test('the generator reproduces every committed image byte for byte', () => {
  execFileSync(process.execPath, ['assets/tray/generate.mjs', '--out', out], {
    cwd: projectRoot,
    stdio: 'pipe',
  });
  for (const [path] of FILES) {
    assert.ok(
      readFileSync(join(projectRoot, path)).equals(readFileSync(join(out, path))),
      `${path} is stale: run node assets/tray/generate.mjs`,
    );
  }
});

test('every image is an RGBA PNG of its size, a glyph drawn and the corners clear', () => {
  for (const [path, size] of FILES) {
    const parts = chunks(readFileSync(join(projectRoot, path)));
    assert.equal(parts[0]!.type, 'IHDR', path);
    assert.equal(parts.at(-1)!.type, 'IEND', path);
    const header = parts[0]!.data;
    assert.deepEqual(
      [header.readUInt32BE(0), header.readUInt32BE(4), header[8], header[9]],
      [size, size, 8, 6],
      path,
    );
    const idat = Buffer.concat(parts.filter((p) => p.type === 'IDAT').map((p) => p.data));
    const rows = inflateSync(idat);
    assert.equal(rows.length, (size * 4 + 1) * size, path);
    const alpha = (x: number, y: number) => rows[y * (size * 4 + 1) + 1 + x * 4 + 3]!;
    assert.equal(alpha(0, 0), 0, `${path}: transparent corner`);
    let opaque = 0;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (alpha(x, y) === 255) opaque++;
    assert.ok(opaque > (size * size) / 8, `${path}: a glyph is drawn (${opaque} opaque pixels)`);
  }
});

test('each state has its own tray image', () => {
  const images = TRAY_ICONS.map((icon) =>
    readFileSync(join(projectRoot, `assets/tray/${icon}.png`)).toString('base64'),
  );
  assert.equal(new Set(images).size, TRAY_ICONS.length);
});
