// The smoke boot as part of `npm test` (`npm run smoke` prints the same run as one line).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSmoke, smokeLine } from './smoke.ts';

test(
  'the factory image boots, keeps /var across a clean poweroff, and boots again',
  { timeout: 600_000 },
  async () => {
    const result = await runSmoke((line) => console.log(line));
    console.log(smokeLine(result));
    assert.ok(
      result.dataKept,
      'the file written on /var before poweroff is there after the second boot',
    );
    assert.ok(result.firstGuestUptime > 0 && result.secondGuestUptime > 0);
  },
);
