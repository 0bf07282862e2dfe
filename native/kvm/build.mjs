#!/usr/bin/env node
// Builds Berth's native addon (native/kvm/build/Release/berth_native.node) with node-gyp, but
// only when one of its inputs changed since the last build: binding.gyp, src/*, this script and
// the node-addon-api version. Otherwise it returns after hashing them (a few milliseconds).
// `npm run setup` runs it; run it by hand with `node native/kvm/build.mjs [--force]`.
//
// It compiles against the running Node's own headers (<prefix>/include/node, which the Debian and
// NodeSource nodejs packages install), so nothing is downloaded. Needs python3, make and g++.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const buildDir = join(here, 'build');
const output = join(buildDir, 'Release/berth_native.node');
const stampPath = join(buildDir, 'inputs.sha256');
const require = createRequire(import.meta.url);
const started = performance.now();

function fail(message) {
  console.error(`native/kvm: ${message}`);
  process.exit(1);
}

function resolvePackage(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return fail(`the npm package ${name} is missing: run \`npm run setup\` (or \`npm ci\`)`);
  }
}

/** The hash of everything the addon is built from. */
function inputsHash(addonApiDir) {
  const hash = createHash('sha256');
  const add = (name, bytes) => hash.update(`${name}\0`).update(bytes).update('\0');
  add('binding.gyp', readFileSync(join(here, 'binding.gyp')));
  add('build.mjs', readFileSync(join(here, 'build.mjs')));
  for (const name of readdirSync(join(here, 'src')).sort()) {
    add(`src/${name}`, readFileSync(join(here, 'src', name)));
  }
  const addonApi = JSON.parse(readFileSync(join(addonApiDir, 'package.json'), 'utf8'));
  add('node-addon-api', addonApi.version);
  add('platform', `${process.platform}-${process.arch}`);
  return hash.digest('hex');
}

/** Node's own headers, so node-gyp need not download them; null to let node-gyp find them. */
function nodeHeadersDir() {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : null;
}

function nodeGyp(nodeGypDir, args) {
  const result = spawnSync(
    process.execPath,
    [join(nodeGypDir, 'bin/node-gyp.js'), ...args, '--loglevel=warn'],
    { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.error) fail(`could not run node-gyp: ${result.error.message}`);
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr);
    const hint = nodeHeadersDir()
      ? ''
      : `\nNode's headers were not found under ${dirname(dirname(process.execPath))}/include/node: install the nodejs package that has them.`;
    fail(`node-gyp ${args[0]} failed (exit code ${result.status}).${hint}`);
  }
}

const addonApiDir = resolvePackage('node-addon-api');
const nodeGypDir = resolvePackage('node-gyp');
const inputs = inputsHash(addonApiDir);
const force = process.argv.includes('--force');
const built =
  existsSync(output) && existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === inputs;
if (built && !force) process.exit(0);

console.log(`native/kvm: building ${relative(process.cwd(), output) || output}`);
rmSync(stampPath, { force: true });
const headers = nodeHeadersDir();
// configure writes the Makefiles (after binding.gyp changed, it must run again); make then
// recompiles only the sources that changed.
nodeGyp(nodeGypDir, ['configure', ...(headers ? [`--nodedir=${headers}`] : [])]);
nodeGyp(nodeGypDir, ['build', '--jobs=max']);
if (!existsSync(output)) fail(`node-gyp succeeded but ${output} is missing`);
writeFileSync(stampPath, `${inputs}\n`);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`native/kvm: built in ${seconds} s`);
