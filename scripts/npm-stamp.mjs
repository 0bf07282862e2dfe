// A stamp of the npm inputs, so setup can tell in a few milliseconds whether node_modules is
// current. postinstall writes it after every `npm ci`/`npm install`; setup compares it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const NPM_STAMP = 'node_modules/.berth-npm-inputs.sha256';

export function npmInputsHash(root) {
  const hash = createHash('sha256');
  for (const name of ['package.json', 'package-lock.json']) {
    const path = join(root, name);
    hash.update(name).update('\0');
    if (existsSync(path)) hash.update(readFileSync(path));
  }
  return hash.digest('hex');
}

export function writeNpmStamp(root) {
  if (existsSync(join(root, 'node_modules'))) {
    writeFileSync(join(root, NPM_STAMP), npmInputsHash(root));
  }
}
