/// <reference lib="dom" />
// The dashboard in browser mode, driven like a user with Debian's chromium (playwright-core), on
// a real VM: Start (and the Containers card's socket), the console, settings with Apply &
// restart, a refused value, and reset.
// Screenshots of every page go to test-results/ui-*.png. Two figures are printed: first paint,
// and how long the page takes to show a state change after the supervisor made it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ApiClient } from '../../core/api/client.ts';
import type { SettingsView, VmStatus } from '../../core/api/types.ts';
import { connectControl } from '../../core/cli/control-client.ts';
import { projectRoot } from '../../core/paths.ts';
import { BerthHome, waitForOutput } from '../support/berth-cli.ts';

const RESULTS = join(projectRoot, 'test-results');
const VM_DEADLINE_MS = 150_000;
const STEP = { timeout: 300_000 };

const berth = new BerthHome();
const host = berth.spawn(['host', '--dashboard']);
let url = '';
let browser: Browser;
let page: Page;
let api: ApiClient;
/** When the supervisor changed state (its clock), to compare with when the page showed it. */
const serverStates: { to: string; at: number }[] = [];

before(async () => {
  const printed = await waitForOutput(host, /dashboard at (http:\/\/\S+)/, 60_000);
  url = /dashboard at (http:\/\/\S+)/.exec(printed)![1]!;
  api = (await connectControl(berth.paths.controlSocket))!;
  api.on('state', ({ to, at }) => serverStates.push({ to, at }));
  await api.call('subscribe', { events: ['state'] });
  // Small and distinct from the defaults, so the cpus=2 change is visible in the guest.
  await api.call('settings.set', { changes: { cpus: 1, memoryMiB: 1024 }, source: 'cli' });
  mkdirSync(RESULTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Every text the state badge shows, with the time it appeared (the page's Date.now()).
  await page.addInitScript(() => {
    const seen: { state: string; t: number }[] = [];
    (window as unknown as { __berthStates: typeof seen }).__berthStates = seen;
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid="vm-state"]')?.textContent ?? '';
      if (text && seen.at(-1)?.state !== text) seen.push({ state: text, t: Date.now() });
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  api?.close();
  host.kill('SIGTERM');
  await new Promise((resolve) => host.once('exit', resolve));
  await berth.dispose();
});

/** Waits for the Dashboard's state badge to show `state` (the badge is on the Dashboard). */
async function vmState(state: string, timeout = VM_DEADLINE_MS): Promise<void> {
  await open('Dashboard');
  try {
    await page
      .getByTestId('vm-state')
      .filter({ hasText: new RegExp(`^${state}$`) })
      .waitFor({ timeout });
  } catch (error) {
    await page.screenshot({ path: join(RESULTS, `ui-failure-${state}.png`) });
    throw new Error(
      `the dashboard never showed ${state}: ${(error as Error).message}\n${berth.serialTail()}`,
    );
  }
}

async function open(name: string): Promise<void> {
  await page.getByRole('link', { name, exact: true }).click();
}

/** Types a command in the VM console and waits for a line of its output to match. */
async function inConsole(command: string, expected: RegExp): Promise<void> {
  const consoleView = page.getByTestId('vm-console');
  const rows = () => consoleView.locator('.xterm-rows').innerText();
  // The shell's prompt first, as a user waits for it. If the session could not open (the
  // console then says "press Enter to try again"), Enter is what a user would press.
  for (let attempt = 0; !/# \s*$/.test(await rows()); attempt++) {
    if (attempt === 100) {
      await page.screenshot({ path: join(RESULTS, 'ui-failure-console.png') });
      throw new Error(`no shell prompt in the console: ${JSON.stringify(await rows())}`);
    }
    if (attempt > 0 && attempt % 30 === 0) {
      await consoleView.click();
      await page.keyboard.press('Enter');
    }
    await sleep(200);
  }
  await consoleView.click();
  await page.keyboard.type(`${command}\n`);
  const deadline = Date.now() + 30_000;
  while (!expected.test(await rows())) {
    if (Date.now() > deadline) {
      throw new Error(`${command}: no ${expected} in the console: ${JSON.stringify(await rows())}`);
    }
    await sleep(100);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('first paint, then Start shows running', STEP, async () => {
  await page.goto(url);
  const firstPaint = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        new PerformanceObserver((list) => {
          const entry = list.getEntriesByName('first-contentful-paint')[0];
          if (entry) resolve(entry.startTime);
        }).observe({ type: 'paint', buffered: true });
        setTimeout(() => resolve(-1), 5000);
      }),
  );
  const firstData = await page.evaluate(
    () => performance.getEntriesByName('berth-first-data')[0]?.startTime ?? -1,
  );
  console.log(
    `ui: first contentful paint ${Math.round(firstPaint)} ms, first status shown ${Math.round(firstData)} ms`,
  );
  await vmState('stopped', 10_000);
  await page.screenshot({ path: join(RESULTS, 'ui-dashboard-stopped.png') });
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await vmState('running');
  // The Containers card: the engine's socket, served on the host once the VM runs.
  const socket = page.getByTestId('engine-socket');
  await socket.waitFor({ timeout: 30_000 });
  assert.equal(await socket.innerText(), berth.paths.dockerSocket);
  await page.screenshot({ path: join(RESULTS, 'ui-dashboard-running.png') });
});

test('Console: uname -a prints Linux', STEP, async () => {
  await open('Console');
  await inConsole('uname -a', /Linux berth/);
  await page.screenshot({ path: join(RESULTS, 'ui-console.png') });
});

test('Settings: CPUs 2, Apply & restart, and nproc in the console prints 2', STEP, async () => {
  const pidBefore = (await api.call('status')).vmmPid;
  await open('Settings');
  await page.getByLabel('CPUs').fill('2');
  await page.getByRole('button', { name: 'Apply & restart' }).click();
  for (let i = 0; i < 300; i++) {
    const status: VmStatus = await api.call('status');
    if (status.state === 'running' && status.vmmPid !== pidBefore) break;
    await sleep(200);
  }
  await vmState('running');
  await page.screenshot({ path: join(RESULTS, 'ui-settings.png') });
  await open('Console');
  await inConsole('nproc', /nproc\s*\n2\s*\n/);
});

test(
  'Settings: an invalid memory value shows the schema message and changes nothing',
  STEP,
  async () => {
    const before: SettingsView = await api.call('settings.get');
    await open('Settings');
    await page.getByLabel('Memory (MiB)').fill('100');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const message = page.getByTestId('error-memoryMiB');
    await message.waitFor({ timeout: 10_000 });
    assert.match(
      await message.innerText(),
      /memory must be between 512 and \d+ MiB in steps of 256 \(got 100\)/,
    );
    await page.screenshot({ path: join(RESULTS, 'ui-settings-invalid.png') });
    const afterRefusal: SettingsView = await api.call('settings.get');
    assert.equal(afterRefusal.revision, before.revision);
    assert.deepEqual(afterRefusal.settings, before.settings);
  },
);

test('Logs shows the serial console', STEP, async () => {
  await open('Logs');
  await page.getByText('BERTH-READY').first().waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(RESULTS, 'ui-logs.png') });
});

