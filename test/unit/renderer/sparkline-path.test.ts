// Sparkline geometry (renderer/src/components/sparkline-path.ts): samples fill from the right
// edge, values map onto the height (clamped), gaps break the line, a flat range sits mid-height.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sparklinePaths } from '../../../renderer/src/components/sparkline-path.ts';

const box = { width: 100, height: 50, capacity: 11, min: 0, max: 100 };

test('no samples draw nothing; one sample is a point without area', () => {
  assert.deepEqual(sparklinePaths([], box), { line: '', area: '' });
  assert.deepEqual(sparklinePaths([50], box), { line: 'M100 25', area: '' });
});

test('samples sit one slot apart, the newest at the right edge', () => {
  const { line, area } = sparklinePaths([0, 50, 100], box);
  assert.equal(line, 'M80 50 L90 25 L100 0');
  assert.equal(area, 'M80 50 L90 25 L100 0 L100 50 L80 50 Z');
});

test('a full chart spans the whole width, and older samples scroll off', () => {
  const values = Array.from({ length: 15 }, (_, i) => i * 10);
  const { line } = sparklinePaths(values, box);
  assert.ok(line.startsWith('M0 '), line);
  assert.ok(line.endsWith('L100 0'), line);
  assert.equal(line.split(/[ML]/).filter(Boolean).length, 11);
});

test('values outside min..max are clamped to the edges', () => {
  assert.equal(sparklinePaths([-20, 500], box).line, 'M90 50 L100 0');
});

test('a null breaks the line into separate runs', () => {
  const { line, area } = sparklinePaths([10, 20, null, 30, 40], box);
  assert.equal(line, 'M60 45 L70 40 M90 35 L100 30');
  assert.equal((area.match(/Z/g) ?? []).length, 2);
});

test('a flat range (max = min) draws at mid-height', () => {
  assert.equal(sparklinePaths([3, 3], { ...box, min: 3, max: 3 }).line, 'M90 25 L100 25');
});

test('coordinates are rounded to hundredths', () => {
  const { line } = sparklinePaths([1, 2], { width: 10, height: 3, capacity: 4, min: 0, max: 3 });
  assert.equal(line, 'M6.67 2 L10 1');
});
