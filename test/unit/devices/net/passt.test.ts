// PasstLink: passt's exit is reported with its last words and passt is restarted; close() ends
// it. A fake passt (a shell script) plays the failing one; the real one, when installed, shows
// that the --fd connection works and that passt ends with the device.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { findPasst, PasstLink, VirtioNetDevice } from '../../../../core/devices/net/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-passt-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a passt that fails is reported with its output, and started again', async () => {
  const fake = join(dir, 'passt');
  writeFileSync(
    fake,
    '#!/bin/sh\necho "Failed to send 12 bytes to syslog" >&2\necho "no such interface" >&2\nexit 3\n',
  );
  chmodSync(fake, 0o755);
  const lines: string[] = [];
  const link = new PasstLink({
    device: new VirtioNetDevice({ mac: '52:54:00:00:00:01' }),
    binary: fake,
    log: (line) => lines.push(line),
  });
  link.start();
  await until('the exit report', () => link.lastExit !== null);
  const report = lines.find((l) => l.includes('exited with code 3'));
  assert.ok(report, lines.join('\n'));
  assert.match(report, /no network until it restarts in 1 s/);
  assert.match(report, /no such interface/);
  assert.ok(!lines.some((l) => l.includes('syslog')), 'the syslog noise is filtered');
  await until('a restart', () => link.starts === 2, 5000);
  await link.close();
});

test('a missing passt is a clear error', () => {
  const env = { PATH: dir, BERTH_PASST: join(dir, 'nowhere') };
  assert.equal(findPasst(env), null);
  const device = new VirtioNetDevice({ mac: '52:54:00:00:00:01' });
  assert.throws(() => new PasstLink({ device, env, log: () => {} }), /passt is not installed/);
});

test(
  'the real passt runs on the socket we hand it and ends with close()',
  { skip: !findPasst() && 'passt is not installed' },
  async () => {
    const lines: string[] = [];
    const link = new PasstLink({
      device: new VirtioNetDevice({ mac: '52:54:00:00:00:01' }),
      log: (line) => lines.push(line),
    });
    link.start();
    // passt prints the addresses it will hand out by DHCP once it runs.
    await until('passt to start', () => lines.some((l) => /DHCP:|assign:/.test(l)));
    const pid = link.pid!;
    assert.ok(link.running);
    await link.close();
    assert.equal(link.running, false);
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(link.lastExit, null, 'an asked-for stop is not a failure');
  },
);
