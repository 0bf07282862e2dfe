#!/usr/bin/env node
// The one setup step that `npm start` and `npm test` run first. It installs only what is missing,
// in order: Debian packages, npm dependencies, node-pty's native module, the native addon, the
// guest's static binaries, the renderer bundle, the VMM bundle, the factory image.
// Plain JavaScript with no dependencies, because it runs before node_modules exists.
// When nothing is missing it only hashes a few files and asks dpkg one question (well under 3 s).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NPM_STAMP, npmInputsHash, writeNpmStamp } from './npm-stamp.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = performance.now();

/** Debian packages the host needs, and why. The image's own packages are fetched, not installed. */
const DEBIAN_PACKAGES = {
  'qemu-system-x86': 'runs the VM (qemu backend, smoke test)',
  kmod: 'depmod, to order the image kernel modules',
  binutils: 'readelf, to find the shared libraries image binaries need',
  gcc: 'builds the static guest programs in native/guest',
  'g++': 'builds the native addon in native/kvm',
  python3: 'node-gyp runs on Python',
  'libc6-dev': 'static libc for the guest programs',
  make: 'builds native/guest',
  cpio: 'independent check of the initrd writer in the unit tests',
  socat: 'the debug-shell test talks to run/debug-shell.sock as a user would',
  'openssh-client': 'berth ssh runs your OpenSSH through a vsock ProxyCommand',
  chromium: 'the UI test drives the dashboard in browser mode (playwright-core)',
  'squashfs-tools': "mksquashfs writes the factory image's system image (the container engine)",
  passt: 'user-mode networking for the VM (guest traffic becomes host sockets)',
};

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) throw new Error(`setup: could not run ${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `setup: \`${[cmd, ...args].join(' ')}\` failed with exit code ${result.status}`,
    );
  }
}

function missingDebianPackages() {
  const names = Object.keys(DEBIAN_PACKAGES);
  const query = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...names], {
    encoding: 'utf8',
  });
  if (query.error) throw new Error('setup: dpkg-query not found: Berth needs a Debian-based host');
  const installed = new Set(
    query.stdout
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0].split(':')[0]),
  );
  return names.filter((name) => !installed.has(name));
}

function aptListsPresent() {
  const dir = '/var/lib/apt/lists';
  return existsSync(dir) && readdirSync(dir).some((name) => /_Packages(\.\w+)?$/.test(name));
}

function ensureDebianPackages() {
  const missing = missingDebianPackages();
  // The image builder reads apt's package lists (apt-cache show, apt-get download).
  const needUpdate = !aptListsPresent() || missing.length > 0;
  if (!needUpdate) return;
  const install = ['apt-get', 'install', '-y', '--no-install-recommends', ...missing];
  if (process.getuid?.() !== 0) {
    const why = missing.map((name) => `  ${name}: ${DEBIAN_PACKAGES[name]}`).join('\n');
    console.error(
      `setup: Berth needs Debian packages that are not installed:\n${why}\n` +
        `Run as root, then run this command again:\n  sudo apt-get update && sudo ${install.join(' ')}`,
    );
    process.exit(1);
  }
  console.log(`setup: apt-get update${missing.length ? ` and install ${missing.join(' ')}` : ''}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  if (missing.length) run(install[0], install.slice(1).concat('-qq'), { env });
}

function ensureNpmDependencies() {
  const stampPath = join(root, NPM_STAMP);
  if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') === npmInputsHash(root)) return;
  console.log('setup: installing npm dependencies (npm ci)');
  const hasLock = existsSync(join(root, 'package-lock.json'));
  run('npm', hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'], {
    env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
  });
  writeNpmStamp(root);
}

/** Node's own headers (as native/kvm/build.mjs finds them), so node-gyp downloads nothing. */
function nodeDirArgs() {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function ensureNodePty() {
  // npm may hold back node-pty's install script (it builds the native module with node-gyp);
  // without the module the host terminal cannot start, so build it here, once.
  const dir = join(root, 'node_modules/node-pty');
  if (existsSync(join(dir, 'build/Release/pty.node'))) return;
  console.log(
    "setup: building node-pty's native module (node-gyp rebuild in node_modules/node-pty)",
  );
  const nodeGyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...nodeDirArgs()], {
    cwd: dir,
    stdio: 'inherit',
  });
  if (result.error || result.status !== 0 || !existsSync(join(dir, 'build/Release/pty.node'))) {
    const why = result.error?.message ?? `exit code ${result.status}`;
    throw new Error(
      `setup: building node-pty's native module failed (node-gyp rebuild in ${dir}: ${why}); ` +
        'the host terminal needs it. node-gyp needs python3, make and g++; its messages are above.',
    );
  }
}

