// ApiClient (core/api/client.ts) over an in-memory transport: requests on the wire, answers
// matched by id whatever their order, errors as ApiError, notifications to listeners, and what
// happens to calls when the connection goes away.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiClient } from '../../../core/api/client.ts';
import { ApiError } from '../../../core/api/errors.ts';
import { MemoryTransport } from './memory-transport.ts';

function setup() {
  const transport = new MemoryTransport();
  const client = new ApiClient(transport);
  return { transport, client };
}

/** Resolves with what a promise settled to, or 'pending' if it has not settled yet. */
async function peek(promise: Promise<unknown>): Promise<unknown> {
  const marker = Symbol('pending');
  const result = await Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise((resolve) => setImmediate(() => resolve(marker))),
  ]);
  return result === marker ? 'pending' : result;
}

test('a call sends one JSON-RPC request with a new numeric id, the method and params', () => {
  const { transport, client } = setup();
  void client.call('stop', { deadlineMs: 500 });
  void client.call('settings.set', { changes: { cpus: 2 }, apply: true });
  void client.call('status', {});
  assert.deepEqual(transport.sent, [
    { jsonrpc: '2.0', id: 1, method: 'stop', params: { deadlineMs: 500 } },
    {
      jsonrpc: '2.0',
      id: 2,
      method: 'settings.set',
      params: { changes: { cpus: 2 }, apply: true },
    },
    { jsonrpc: '2.0', id: 3, method: 'status', params: {} },
  ]);
});

test('a call without params sends params {}', () => {
  const { transport, client } = setup();
  void (client.call as (method: string) => Promise<unknown>)('status');
  assert.deepEqual(transport.last, { jsonrpc: '2.0', id: 1, method: 'status', params: {} });
});

test('answers are matched to calls by id, whatever order they come in', async () => {
  const { transport, client } = setup();
  const a = client.call('status', {});
  const b = client.call('settings.get', {});
  const c = client.call('logs', { lines: 5 });
  const [idA, idB, idC] = transport.sent.map((m) => m.id);
  transport.deliver({ jsonrpc: '2.0', id: idC, result: { text: 'c', path: '/p' } });
  assert.equal(await peek(a), 'pending');
  assert.deepEqual(await c, { text: 'c', path: '/p' });
  transport.deliver({ jsonrpc: '2.0', id: idA, result: { state: 'stopped' } });
  transport.deliver({ jsonrpc: '2.0', id: idB, result: { revision: 3 } });
  assert.deepEqual(await a, { state: 'stopped' });
  assert.deepEqual(await b, { revision: 3 });
});

test('an error answer rejects with an ApiError carrying code, message and data', async () => {
  const { transport, client } = setup();
  const call = client.call('settings.set', { changes: { memoryMiB: 100 } });
  const errors = [{ field: 'memoryMiB', message: 'memory must be at least 512' }];
  transport.deliver({
    jsonrpc: '2.0',
    id: transport.last.id,
    error: { code: -32602, message: 'memoryMiB: memory must be at least 512', data: { errors } },
  });
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, -32602);
    assert.equal(error.message, 'memoryMiB: memory must be at least 512');
    assert.deepEqual(error.data, { errors });
    return true;
  });

  const other = client.call('session.open', {});
  transport.deliver({
    jsonrpc: '2.0',
    id: transport.last.id,
    error: { code: 2, message: 'start it first' },
  });
  await assert.rejects(other, (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 2);
    assert.equal(error.data, undefined);
    return true;
  });
});

test('answers for unknown ids, repeated answers and id null are ignored', async () => {
  const { transport, client } = setup();
  const call = client.call('status', {});
  const id = transport.last.id;
  transport.deliver({ jsonrpc: '2.0', id: 999, result: 'stray' });
  transport.deliver({ jsonrpc: '2.0', id: String(id), result: 'string id' });
  transport.deliver({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'not JSON' } });
  assert.equal(await peek(call), 'pending');
  transport.deliver({ jsonrpc: '2.0', id, result: 'first' });
  transport.deliver({ jsonrpc: '2.0', id, result: 'second' });
  assert.equal(await call, 'first');
});

test('text that is not JSON is ignored and the client keeps working', async () => {
  const { transport, client } = setup();
  const call = client.call('status', {});
  assert.doesNotThrow(() => transport.deliver('{"jsonrpc":"2.0","id":1,"resu'));
  assert.doesNotThrow(() => transport.deliver('garbage'));
  transport.deliver({ jsonrpc: '2.0', id: transport.last.id, result: 'ok' });
  assert.equal(await call, 'ok');
});

test('JSON that is not an object is ignored and the client keeps working', async () => {
  const { transport, client } = setup();
  const call = client.call('status', {});
  for (const text of ['null', '5', '"x"', 'true']) {
    assert.doesNotThrow(() => transport.deliver(text), text);
  }
  transport.deliver({ jsonrpc: '2.0', id: transport.last.id, result: 'ok' });
  assert.equal(await call, 'ok');
});