test('Reset to factory: confirm, and a file made before is gone', STEP, async () => {
  await berth.ok(['exec', '--', 'sh', '-c', 'echo before > /var/made-before && sync']);
  await open('Settings');
  await page.getByRole('button', { name: 'Reset to factory…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await page.screenshot({ path: join(RESULTS, 'ui-reset-dialog.png') });
  const resetDone = new Promise<void>((resolve) =>
    api.on('progress', (p) => p.operation === 'reset' && p.percent === 100 && resolve()),
  );
  await api.call('subscribe', { events: ['progress'] });
  await dialog.getByRole('button', { name: 'Reset', exact: true }).click();
  await resetDone;
  await vmState('running');
  const gone = await berth.run(['exec', '--', 'test', '-e', '/var/made-before']);
  assert.equal(gone.code, 1, 'the file made before the reset is gone');
  const view: SettingsView = await api.call('settings.get');
  assert.equal(view.settings.memoryMiB, Math.min(2048, view.limits.memoryMiB.max));
});

test('Stop and Start on the Dashboard: each state change shows within 200 ms', STEP, async () => {
  await open('Dashboard');
  const from = serverStates.length;
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await vmState('stopped');
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await vmState('running');
  const shown: { state: string; t: number }[] = await page.evaluate(
    () => (window as unknown as { __berthStates: { state: string; t: number }[] }).__berthStates,
  );
  const delays = serverStates.slice(from).map(({ to, at }) => {
    const seen = shown.find((s) => s.state === to && s.t >= at - 5);
    return { to, ms: seen ? seen.t - at : null };
  });
  console.log(`ui: state change to screen: ${JSON.stringify(delays)}`);
  assert.deepEqual(
    delays.map((d) => d.to),
    ['stopping', 'stopped', 'starting', 'running'],
  );
  for (const { to, ms } of delays) assert.ok(ms !== null, `the page showed ${to}`);
});
