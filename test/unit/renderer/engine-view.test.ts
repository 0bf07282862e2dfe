// What the dashboard's Containers card shows (renderer/src/components/engine-view.ts): nothing
// unless the VM runs, "connecting" until the socket is served, then the socket, the docker
// command to copy, and each published port with its link to 127.0.0.1.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineView } from '../../../renderer/src/components/engine-view.ts';
import { engine, status } from './fixtures.ts';

test('hidden unless the VM runs, whatever the engine says', () => {
  assert.deepEqual(engineView(null), { kind: 'hidden' });
  for (const state of ['stopped', 'starting', 'stopping', 'error'] as const) {
    assert.deepEqual(engineView(status({ state, engine: engine() })), { kind: 'hidden' }, state);
  }
});

test('running before the socket is served: connecting', () => {
  assert.deepEqual(engineView(status({ state: 'running' })), { kind: 'connecting' });
});

test('served: the socket, the command to copy, no ports', () => {
  assert.deepEqual(engineView(status({ state: 'running', engine: engine([], '/h/docker.sock') })), {
    kind: 'served',
    socket: '/h/docker.sock',
    command: 'docker --context berth ps',
    ports: [],
  });
});

test('each published port: its container, its link and host → container, in order', () => {
  const view = engineView(
    status({
      state: 'running',
      engine: engine([
        { port: 8080, privatePort: 80, containerName: 'web' },
        { port: 9000, privatePort: 9001, containerName: 'api' },
      ]),
    }),
  );
  assert.equal(view.kind, 'served');
  assert.deepEqual(view.kind === 'served' && view.ports, [
    { port: 8080, containerName: 'web', url: 'http://127.0.0.1:8080/', mapping: '8080 → 80/tcp' },
    { port: 9000, containerName: 'api', url: 'http://127.0.0.1:9000/', mapping: '9000 → 9001/tcp' },
  ]);
});
