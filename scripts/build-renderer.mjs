#!/usr/bin/env node
// Builds the renderer into build/renderer/: main.js (React app, one classic script so it loads from
// file:// in Electron as well as over http in browser mode), main.css (ours and xterm's), their
// source maps, and index.html. Minified, for Chromium 120+, and deterministic: the same sources
// give the same bytes. Plain JavaScript so setup can run it before anything is compiled.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'build/renderer');

try {
  // A clean folder, so nothing from an older build (a renamed asset) is shipped.
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await build({
    absWorkingDir: root,
    entryPoints: { main: 'renderer/src/main.tsx' },
    outdir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    jsx: 'automatic',
    charset: 'utf8',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  await copyFile(join(root, 'renderer/index.html'), join(outdir, 'index.html'));
} catch (error) {
  // esbuild has printed its messages (file, line, what is wrong) already; anything else has not.
  if (!Array.isArray(error?.errors)) console.error(`build-renderer: ${error?.message ?? error}`);
  process.exit(1);
}
