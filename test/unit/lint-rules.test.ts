// The import rules of DESIGN.md are lint rules; each must fire where it should and only there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import { projectRoot } from '../../core/paths.ts';

const eslint = new ESLint({ cwd: projectRoot });

async function restrictedImports(file: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import '${specifier}';\n`, {
    filePath: `${projectRoot}/${file}`,
  });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const cases: [file: string, specifier: string, allowed: boolean][] = [
  ['renderer/app.tsx', '../core/api/types.ts', true],
  ['renderer/app.tsx', '../core/supervisor/lifecycle.ts', false],
  ['renderer/app.tsx', 'electron', false],
  ['renderer/app.tsx', 'node:fs', false],
  ['core/supervisor/vm.ts', 'electron', false],
  ['core/supervisor/vm.ts', '../../renderer/app.tsx', false],
  ['core/supervisor/vm.ts', '../../electron/main.ts', false],
  ['core/supervisor/vm.ts', '../devices/blk/blk.ts', true],
  ['core/devices/blk/blk.ts', '../../vmm/memory.ts', false],
  ['core/devices/blk/blk.ts', '../../backends/qemu/qemu-vm.ts', false],
  ['core/devices/blk/blk.ts', '../queue/queue.ts', true],
  ['core/vmm/machine.ts', '../../native/kvm/build/Release/berth_native.node', false],
  ['core/native.ts', '../native/kvm/build/Release/berth_native.node', true],
  ['electron/main.ts', '../core/supervisor/vm.ts', true],
  ['electron/main.ts', 'electron', true],
];

for (const [file, specifier, allowed] of cases) {
  test(`${file} ${allowed ? 'may' : 'may not'} import ${specifier}`, async () => {
    const messages = await restrictedImports(file, specifier);
    if (allowed) assert.deepEqual(messages, []);
    else assert.equal(messages.length, 1, `expected the import rule to fire in ${file}`);
  });
}
