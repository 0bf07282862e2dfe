// The L1 initramfs of the nested harness: busybox, the KVM modules (kvm, kvm-amd, irqbypass and
// whatever depmod says they need), node and QEMU with their shared libraries and the firmware
// QEMU loads, and l1-init.sh as /init. The project and the factory image are not in it: L1 mounts
// the checkout read-only over virtiofs. Built from the same Debian cache as the factory image
// (build/cache), written to build/nested/, and rebuilt only when an input changes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpioArchive } from '../../core/image/cpio.ts';
import {
  type DebianPackage,
  DebianPackageCache,
  dependencyNames,
} from '../../core/image/debian.ts';
import { resolveModules } from '../../core/image/kernel-modules.ts';
import { buildPaths } from '../../core/paths.ts';

export const L1_KERNEL_PACKAGE = 'linux-image-6.12-cloud-amd64';
export const L1_MODULES = ['kvm_amd', 'kvm', 'irqbypass'];
const BUSYBOX = '/bin/busybox';
/** Host programs copied into L1 with their libraries (ldd). */
const HOST_PROGRAMS = ['/usr/bin/node', '/usr/bin/qemu-system-x86_64'];
/** What QEMU reads at start for a microvm (strace): the qboot firmware; and q35's option ROMs. */
const QEMU_DATA = ['bios-microvm.bin', 'qboot.rom', 'linuxboot_dma.bin', 'kvmvapic.bin', 'pvh.bin'];
const QEMU_DATA_DIR = '/usr/share/qemu';
/** busybox applets left out: node would take busybox's setpriv for util-linux's (qemu-vm.ts). */
const SKIPPED_APPLETS = new Set(['setpriv']);

const here = fileURLToPath(new URL('.', import.meta.url));
export const INIT_SCRIPT = join(here, 'l1-init.sh');

export interface L1Initramfs {
  kernel: string;
  initramfs: string;
  release: string;
  /** False when the cached build matched its inputs. */
  rebuilt: boolean;
  bytes: number;
}

/** "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader's own line. */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path && !paths.includes(path)) paths.push(path);
  }
  return paths;
}

function sharedLibraries(program: string): string[] {
  const result = spawnSync('ldd', [program], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`nested: ldd ${program} failed: ${(result.stderr || result.stdout).trim()}`);
  const missing = /^\s*(\S+) => not found/m.exec(result.stdout);
  if (missing) throw new Error(`nested: ${program} needs ${missing[1]}, which is not installed`);
  return parseLdd(result.stdout);
}

/** The versioned kernel package behind the metapackage (as the factory builder does). */
function kernelPackage(debs: DebianPackageCache): { pkg: DebianPackage; release: string } {
  let pkg = debs.get(L1_KERNEL_PACKAGE, 'nested kernel');
  for (let depth = 0; depth < 4; depth++) {
    const boot = join(pkg.root, 'boot');
    const vmlinuz = existsSync(boot) && readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    if (vmlinuz) return { pkg, release: vmlinuz.slice('vmlinuz-'.length) };
    const next = dependencyNames(pkg.depends).find((d) => d.startsWith('linux-image-'));
    if (!next) break;
    pkg = debs.get(next, 'nested kernel');
  }
  throw new Error(`nested: ${L1_KERNEL_PACKAGE} does not lead to a package with /boot/vmlinuz-*`);
}

/** A file as it goes into the archive: where it is in L1, where it comes from on the host. */
interface Input {
  path: string;
  source: string;
  mode: number;
  /** .ko.xz modules go in decompressed: busybox insmod then needs no xz support. */
  xz?: boolean;
}

function hostFile(path: string, mode?: number): Input {
  const source = realpathSync(path);
  return { path, source, mode: mode ?? statSync(source).mode & 0o7777 };
}

function collectInputs(cacheDir: string, log: (line: string) => void) {
  const debs = new DebianPackageCache(cacheDir, log);
  debs.lookUp([L1_KERNEL_PACKAGE, 'busybox-static']); // one apt-cache call for both
  const { pkg: kernel, release } = kernelPackage(debs);
  const busybox = debs.get('busybox-static', 'nested busybox');
  const inputs: Input[] = [];
  const modules = resolveModules(kernel.root, release, L1_MODULES).map(
    (rel) => `/lib/modules/${release}/${rel}`,
  );
  for (const path of modules) {
    inputs.push({
      path: path.replace(/\.xz$/, ''),
      source: join(kernel.root, path),
      mode: 0o644,
      xz: path.endsWith('.xz'),
    });
  }
  inputs.push({ path: BUSYBOX, source: join(busybox.root, 'bin/busybox'), mode: 0o755 });
  const libraries = new Set<string>();
  for (const program of HOST_PROGRAMS) {
    if (!existsSync(program)) throw new Error(`nested: ${program} is not installed`);
    inputs.push(hostFile(program));
    for (const lib of sharedLibraries(program)) libraries.add(lib);
  }
  for (const lib of [...libraries].sort()) inputs.push(hostFile(lib));
  for (const name of QEMU_DATA) {
    const path = join(QEMU_DATA_DIR, name);
    if (!existsSync(path)) throw new Error(`nested: ${path} is missing (qemu-system-data)`);
    inputs.push(hostFile(path, 0o644));
  }
  inputs.push({ path: '/init', source: INIT_SCRIPT, mode: 0o755 });
  return {
    kernel: join(kernel.root, 'boot', `vmlinuz-${release}`),
    release,
    busybox: join(busybox.root, 'bin/busybox'),
    modules: modules.map((m) => m.replace(/\.xz$/, '')),
    inputs,
  };
}

