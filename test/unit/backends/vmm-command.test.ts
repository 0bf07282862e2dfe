// Which VMM entry the kvm backend starts: the bundle while it is current, else tsx on the sources.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { vmmCommand } from '../../../core/backends/kvm/vmm-command.ts';

function checkout() {
  const root = mkdtempSync(join(tmpdir(), 'berth-vmm-command-'));
  mkdirSync(join(root, 'core'), { recursive: true });
  mkdirSync(join(root, 'build/vmm'), { recursive: true });
  writeFileSync(join(root, 'core/a.ts'), 'export {};');
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(root, 'core/a.ts'), past, past);
  return root;
}

test('no bundle: tsx runs the sources, and says how to build the bundle', () => {
  const root = checkout();
  try {
    const command = vmmCommand(root);
    assert.deepEqual(command.args, [
      '--import',
      'tsx',
      join(root, 'core/backends/kvm/vmm-main.ts'),
    ]);
    assert.match(command.source, /no VMM bundle \(node scripts\/build-vmm\.mjs\)/);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('a current bundle runs; a source edited after it sends the VMM back to tsx', () => {
  const root = checkout();
  try {
    writeFileSync(join(root, 'build/vmm/vmm-main.js'), '');
    writeFileSync(join(root, 'build/vmm/inputs.json'), JSON.stringify(['core/a.ts']));
    assert.deepEqual(vmmCommand(root), {
      args: [join(root, 'build/vmm/vmm-main.js')],
      source: 'bundle',
    });
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'core/a.ts'), future, future);
    assert.match(vmmCommand(root).source, /older than core\/a\.ts/);
    rmSync(join(root, 'core/a.ts'));
    assert.match(vmmCommand(root).source, /older than core\/a\.ts/);
  } finally {
    rmSync(root, { recursive: true });
  }
});
