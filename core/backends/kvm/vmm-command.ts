// How the VMM process is started: the bundle (build/vmm/vmm-main.js, scripts/build-vmm.mjs) when
// it is there and no source it was made from has changed since, else the TypeScript entry under
// tsx. The bundle loads in a fraction of tsx's time, which matters most where starting a process
// is slow (emulated CPUs); the fallback keeps a checkout with edited sources honest.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../paths.ts';

export interface VmmCommand {
  /** Node's arguments before the VMM's own. */
  args: string[];
  /** Why this one ("bundle", or why not). */
  source: string;
}

export function vmmCommand(root = projectRoot): VmmCommand {
  const bundle = join(root, 'build/vmm/vmm-main.js');
  const inputsPath = join(root, 'build/vmm/inputs.json');
  const stale = staleness(bundle, inputsPath, root);
  if (stale === null) return { args: [bundle], source: 'bundle' };
  return { args: ['--import', 'tsx', join(root, 'core/backends/kvm/vmm-main.ts')], source: stale };
}

/** null when the bundle is current; else why it cannot be used. */
function staleness(bundle: string, inputsPath: string, root: string): string | null {
  if (!existsSync(bundle) || !existsSync(inputsPath)) {
    return 'tsx: no VMM bundle (node scripts/build-vmm.mjs)';
  }
  let inputs: unknown;
  try {
    inputs = JSON.parse(readFileSync(inputsPath, 'utf8'));
  } catch {
    return 'tsx: the VMM bundle has no readable inputs.json';
  }
  if (!Array.isArray(inputs)) return 'tsx: the VMM bundle has no readable inputs.json';
  const built = statSync(bundle).mtimeMs;
  for (const input of inputs) {
    const path = join(root, String(input));
    if (!existsSync(path) || statSync(path).mtimeMs > built) {
      return `tsx: the VMM bundle is older than ${String(input)}`;
    }
  }
  return null;
}
