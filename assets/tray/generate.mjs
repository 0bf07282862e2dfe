#!/usr/bin/env node
// Draws Berth's tray images (one per VM state, 16x16 and 32x32 as NAME.png and NAME@2x.png, the
// names Electron's nativeImage picks per display scale) and the 512x512 app icon, and writes them
// as PNG with node:zlib. The images are committed; run this again after changing a shape or a
// colour. Output is byte-for-byte reproducible (test/unit/electron/tray-icons.test.ts checks it).
//
//   node assets/tray/generate.mjs [--out DIR]   (DIR defaults to the repository root)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

/** The VM's states (core/api/types.ts VmState) and the colour each one shows. */
export const STATE_COLOURS = {
  stopped: [0x8b, 0x94, 0x9e],
  starting: [0xd2, 0x99, 0x22],
  running: [0x2d, 0xa4, 0x4e],
  stopping: [0xbc, 0x4c, 0x00],
  error: [0xcf, 0x22, 0x2e],
};

const WHITE = [0xff, 0xff, 0xff];
const NAVY = [0x0d, 0x28, 0x47];
const SEA = [0x4e, 0xa8, 0xde];

// Shapes are inside-tests on the unit square (x right, y down), so one drawing serves every size.
const circle = (cx, cy, r) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
const ring = (cx, cy, r, width) => (x, y) => {
  const d = Math.hypot(x - cx, y - cy);
  return d <= r && d >= r - width;
};
/** A trapezoid with horizontal top and bottom edges: a boat's hull. */
const hull =
  (top, bottom, topHalf, bottomHalf, cx = 0.5) =>
  (x, y) => {
    if (y < top || y > bottom) return false;
    const half = topHalf + ((bottomHalf - topHalf) * (y - top)) / (bottom - top);
    return Math.abs(x - cx) <= half;
  };
/** A right triangle: the sail, its vertical edge on the mast at x = mast. */
const sail = (mast, top, bottom, width) => (x, y) =>
  y >= top && y <= bottom && x >= mast && x - mast <= (width * (y - top)) / (bottom - top);
const rect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const roundedSquare = (margin, radius) => (x, y) => {
  const lo = margin + radius;
  const hi = 1 - margin - radius;
  const cx = Math.min(Math.max(x, lo), hi);
  const cy = Math.min(Math.max(y, lo), hi);
  return (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius;
};
const wave = (base, amplitude, thickness, periods) => (x, y) => {
  const centre = base + amplitude * Math.sin(2 * Math.PI * periods * x);
  return Math.abs(y - centre) <= thickness / 2;
};
const both = (a, b) => (x, y) => a(x, y) && b(x, y);

/** A tray glyph: a dot in the state's colour with a small white boat on it. */
export function trayLayers(state) {
  const colour = STATE_COLOURS[state];
  const layers = [];
  if (state === 'stopped') {
    // Stopped reads as "off": a grey ring and a grey boat, no filled dot.
    layers.push({ colour, inside: ring(0.5, 0.5, 0.47, 0.11) });
    layers.push({ colour, inside: hull(0.56, 0.72, 0.26, 0.15) });
    layers.push({ colour, inside: sail(0.47, 0.24, 0.52, 0.22) });
  } else {
    layers.push({ colour, inside: circle(0.5, 0.5, 0.47) });
    layers.push({ colour: WHITE, inside: hull(0.56, 0.72, 0.26, 0.15) });
    layers.push({ colour: WHITE, inside: sail(0.47, 0.24, 0.52, 0.22) });
    if (state === 'error') {
      // A bar across: the VM failed; the boat is struck out.
      layers.push({ colour: WHITE, inside: rect(0.16, 0.78, 0.84, 0.84) });
    }
  }
  return layers;
}

export function appIconLayers() {
  const square = roundedSquare(0.04, 0.2);
  return [
    { colour: NAVY, inside: square },
    { colour: STATE_COLOURS.running, inside: circle(0.5, 0.47, 0.3) },
    { colour: WHITE, inside: hull(0.5, 0.64, 0.22, 0.13) },
    { colour: WHITE, inside: rect(0.485, 0.24, 0.5, 0.5) },
    { colour: WHITE, inside: sail(0.51, 0.26, 0.47, 0.16) },
    { colour: SEA, inside: both(square, wave(0.76, 0.018, 0.035, 3)) },
    { colour: SEA, inside: both(square, wave(0.85, 0.018, 0.035, 3)) },
  ];
}

/** Renders layers (painted in order) to straight-alpha RGBA, with 4x4 supersampling per pixel. */
export function render(size, layers, samples = 4) {
  const rgba = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      // Premultiplied accumulation: paint each layer over what is there.
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (const layer of layers) {
        let hits = 0;
        for (let sy = 0; sy < samples; sy++) {
          for (let sx = 0; sx < samples; sx++) {
            const x = (px + (sx + 0.5) / samples) / size;
            const y = (py + (sy + 0.5) / samples) / size;
            if (layer.inside(x, y)) hits++;
          }
        }
        const coverage = hits / (samples * samples);
        if (coverage === 0) continue;
        const [lr, lg, lb] = layer.colour;
        r = lr * coverage + r * (1 - coverage);
        g = lg * coverage + g * (1 - coverage);
        b = lb * coverage + b * (1 - coverage);
        a = coverage + a * (1 - coverage);
      }
      const offset = (py * size + px) * 4;
      if (a > 0) {
        rgba[offset] = Math.round(r / a);
        rgba[offset + 1] = Math.round(g / a);
        rgba[offset + 2] = Math.round(b / a);
        rgba[offset + 3] = Math.round(a * 255);
      }
    }
  }
  return rgba;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buffer) {
  let c = 0xffffffff;
  for (const byte of buffer) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An 8-bit RGBA PNG (colour type 6), rows unfiltered, deflated at level 9. */
export function encodePng(width, height, rgba) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  // compression, filter method, interlace: all 0
  const rows = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Every image, by its path relative to the repository root. */
export function renderAll() {
  const files = new Map();
  for (const state of Object.keys(STATE_COLOURS)) {
    const layers = trayLayers(state);
    files.set(`assets/tray/${state}.png`, encodePng(16, 16, render(16, layers)));
    files.set(`assets/tray/${state}@2x.png`, encodePng(32, 32, render(32, layers)));
  }
  files.set('assets/icons/berth.png', encodePng(512, 512, render(512, appIconLayers())));
  return files;
}

function main(argv) {
  const outIndex = argv.indexOf('--out');
  const root =
    outIndex >= 0 && argv[outIndex + 1]
      ? argv[outIndex + 1]
      : fileURLToPath(new URL('../..', import.meta.url));
  for (const [path, png] of renderAll()) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, png);
    console.log(`${path}: ${png.length} bytes`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv);
