// Feeding the stores (renderer/src/state/sync.ts): a full read after each connect, events applied
// at once and followed by a status refresh, the first-data mark once, quiet while disconnected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotConnectedError } from '../../../renderer/src/api/connection.ts';
import { createStores } from '../../../renderer/src/state/stores.ts';
import { FIRST_DATA_MARK, bindStores } from '../../../renderer/src/state/sync.ts';
import { FakeApi, settle } from './fake-api.ts';
import { engine, settingsView, status } from './fixtures.ts';

function setup() {
  const api = new FakeApi();
  const stores = createStores();
  const marks: string[] = [];
  const unbind = bindStores(api, stores, (name) => marks.push(name));
  return { api, stores, marks, unbind };
}

test('each connect reads status, settings, history and the log’s last 500 lines', async () => {
  const { api, stores, marks } = setup();
  api
    .handle('status', () => status({ state: 'running', since: 5 }))
    .handle('settings.get', () => settingsView())
    .handle('settings.history', () => [])
    .handle('logs', () => ({ text: 'boot\n', path: '/x/serial.log' }));
  api.connect();
  await settle();
  assert.deepEqual(api.callsOf('logs'), [{ lines: 500 }]);
  assert.equal(stores.vm.getState().status?.state, 'running');
  assert.equal(stores.settings.getState().view?.revision, 3);
  assert.deepEqual(stores.serial.getState(), {
    text: 'boot\n',
    path: '/x/serial.log',
    loaded: true,
  });
  api.connect();
  await settle();
  assert.deepEqual(marks, [FIRST_DATA_MARK], 'marked once, at the first status');
});

test('a state event shows at once, then the status is fetched again', async () => {
  const { api, stores } = setup();
  api.emit('state', { from: 'stopped', to: 'starting', at: 10 });
  assert.equal(stores.vm.getState().status?.state, 'starting', 'applied synchronously');
  assert.equal(api.callsOf('status').length, 1);
});

test('a status answer older than an applied event does not undo it', async () => {
  const { api, stores } = setup();
  api.handle('status', () => status({ state: 'starting', since: 10 }));
  api.emit('state', { from: 'starting', to: 'running', at: 20 });
  await settle();
  assert.equal(stores.vm.getState().status?.state, 'running');
});

test('progress, serial and settings events reach their stores', async () => {
  const { api, stores } = setup();
  api.handle('settings.history', () => []);
  stores.settings.setState({ view: settingsView() });
  stores.vm.setState({ status: status() });
  api.emit('progress', { operation: 'start', step: 'booting the guest', percent: 30 });
  api.emit('serial', { text: 'hello\n' });
  api.emit('settings', {
    revision: 4,
    settings: { cpus: 1, memoryMiB: 1024, diskGiB: 64, storageDriver: 'overlay2' },
    pendingRestart: ['cpus', 'memoryMiB'],
  });
  assert.equal(stores.vm.getState().progress.start?.step, 'booting the guest');
  assert.equal(stores.serial.getState().text, 'hello\n');
  assert.equal(stores.settings.getState().view?.settings.cpus, 1);
  assert.deepEqual(stores.vm.getState().status?.pendingRestart, ['cpus', 'memoryMiB']);
  assert.equal(api.callsOf('settings.history').length, 1, 'history is read again');
  await settle();
});

test('engine events update the status’s engine without a status call', () => {
  const { api, stores } = setup();
  stores.vm.setState({ status: status({ state: 'running', since: 50 }) });
  const web = { port: 8080, privatePort: 80, containerName: 'web' };
  api.emit('engine', { engine: engine() });
  assert.deepEqual(stores.vm.getState().status?.engine, engine());
  api.emit('engine', { engine: engine([web]) });
  assert.deepEqual(stores.vm.getState().status?.engine?.publishedPorts, [web]);
  assert.equal(stores.vm.getState().status?.state, 'running');
  api.emit('engine', { engine: null });
  assert.equal(stores.vm.getState().status?.engine, undefined);
  assert.equal(api.callsOf('status').length, 0, 'no polling: the event is the news');
});

test('a status answer brings the engine; a stop removes it before the next answer', async () => {
  const { api, stores } = setup();
  const web = { port: 8080, privatePort: 80, containerName: 'web' };
  api.handle('status', () => status({ state: 'running', since: 5, engine: engine([web]) }));
  api.connect();
  await settle();
  assert.deepEqual(stores.vm.getState().status?.engine?.publishedPorts, [web]);
  api.handle('status', () => new Promise(() => {}));
  api.emit('state', { from: 'running', to: 'stopping', at: 10 });
  assert.equal(stores.vm.getState().status?.engine, undefined);
});

test('a failed read is a notice, except while disconnected', async () => {
  const { api, stores } = setup();
  api.handle('status', () => {
    throw new NotConnectedError();
  });
  api.handle('logs', () => {
    throw new Error('permission denied');
  });
  api.connect();
  await settle();
  const notices = stores.notices.getState().notices.map((n) => n.text);
  assert.deepEqual(notices, ['Could not read the serial log: permission denied']);
});

test('unbinding removes every listener', () => {
  const { api, unbind } = setup();
  unbind();
  assert.equal(api.listenerCount('state'), 0);
  assert.equal(api.listenerCount('serial'), 0);
});
