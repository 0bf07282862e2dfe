// How the VM's status follows events and answers (renderer/src/state/vm-reducers.ts): an event
// applies at once, a stale status answer cannot undo it, progress ends with its state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyEngineEvent,
  applyProgress,
  applySettingsEvent,
  applyStateEvent,
  applyStatus,
  settleProgress,
} from '../../../renderer/src/state/vm-reducers.ts';
import { engine, settingsView, status } from './fixtures.ts';

test('a state event sets the state and its start time at once', () => {
  const next = applyStateEvent(status({ state: 'stopped', since: 10 }), {
    from: 'stopped',
    to: 'starting',
    at: 20,
  });
  assert.equal(next.state, 'starting');
  assert.equal(next.since, 20);
  assert.equal(next.dataDirectory, '/home/user/.local/share/berth', 'the rest is kept');
});

test('an event before any status still gives a usable status', () => {
  const next = applyStateEvent(null, { from: 'stopped', to: 'starting', at: 5 });
  assert.equal(next.state, 'starting');
  assert.deepEqual(next.pendingRestart, []);
});

test('an error event carries its error; leaving error clears it; pid and uptime go with running', () => {
  const error = { message: 'VMM died', exitReason: 'killed by SIGKILL', serialTail: 'panic' };
  const running = status({ state: 'running', vmmPid: 42, uptimeMs: 1000 });
  const failed = applyStateEvent(running, { from: 'running', to: 'error', at: 30, error });
  assert.deepEqual(failed.error, error);
  assert.equal(failed.vmmPid, undefined);
  assert.equal(failed.uptimeMs, undefined);
  const again = applyStateEvent(failed, { from: 'error', to: 'starting', at: 40 });
  assert.equal(again.error, undefined);
});

test('an engine event sets the engine, or removes it with null; the rest is kept', () => {
  const web = { port: 8080, privatePort: 80, containerName: 'web' };
  const running = status({ state: 'running', since: 100, vmmPid: 7 });
  const served = applyEngineEvent(running, { engine: engine() });
  assert.deepEqual(served?.engine, engine());
  assert.equal(served?.vmmPid, 7);
  assert.equal(served?.since, 100, 'an engine change is not a state change');
  const published = applyEngineEvent(served, { engine: engine([web]) });
  assert.deepEqual(published?.engine?.publishedPorts, [web]);
  assert.deepEqual(served?.engine?.publishedPorts, [], 'the old status is not changed');
  const gone = applyEngineEvent(published, { engine: null });
  assert.ok(gone);
  assert.equal('engine' in gone, false);
  assert.equal(applyEngineEvent(null, { engine: engine() }), null, 'nothing to attach it to yet');
});

test('leaving running drops the engine at once; its own event may come later', () => {
  const running = status({ state: 'running', since: 100, engine: engine() });
  assert.equal(
    applyStateEvent(running, { from: 'running', to: 'stopping', at: 200 }).engine,
    undefined,
  );
  assert.equal(
    applyStateEvent(running, { from: 'running', to: 'error', at: 200 }).engine,
    undefined,
  );
  const starting = status({ state: 'starting', since: 100 });
  assert.equal(
    applyStateEvent(starting, { from: 'starting', to: 'running', at: 200 }).engine,
    undefined,
    'running alone says nothing of the engine',
  );
});

test('a status answer replaces the status unless it began before the one shown', () => {
  const shown = status({ state: 'running', since: 100 });
  assert.equal(applyStatus(shown, status({ state: 'starting', since: 50 })), shown);
  const newer = status({ state: 'running', since: 100, vmmPid: 7 });
  assert.equal(applyStatus(shown, newer), newer, 'same state, more detail');
  assert.equal(applyStatus(null, newer), newer);
});

test('progress is kept per operation and ends with the state it leads to', () => {
  let progress = applyProgress({}, { operation: 'start', step: 'booting the guest', percent: 30 });
  progress = applyProgress(progress, {
    operation: 'reset',
    step: 'deleting the data disk',
    percent: 50,
  });
  assert.equal(progress.start?.percent, 30);
  assert.equal(settleProgress(progress, 'starting').start?.percent, 30);
  progress = applyProgress(progress, {
    operation: 'image',
    step: 'fetching busybox-static',
    percent: 25,
  });
  assert.equal(settleProgress(progress, 'starting').image?.percent, 25);
  const settled = settleProgress(progress, 'running');
  assert.equal(settled.start, undefined);
  assert.equal(settled.image, undefined, 'an image build ends with the start it is part of');
  assert.equal(settled.reset?.percent, 50, 'a reset outlives the start inside it');
  assert.equal(
    settleProgress({ stop: { operation: 'stop', step: 's', percent: 1 } }, 'stopped').stop,
    undefined,
  );
});

test('a settings event updates the view it knows, never an older revision over a newer one', () => {
  const view = settingsView({ revision: 3 });
  const event = {
    revision: 4,
    settings: { ...view.settings, cpus: 4 },
    pendingRestart: ['cpus' as const],
  };
  const next = applySettingsEvent(view, event);
  assert.equal(next?.revision, 4);
  assert.equal(next?.settings.cpus, 4);
  assert.deepEqual(next?.pendingRestart, ['cpus']);
  assert.deepEqual(next?.limits, view.limits);
  assert.equal(applySettingsEvent(next, { ...event, revision: 2 }), next);
  assert.equal(applySettingsEvent(null, event), null);
});
