// The dashboard's numbers come from what the guest prints; check the arithmetic on real output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuestStats } from '../../../core/supervisor/guest-stats.ts';

const disk = { path: '/d', sizeBytes: 64 << 30, allocatedBytes: 5_025_792 };
const output = (user: number, idle: number) =>
  `cpu  ${user} 0 100 ${idle} 50 0 10 0 0 0\n` +
  'MemTotal:        2021740 kB\nMemAvailable:    1898848 kB\n' +
  '/dev/vda          65478188        44  65461760   0% /var\n';

test('the first reading has no CPU figure; the next is the busy share between the two', () => {
  const stats = new GuestStats();
  const first = stats.parse(output(1000, 9000), disk, 1);
  assert.equal(first.cpuPercent, null);
  assert.deepEqual(first.memory, { totalMiB: 1974, usedMiB: 120 });
  assert.deepEqual(first.disk, {
    sizeBytes: 65478188 * 1024,
    usedBytes: 44 * 1024,
    allocatedBytes: 5_025_792,
  });
  // 300 more busy ticks (user) of 1000 more in total: 30 %.
  assert.equal(stats.parse(output(1300, 9700), disk, 2).cpuPercent, 30);
});

test('output that is not what the command prints is an error, not zeros', () => {
  assert.throws(() => new GuestStats().parse('sh: df: not found\n', disk), /unexpected statistics/);
});
