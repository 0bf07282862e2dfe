#!/usr/bin/env node
// `npm test` (after setup): format check, lint (with the import rules), type-check, then every
// *.test.ts under test/ in one run of Node's test runner, so its closing summary counts them all.
// `node scripts/test.mjs unit` runs only test/unit. VM-booting tests run one at a time.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name) => join(root, 'node_modules/.bin', name);
const only = process.argv[2];

function step(name, cmd, args) {
  const started = performance.now();
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    console.error(`test: ${name} failed (${seconds} s)`);
    process.exit(result.status ?? 1);
  }
  console.log(`test: ${name} ok (${seconds} s)`);
}

function testFiles(dir) {
  return readdirSync(join(root, dir))
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(join(root, path)).isDirectory()) return testFiles(path);
      return name.endsWith('.test.ts') ? [path] : [];
    });
}

if (!only) {
  step('format', bin('prettier'), ['--check', '--log-level', 'warn', '.']);
  step('lint', bin('eslint'), ['--max-warnings', '0', '.']);
  step('typecheck', bin('tsc'), ['-p', 'tsconfig.json']);
  // The renderer is checked on its own: DOM libs, JSX, bundler resolution.
  step('typecheck renderer', bin('tsc'), ['-p', 'renderer/tsconfig.json']);
}
const files = testFiles(only ? join('test', only) : 'test').map((f) =>
  relative(root, join(root, f)),
);
step('tests', process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  '--test-concurrency=1',
  ...files,
]);