/**
 * The cache key: this builder's own source, the init script, and every input's path, size and
 * mtime (hashing 150 MB of node and QEMU on every run would cost more than it saves).
 */
function inputsKey(kernel: string, inputs: Input[]): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  hash.update(readFileSync(INIT_SCRIPT));
  for (const input of [{ path: '/vmlinuz', source: kernel, mode: 0 }, ...inputs]) {
    const stat = statSync(input.source);
    hash.update(`${input.path}\0${input.source}\0${input.mode}\0${stat.size}\0${stat.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

function readSource(input: Input): Buffer {
  if (!input.xz) return readFileSync(input.source);
  const result = spawnSync('xz', ['-dc', input.source], { maxBuffer: 256 << 20 });
  if (result.error)
    throw new Error(`nested: cannot run xz (install xz-utils): ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`nested: xz -dc ${input.source} failed: ${result.stderr}`);
  return result.stdout;
}

function buildArchive(collected: ReturnType<typeof collectInputs>): Buffer {
  const archive = new CpioArchive();
  for (const dir of [
    '/dev',
    '/proc',
    '/sys',
    '/run',
    '/berth',
    '/etc/nested',
    '/usr/sbin',
    '/sbin',
    '/usr/bin',
  ]) {
    archive.add(dir, { kind: 'directory', mode: 0o755 });
  }
  archive.add('/tmp', { kind: 'directory', mode: 0o1777 });
  archive.add('/root', { kind: 'directory', mode: 0o700 });
  archive.add('/dev/console', { kind: 'char-device', mode: 0o600, major: 5, minor: 1 });
  archive.add('/etc/passwd', {
    kind: 'file',
    mode: 0o644,
    data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'),
  });
  archive.add('/etc/group', { kind: 'file', mode: 0o644, data: Buffer.from('root:x:0:\n') });
  archive.add('/etc/nested/modules', {
    kind: 'file',
    mode: 0o644,
    data: Buffer.from(collected.modules.join('\n') + '\n'),
  });
  for (const input of collected.inputs) {
    archive.add(input.path, { kind: 'file', mode: input.mode, data: readSource(input) });
  }
  const applets = spawnSync(collected.busybox, ['--list-full'], { encoding: 'utf8' });
  if (applets.status !== 0) throw new Error('nested: cannot list the busybox applets');
  for (const applet of applets.stdout.split('\n').filter(Boolean).sort()) {
    const name = applet.split('/').pop()!;
    if (!SKIPPED_APPLETS.has(name) && !archive.has(`/${applet}`))
      archive.add(`/${applet}`, { kind: 'symlink', target: BUSYBOX });
  }
  return archive.toBuffer();
}

/**
 * Builds build/nested/initramfs.cpio unless the one there was built from the same inputs.
 * Uncompressed on purpose: under TCG, gunzip of 150 MB in the L1 kernel costs seconds on every
 * boot; an uncompressed cpio only has to be copied.
 */
export function buildL1Initramfs(
  options: { outDir?: string; cacheDir?: string; log?: (line: string) => void } = {},
): L1Initramfs {
  const outDir = options.outDir ?? join(buildPaths.root, 'nested');
  const log = options.log ?? (() => {});
  const collected = collectInputs(options.cacheDir ?? buildPaths.cache, log);
  const key = inputsKey(collected.kernel, collected.inputs);
  const initramfs = join(outDir, 'initramfs.cpio');
  const keyFile = join(outDir, 'inputs.sha256');
  const result = { kernel: collected.kernel, initramfs, release: collected.release };
  if (
    existsSync(initramfs) &&
    existsSync(keyFile) &&
    readFileSync(keyFile, 'utf8').trim() === key
  ) {
    return { ...result, rebuilt: false, bytes: statSync(initramfs).size };
  }
  log(`nested: building the L1 initramfs (${collected.inputs.length} files)`);
  const cpio = buildArchive(collected);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${initramfs}.tmp`, cpio);
  renameSync(`${initramfs}.tmp`, initramfs);
  writeFileSync(keyFile, `${key}\n`);
  return { ...result, rebuilt: true, bytes: cpio.length };
}
