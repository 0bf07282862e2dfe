#!/usr/bin/env node
// Runs after `npm ci` / `npm install`: records the npm stamp for setup, and says in one line
// whether Electron's binary is there. Its download host is not reachable on every machine
// (the development machines have only the npm and Debian registries); Berth then runs headless.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNpmStamp } from './npm-stamp.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
writeNpmStamp(root);

const electronDir = join(root, 'node_modules/electron');
const pathFile = join(electronDir, 'path.txt');
const binary = existsSync(pathFile)
  ? join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim())
  : '';
if (binary && existsSync(binary)) {
  console.log(`electron: binary present (${binary})`);
} else {
  console.log(
    'electron: binary not installed (its download host is unreachable here); the main process is ' +
      'type-checked only, and `npm start` runs Berth headless with the dashboard in browser mode',
  );
}
