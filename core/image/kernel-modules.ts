// Kernel modules for the initrd: the spec names modules, depmod (from kmod) works out what they
// depend on, and we return every module file in an order in which each loads after its dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImageSpecError } from './spec.ts';

/** "virtio-blk" and "virtio_blk" are the same module, as modprobe treats them. */
export function moduleName(file: string): string {
  return basename(file)
    .replace(/\.ko(\.(xz|gz|zst))?$/, '')
    .replaceAll('-', '_');
}

/** modules.dep lines: "kernel/a.ko.xz: kernel/b.ko.xz kernel/c.ko.xz" (all dependencies). */
export function parseModulesDep(text: string): Map<string, { file: string; deps: string[] }> {
  const modules = new Map<string, { file: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const file = line.slice(0, colon);
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    modules.set(moduleName(file), { file, deps });
  }
  return modules;
}

export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').filter(Boolean).map(moduleName));
}

/** Module files (relative to lib/modules/<release>) in load order. `names` come from spec.modules. */
export function orderModules(
  names: string[],
  dep: Map<string, { file: string; deps: string[] }>,
  builtin: Set<string>,
  release: string,
): string[] {
  const order: string[] = [];
  const visit = (file: string, chain: string[]) => {
    if (order.includes(file)) return;
    if (chain.includes(file))
      throw new Error(`image: module dependency cycle: ${[...chain, file].join(' -> ')}`);
    const entry = dep.get(moduleName(file));
    for (const d of entry?.deps ?? []) visit(d, [...chain, file]);
    order.push(file);
  };
  names.forEach((name, i) => {
    const key = moduleName(name);
    const entry = dep.get(key);
    if (entry) return visit(entry.file, []);
    const problem = builtin.has(key)
      ? `"${name}" is built into the ${release} kernel; remove it from the list`
      : `no kernel module "${name}" in the ${release} kernel`;
    throw new ImageSpecError(`modules[${i}]`, problem);
  });
  return order;
}

/** Runs depmod on an unpacked kernel package (its .deb has no modules.dep) and orders `names`. */
export function resolveModules(kernelRoot: string, release: string, names: string[]): string[] {
  const dir = join(kernelRoot, 'lib/modules', release);
  const depFile = join(dir, 'modules.dep');
  if (!existsSync(depFile)) {
    const result = spawnSync('depmod', ['-b', kernelRoot, release], { encoding: 'utf8' });
    if (result.error)
      throw new Error(`image: cannot run depmod (install kmod): ${result.error.message}`);
    if (result.status !== 0) throw new Error(`image: depmod failed: ${result.stderr.trim()}`);
  }
  const builtinFile = join(dir, 'modules.builtin');
  const builtin = existsSync(builtinFile)
    ? parseModulesBuiltin(readFileSync(builtinFile, 'utf8'))
    : new Set<string>();
  return orderModules(names, parseModulesDep(readFileSync(depFile, 'utf8')), builtin, release);
}
