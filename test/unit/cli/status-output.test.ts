// `berth status` in words (core/cli/output.ts describeStatus): the engine's docker line while its
// socket is served, then one line per published port; nothing of the engine otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmStatus } from '../../../core/api/types.ts';
import { describeStatus } from '../../../core/cli/output.ts';

const running: VmStatus = {
  state: 'running',
  since: 1000,
  uptimeMs: 65_000,
  backend: 'kvm',
  backendReason: 'KVM runs guests at hardware speed',
  vmmPid: 42,
  pendingRestart: [],
  dataDirectory: '/home/u/.local/share/berth',
};

test('the docker line, then one line per published port, in the order given', () => {
  const text = describeStatus({
    ...running,
    engine: {
      socket: '/home/u/.local/share/berth/run/docker.sock',
      context: 'berth',
      publishedPorts: [
        { port: 8080, privatePort: 80, containerName: 'web' },
        { port: 9000, privatePort: 9000, containerName: 'api' },
      ],
    },
  });
  const lines = text.split('\n');
  const docker = lines.findIndex((line) => line.startsWith('docker:'));
  assert.deepEqual(lines.slice(docker), [
    'docker:   unix:///home/u/.local/share/berth/run/docker.sock (docker --context berth ...)',
    'port:     127.0.0.1:8080 -> 80/tcp (web)',
    'port:     127.0.0.1:9000 -> 9000/tcp (api)',
  ]);
  assert.equal(lines[docker - 1], 'data:     /home/u/.local/share/berth');
});

test('no published ports: the docker line alone', () => {
  const text = describeStatus({
    ...running,
    engine: { socket: '/s/docker.sock', context: 'berth', publishedPorts: [] },
  });
  assert.match(text, /^docker: {3}unix:\/\/\/s\/docker\.sock \(docker --context berth \.\.\.\)$/m);
  assert.doesNotMatch(text, /^port:/m);
});

test('no engine (stopped, or its socket not served): no docker or port lines', () => {
  const text = describeStatus({ ...running, state: 'stopped', uptimeMs: undefined });
  assert.doesNotMatch(text, /^docker:|^port:/m);
});
