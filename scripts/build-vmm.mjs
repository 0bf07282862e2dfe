#!/usr/bin/env node
// Bundles the kvm backend's VMM process (core/backends/kvm/vmm-main.ts) into one ESM file,
// build/vmm/vmm-main.js, so that starting a VM does not start a TypeScript loader first: under
// emulation (the nested harness, a slow laptop) node with tsx takes seconds to load the VMM's
// ~100 modules, the bundle a fraction of that. The addon stays a .node loaded by path, and each
// bundled module keeps its own import.meta.url (build-electron.mjs's plugin), so core/paths.ts
// still finds the project root. build/vmm/inputs.json lists the sources it was made from:
// core/backends/kvm/vmm-command.ts runs the bundle only while none of them is newer.
//
//   node scripts/build-vmm.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { EXTERNAL, MAIN_BANNER, importMetaPlugin } from './build-electron.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
export const VMM_OUT_DIR = join(root, 'build/vmm');

export async function buildVmm(outDir = VMM_OUT_DIR) {
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: ['core/backends/kvm/vmm-main.ts'],
    outfile: join(outDir, 'vmm-main.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
    external: EXTERNAL,
    banner: { js: MAIN_BANNER },
    plugins: [importMetaPlugin(outDir)],
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs).filter(
    (path) => !path.includes('node_modules'),
  );
  writeFileSync(join(outDir, 'inputs.json'), `${JSON.stringify(inputs, null, 1)}\n`);
  return inputs.length;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  buildVmm().then(
    (count) =>
      console.log(
        `build-vmm: ${relative(root, VMM_OUT_DIR)}/vmm-main.js from ${count} sources in ` +
          `${((performance.now() - started) / 1000).toFixed(2)} s`,
      ),
    (error) => {
      console.error(`build-vmm: ${error.message}`);
      process.exit(1);
    },
  );
}
