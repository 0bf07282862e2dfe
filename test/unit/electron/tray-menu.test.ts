// The tray menu model (electron/tray-menu.ts) for every VM state: icon, tooltip, which items
// exist and which are enabled, and what the page items open.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmState } from '../../../core/api/types.ts';
import {
  TRAY_ICONS,
  trayItemPage,
  trayMenuModel,
  type TrayActionId,
  type TrayMenuModel,
} from '../../../electron/tray-menu.ts';

const STATES: VmState[] = ['stopped', 'starting', 'running', 'stopping', 'error'];

function enabled(model: TrayMenuModel): Record<string, boolean> {
  return Object.fromEntries(
    model.items.filter((item) => item.kind === 'action').map((item) => [item.id, item.enabled]),
  );
}

function label(model: TrayMenuModel, id: TrayActionId): string {
  const item = model.items.find((entry) => entry.id === id);
  assert.ok(item, `item ${id}`);
  return item.label;
}

test('every state has an icon of its own, named after it', () => {
  for (const state of STATES) assert.equal(trayMenuModel(state).icon, state);
  assert.deepEqual([...TRAY_ICONS].sort(), [...STATES].sort());
});

test('the items, in order, are the same in every state', () => {
  const expected = [
    'status',
    'separator-1',
    'start',
    'stop',
    'restart',
    'separator-2',
    'dashboard',
    'console',
    'settings',
    'separator-3',
    'reset',
    'separator-4',
    'quit',
  ];
  for (const state of STATES) {
    assert.deepEqual(
      trayMenuModel(state).items.map((item) => item.id),
      expected,
      state,
    );
  }
});

test('separators are separators: no label, never enabled', () => {
  for (const item of trayMenuModel('running').items.filter((i) => i.id.startsWith('separator'))) {
    assert.deepEqual(
      { kind: item.kind, label: item.label, enabled: item.enabled },
      {
        kind: 'separator',
        label: '',
        enabled: false,
      },
    );
  }
});

const EXPECTED: Record<
  VmState,
  { start: boolean; stop: boolean; restart: boolean; reset: boolean }
> = {
  stopped: { start: true, stop: false, restart: false, reset: true },
  starting: { start: false, stop: true, restart: false, reset: true },
  running: { start: false, stop: true, restart: true, reset: true },
  stopping: { start: false, stop: false, restart: false, reset: false },
  error: { start: true, stop: false, restart: true, reset: true },
};

for (const state of STATES) {
  test(`${state}: Start/Stop/Restart/Reset enabled as the state allows`, () => {
    const model = trayMenuModel(state);
    const flags = enabled(model);
    const want = EXPECTED[state];
    assert.deepEqual(
      { start: flags.start, stop: flags.stop, restart: flags.restart, reset: flags.reset },
      want,
    );
    // The pages and Quit are always there; the status line is never a command.
    assert.equal(flags.dashboard, true);
    assert.equal(flags.console, true);
    assert.equal(flags.settings, true);
    assert.equal(flags.quit, true);
    assert.equal(flags.status, false);
  });

  test(`${state}: the tooltip and the status line name the state`, () => {
    const model = trayMenuModel(state);
    const status = state === 'error' ? 'The VM has failed' : `The VM is ${state}`;
    assert.equal(label(model, 'status'), status);
    assert.equal(model.tooltip.split('\n')[0], `Berth: t${status.slice(1)}`);
  });
}

test('starting: the tooltip shows the boot step and how far it is', () => {
  const model = trayMenuModel('starting', {
    progress: { step: 'booting the kernel', percent: 42.4 },
  });
  assert.equal(model.tooltip, 'Berth: the VM is starting\nbooting the kernel (42%)');
  // Progress belongs to a start; in another state it is not shown.
  const running = trayMenuModel('running', { progress: { step: 'booting', percent: 90 } });
  assert.equal(running.tooltip, 'Berth: the VM is running');
});

test('error: the tooltip carries the first line of the error, cut to length', () => {
  const model = trayMenuModel('error', { errorMessage: 'QEMU exited with code 1\nmore detail' });
  assert.equal(model.tooltip, 'Berth: the VM has failed\nQEMU exited with code 1');
  const long = trayMenuModel('error', { errorMessage: 'x'.repeat(500) });
  const detail = long.tooltip.split('\n')[1]!;
  assert.equal(detail.length, 120);
  assert.ok(detail.endsWith('…'));
});

test('running with settings waiting for a restart: Restart says it applies them', () => {
  const model = trayMenuModel('running', { pendingRestart: ['cpus', 'memoryMiB'] });
  assert.equal(label(model, 'restart'), 'Restart (apply settings)');
  assert.match(model.tooltip, /Restart to apply: cpus, memoryMiB/);
  assert.equal(label(trayMenuModel('running'), 'restart'), 'Restart');
});

test('quitting: every command is disabled while the VM stops', () => {
  for (const state of STATES) {
    const model = trayMenuModel(state, { quitting: true });
    assert.deepEqual(
      Object.values(enabled(model)).filter(Boolean),
      [],
      `${state}: nothing enabled`,
    );
    assert.equal(label(model, 'quit'), 'Quitting…');
    assert.equal(label(model, 'status'), 'Berth is stopping the VM to quit');
  }
});

test('the page items open their page; the commands open none', () => {
  assert.equal(trayItemPage('dashboard'), 'dashboard');
  assert.equal(trayItemPage('console'), 'console');
  assert.equal(trayItemPage('settings'), 'settings');
  assert.equal(trayItemPage('reset'), 'reset');
  for (const id of ['status', 'start', 'stop', 'restart', 'quit'] as const) {
    assert.equal(trayItemPage(id), null, id);
  }
});
