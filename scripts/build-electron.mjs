#!/usr/bin/env node
// Bundles the Electron main process and its preload with esbuild (Electron cannot run .ts):
//   electron/main.ts          -> build/electron/main.js            (ESM, package.json "main")
//   electron/preload/index.ts -> build/electron/preload/index.cjs  (CommonJS: a sandboxed
//                                                                    preload cannot be ESM)
// Native and binary-carrying packages stay external (node-pty, ssh2 and their .node addons;
// the KVM addon is loaded by path at run time). Each bundled source module keeps its own
// import.meta.url (rewritten to its file's URL relative to the bundle), so core/paths.ts still
// finds the project root from build/electron/, in the checkout and in the packaged app alike.
//
//   node scripts/build-electron.mjs [--watch] [--out DIR]
// (--out: another output directory inside the project, for tests; externals resolve from there.)
import { readFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
export const OUT_DIR = join(root, 'build/electron');

/** Packages left to Node's resolver at run time: native addons and whatever ships binaries. */
export const EXTERNAL = ['electron', 'node-pty', 'ssh2', 'cpu-features', '*.node'];

/**
 * Rewrites import.meta.url, .dirname and .filename in one source file to that file's own
 * location, computed at run time from the bundle's URL: `new URL('../../core/paths.ts',
 * import.meta.url)` for core/paths.ts bundled into build/electron/main.js.
 */
export function rewriteImportMeta(source, file, outDir) {
  const rel = relative(outDir, file).split(sep).join('/');
  const url = `new URL(${JSON.stringify(rel)}, import.meta.url)`;
  return source
    .replace(/\bimport\.meta\.url\b/g, `${url}.href`)
    .replace(/\bimport\.meta\.dirname\b/g, `__berthDirname(${url})`)
    .replace(/\bimport\.meta\.filename\b/g, `__berthFilename(${url})`);
}

export function importMetaPlugin(outDir) {
  return {
    name: 'berth-import-meta',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        const source = await readFile(args.path, 'utf8');
        if (!source.includes('import.meta')) return { contents: source, loader: 'ts' };
        return { contents: rewriteImportMeta(source, args.path, outDir), loader: 'ts' };
      });
    },
  };
}

// Lets bundled CommonJS packages require Node built-ins from an ESM bundle, and backs the
// import.meta.dirname/filename rewrite above.
export const MAIN_BANNER = [
  "import { createRequire as __berthCreateRequire } from 'node:module';",
  "import { fileURLToPath as __berthFileURLToPath } from 'node:url';",
  "import { dirname as __berthDirnameOf } from 'node:path';",
  'const require = __berthCreateRequire(import.meta.url);',
  'const __berthFilename = (url) => __berthFileURLToPath(url);',
  'const __berthDirname = (url) => __berthDirnameOf(__berthFileURLToPath(url));',
].join('\n');

export function buildOptions(outDir = OUT_DIR) {
  const common = {
    bundle: true,
    platform: 'node',
    sourcemap: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
    external: EXTERNAL,
  };
  return [
    {
      ...common,
      entryPoints: ['electron/main.ts'],
      outfile: join(outDir, 'main.js'),
      format: 'esm',
      target: 'node22',
      banner: { js: MAIN_BANNER },
      plugins: [importMetaPlugin(outDir)],
    },
    {
      ...common,
      entryPoints: ['electron/preload/index.ts'],
      outfile: join(outDir, 'preload/index.cjs'),
      format: 'cjs',
      target: 'chrome140',
      external: ['electron'],
    },
  ];
}

async function main(argv) {
  const watch = argv.includes('--watch');
  const outIndex = argv.indexOf('--out');
  const outDir = outIndex >= 0 && argv[outIndex + 1] ? resolve(argv[outIndex + 1]) : OUT_DIR;
  const started = performance.now();
  if (watch) {
    for (const options of buildOptions(outDir)) await (await esbuild.context(options)).watch();
    console.log('build-electron: watching electron/ and core/');
    return;
  }
  await Promise.all(buildOptions(outDir).map((options) => esbuild.build(options)));
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`build-electron: ${relative(root, outDir)} in ${seconds} s`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`build-electron: ${error.message}`);
    process.exit(1);
  });
}