function ensureNativeAddon() {
  // Rebuilds only when a source changed (native/kvm/build.mjs keeps a stamp of its inputs).
  run(process.execPath, ['native/kvm/build.mjs']);
}

function ensureGuestPrograms() {
  // make is incremental: it rebuilds only when a source changed.
  run('make', ['-s', '-C', 'native/guest', `OUT=${join(root, 'build/guest')}`]);
}

/** A hash of every file under `paths` (directories walked, node_modules skipped). */
function inputsHash(paths) {
  const hash = createHash('sha256');
  const add = (path) => {
    if (!existsSync(join(root, path))) return hash.update(`${path}\0missing\0`);
    if (!statSync(join(root, path)).isDirectory()) {
      hash
        .update(`${path}\0`)
        .update(readFileSync(join(root, path)))
        .update('\0');
      return;
    }
    for (const name of readdirSync(join(root, path)).sort()) {
      if (name !== 'node_modules') add(join(path, name));
    }
  };
  for (const path of paths) add(path);
  return hash.digest('hex');
}

/** Everything the factory image is made from, apart from the Debian packages themselves. */
function imageInputsHash() {
  return inputsHash(['assets/image', 'core/image', 'build/guest']);
}

function ensureFactoryImage() {
  const stampPath = join(root, 'build/image/inputs.sha256');
  const inputs = imageInputsHash();
  if (existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === inputs) return;
  console.log('setup: building the factory image (its inputs changed)');
  run(join(root, 'node_modules/.bin/tsx'), [join(root, 'core/image/main.ts'), '--summary']);
  writeFileSync(stampPath, `${inputs}\n`);
}

function ensureRenderer() {
  // The dashboard's bundle (build/renderer), rebuilt when the renderer, the API types it uses,
  // the build script or the npm dependencies changed. The stamp sits beside build/renderer, not
  // in it, so the build script may empty that directory.
  const script = 'scripts/build-renderer.mjs';
  if (!existsSync(join(root, script))) {
    console.log(`setup: skipping the renderer bundle: ${script} does not exist yet`);
    return;
  }
  const stampPath = join(root, 'build/renderer-inputs.sha256');
  const inputs = inputsHash(['renderer', script, 'core/api', 'package-lock.json']);
  const built = existsSync(join(root, 'build/renderer/index.html'));
  if (built && existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === inputs) return;
  console.log('setup: bundling the renderer (its inputs changed)');
  run(process.execPath, [script]);
  writeFileSync(stampPath, `${inputs}\n`);
}

function ensureVmmBundle() {
  // The kvm backend's VMM as one file (scripts/build-vmm.mjs), rebuilt when core/ changed; the
  // backend falls back to tsx by itself whenever a source is newer than the bundle.
  const stampPath = join(root, 'build/vmm/inputs.sha256');
  const inputs = inputsHash(['core', 'scripts/build-vmm.mjs', 'scripts/build-electron.mjs']);
  const built = existsSync(join(root, 'build/vmm/vmm-main.js'));
  if (built && existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === inputs) return;
  console.log('setup: bundling the VMM (its inputs changed)');
  run(process.execPath, ['scripts/build-vmm.mjs']);
  writeFileSync(stampPath, `${inputs}\n`);
}

try {
  ensureDebianPackages();
  ensureNpmDependencies();
  ensureNodePty();
  ensureNativeAddon();
  ensureGuestPrograms();
  ensureRenderer();
  ensureVmmBundle();
  ensureFactoryImage();
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`setup: ready in ${seconds} s (${relative(process.cwd(), root) || '.'})`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