test('notifications go to the listeners of their name', () => {
  const { transport, client } = setup();
  const seen: [string, unknown][] = [];
  client.on('state', (p) => seen.push(['state', p]));
  client.on('progress', (p) => seen.push(['progress', p]));
  client.on('serial', (p) => seen.push(['serial', p]));
  client.on('settings', (p) => seen.push(['settings', p]));
  client.on('engine', (p) => seen.push(['engine', p]));
  client.on('session.output', (p) => seen.push(['session.output', p]));
  client.on('session.exit', (p) => seen.push(['session.exit', p]));
  const state = { from: 'stopped', to: 'starting', at: 5 };
  const progress = { operation: 'start', step: 'booting', percent: 50 };
  const output = { id: 1, stream: 'stdout', data: 'aGk=' };
  const exit = { id: 1, code: 0, signal: null };
  const engine = {
    engine: {
      socket: '/x/run/docker.sock',
      context: 'berth',
      publishedPorts: [{ port: 8080, privatePort: 80, containerName: 'web' }],
    },
  };
  transport.deliver({ jsonrpc: '2.0', method: 'event.state', params: state });
  transport.deliver({ jsonrpc: '2.0', method: 'event.progress', params: progress });
  transport.deliver({ jsonrpc: '2.0', method: 'event.serial', params: { text: 'boot' } });
  transport.deliver({ jsonrpc: '2.0', method: 'event.settings', params: { revision: 2 } });
  transport.deliver({ jsonrpc: '2.0', method: 'event.engine', params: engine });
  transport.deliver({ jsonrpc: '2.0', method: 'session.output', params: output });
  transport.deliver({ jsonrpc: '2.0', method: 'session.exit', params: exit });
  assert.deepEqual(seen, [
    ['state', state],
    ['progress', progress],
    ['serial', { text: 'boot' }],
    ['settings', { revision: 2 }],
    ['engine', engine],
    ['session.output', output],
    ['session.exit', exit],
  ]);
});

test('unknown notifications, and names that are not notifications, reach no listener', () => {
  const { transport, client } = setup();
  const seen: unknown[] = [];
  client.on('state', (p) => seen.push(p));
  for (const method of ['state', 'event.bogus', 'toString', '__proto__', 'constructor']) {
    assert.doesNotThrow(() => transport.deliver({ jsonrpc: '2.0', method, params: { x: 1 } }));
  }
  assert.deepEqual(seen, []);
});

test('every listener of a name is called; an unsubscribed one is not', () => {
  const { transport, client } = setup();
  const seen: string[] = [];
  const offA = client.on('state', () => seen.push('a'));
  client.on('state', () => seen.push('b'));
  const send = () =>
    transport.deliver({
      jsonrpc: '2.0',
      method: 'event.state',
      params: { from: 'stopped', to: 'starting', at: 1 },
    });
  send();
  offA();
  send();
  assert.deepEqual(seen, ['a', 'b', 'b']);
});

test('a notification does not settle a pending call', async () => {
  const { transport, client } = setup();
  const call = client.call('start', {});
  transport.deliver({
    jsonrpc: '2.0',
    method: 'event.state',
    params: { from: 'stopped', to: 'starting', at: 1 },
  });
  assert.equal(await peek(call), 'pending');
  transport.deliver({ jsonrpc: '2.0', id: transport.last.id, result: { state: 'running' } });
  assert.deepEqual(await call, { state: 'running' });
});

test('when the transport closes, pending calls reject with why and close listeners hear it', async () => {
  const { transport, client } = setup();
  const heard: Error[] = [];
  client.onClose((why) => heard.push(why));
  const a = client.call('status', {});
  const b = client.call('start', {});
  const why = new Error('the supervisor went away');
  transport.end(why);
  await assert.rejects(a, (error) => error === why);
  await assert.rejects(b, (error) => error === why);
  assert.deepEqual(heard, [why]);
  // A late answer to a call that was already rejected changes nothing.
  assert.doesNotThrow(() => transport.deliver({ jsonrpc: '2.0', id: 1, result: 'late' }));
});

test('calls after the connection closed reject at once without sending', async () => {
  const { transport, client } = setup();
  const why = new Error('connection reset');
  transport.end(why);
  const sentBefore = transport.sent.length;
  await assert.rejects(client.call('status', {}), (error) => error === why);
  await assert.rejects(client.call('stop', {}), (error) => error === why);
  assert.equal(transport.sent.length, sentBefore);
});

test('client.close() closes the transport, which rejects what is pending', async () => {
  const { transport, client } = setup();
  const call = client.call('status', {});
  client.close();
  assert.equal(transport.closeCalls, 1);
  await assert.rejects(call, /closed by the client/);
  await assert.rejects(client.call('status', {}), /closed by the client/);
});
