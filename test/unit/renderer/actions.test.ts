// The buttons' actions (renderer/src/state/actions.ts): lifecycle calls mark themselves in
// flight and keep their failure (with the serial tail) for the banner; a refused settings change
// hands each schema message to its field; reset and rollback report what happened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, ErrorCode } from '../../../core/api/errors.ts';
import type { SettingsChange } from '../../../core/api/types.ts';
import { createActions, describeChange } from '../../../renderer/src/state/actions.ts';
import { createStores } from '../../../renderer/src/state/stores.ts';
import { FakeApi, settle } from './fake-api.ts';
import { settingsView, status } from './fixtures.ts';

function setup() {
  const api = new FakeApi();
  const stores = createStores();
  return { api, stores, actions: createActions(api, stores) };
}

const change = (overrides: Partial<SettingsChange> = {}): SettingsChange => ({
  changed: true,
  revision: 4,
  settings: settingsView().settings,
  diff: [],
  restartNeeded: ['cpus'],
  applied: false,
  ...overrides,
});

test('a lifecycle call is in flight until it answers, then its status is shown', async () => {
  const { api, stores, actions } = setup();
  let answer!: (value: ReturnType<typeof status>) => void;
  api.handle('start', () => new Promise((resolve) => (answer = resolve)));
  const done = actions.lifecycle('start');
  assert.equal(stores.vm.getState().action, 'start');
  await settle();
  answer(status({ state: 'running', since: 9 }));
  await done;
  assert.equal(stores.vm.getState().action, null);
  assert.equal(stores.vm.getState().status?.state, 'running');
  assert.deepEqual(api.callsOf('start'), [{}]);
});

test('a failed start keeps its message and serial tail for the dashboard', async () => {
  const { api, stores, actions } = setup();
  api.handle('start', () => {
    throw new ApiError(ErrorCode.vmFailed, 'the VM did not boot', { serialTail: 'Kernel panic' });
  });
  await actions.lifecycle('start');
  assert.deepEqual(stores.vm.getState().failure, {
    action: 'start',
    message: 'the VM did not boot',
    serialTail: 'Kernel panic',
  });
});

test('settings are sent from the gui with apply as asked', async () => {
  const { api, actions } = setup();
  api.handle('settings.set', () => change());
  const outcome = await actions.saveSettings({ cpus: 4 }, true);
  assert.equal(outcome.ok, true);
  assert.deepEqual(api.callsOf('settings.set'), [
    { changes: { cpus: 4 }, source: 'gui', apply: true },
  ]);
});

test('a refused change returns the schema’s message per field and no notice', async () => {
  const { api, stores, actions } = setup();
  const message = 'memory must be between 512 and 15104 MiB in steps of 256 (got 100)';
  api.handle('settings.set', () => {
    throw new ApiError(ErrorCode.invalidParams, message, {
      errors: [{ field: 'memoryMiB', message }],
    });
  });
  const outcome = await actions.saveSettings({ memoryMiB: 100 }, false);
  assert.deepEqual(outcome, { ok: false, fields: { memoryMiB: message }, message });
  assert.equal(stores.notices.getState().notices.length, 0);
});

test('a failure without field errors becomes a notice', async () => {
  const { api, stores, actions } = setup();
  api.handle('settings.set', () => {
    throw new ApiError(ErrorCode.settingsStore, 'the settings store is damaged');
  });
  const outcome = await actions.saveSettings({ cpus: 2 }, false);
  assert.equal(outcome.ok, false);
  assert.match(stores.notices.getState().notices[0]!.text, /damaged/);
});

test('rollback asks for no restart and says how the change applies', async () => {
  const { api, stores, actions } = setup();
  stores.vm.setState({ status: status({ state: 'running' }) });
  api.handle('settings.rollback', () => change({ revision: 7 }));
  await actions.rollback(2);
  assert.deepEqual(api.callsOf('settings.rollback'), [
    { revision: 2, source: 'gui', apply: false },
  ]);
  assert.equal(
    stores.notices.getState().notices[0]!.text,
    "Revision 2's settings are now revision 7. Restart the VM to apply the new CPUs.",
  );
});

test('reset confirms, clears its progress at the end, and names the backup', async () => {
  const { api, stores, actions } = setup();
  stores.vm.setState({ progress: { reset: { operation: 'reset', step: 'x', percent: 50 } } });
  api.handle('reset', () => ({
    backup: '/d/backups/settings-1.json',
    settings: settingsView().settings,
    revision: 5,
    restarted: true,
  }));
  const result = await actions.reset();
  assert.equal(result?.revision, 5);
  assert.deepEqual(api.callsOf('reset'), [{ confirm: true, source: 'gui' }]);
  assert.equal(stores.vm.getState().progress.reset, undefined);
  assert.equal(stores.vm.getState().action, null);
  assert.match(stores.notices.getState().notices[0]!.text, /settings-1\.json/);
});

test('describeChange says whether the change applies now, at a restart, or at the next start', () => {
  assert.match(describeChange(change({ changed: false }), 'running'), /Nothing changed/);
  assert.equal(
    describeChange(change({ applied: true }), 'running'),
    'Saved as revision 4. The VM restarted with the new settings.',
  );
  assert.equal(
    describeChange(change({ restartNeeded: ['cpus', 'memoryMiB'] }), 'running'),
    'Saved as revision 4. Restart the VM to apply the new CPUs and memory.',
  );
  assert.equal(
    describeChange(change(), 'stopped'),
    'Saved as revision 4. The change applies when the VM next starts.',
  );
});
