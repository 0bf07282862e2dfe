// A start needs an intact factory image: a missing or damaged one is built again (in a child
// process, so the host keeps answering), with each step reported for the progress bar.
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { verifyImage } from '../../core/image/manifest.ts';
import { buildPaths } from '../../core/paths.ts';
import { ensureFactoryImage } from '../../core/supervisor/factory-image.ts';

const work = mkdtempSync(join(tmpdir(), 'berth-image-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('an intact image is used as it is, without a build', async () => {
  const steps: string[] = [];
  await ensureFactoryImage(buildPaths.image, (step) => steps.push(step));
  assert.deepEqual(steps, []);
});

test('a missing image is built, with progress from 0 to 100', { timeout: 300_000 }, async () => {
  const dir = join(work, 'missing');
  const seen: [string, number][] = [];
  await ensureFactoryImage(dir, (step, percent) => seen.push([step, percent]));
  const percents = seen.map(([, p]) => p);
  assert.equal(percents[0], 0);
  assert.match(seen[0]![0], /building the factory image \(no factory image in/);
  assert.equal(percents.at(-1), 100);
  assert.deepEqual(
    percents,
    [...percents].sort((a, b) => a - b),
    'progress only goes forward',
  );
  assert.ok(seen.some(([step]) => step === 'fetching busybox-static'));
  assert.equal(verifyImage(dir).name, verifyImage(buildPaths.image).name);
});

test('a damaged image is rebuilt', { timeout: 300_000 }, async () => {
  const dir = join(work, 'damaged');
  cpSync(buildPaths.image, dir, { recursive: true });
  appendFileSync(join(dir, 'initrd.img'), 'x');
  const steps: string[] = [];
  await ensureFactoryImage(dir, (step) => steps.push(step));
  assert.match(steps[0]!, /initrd\.img has sha256/);
  verifyImage(dir);
});
