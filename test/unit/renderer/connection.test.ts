// The renderer's kept-alive connection (renderer/src/api/connection.ts): subscribes after every
// connect, re-attaches listeners to each new client, reconnects with backoff after a close or a
// failed dial, and refuses calls while down instead of queueing them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Connection,
  NotConnectedError,
  type LinkInfo,
} from '../../../renderer/src/api/connection.ts';
import { MemoryTransport } from '../api/memory-transport.ts';
import { settle } from './fake-api.ts';

function harness(options: { failDials?: number } = {}) {
  const transports: MemoryTransport[] = [];
  const timers: { run: () => void; ms: number }[] = [];
  let failures = options.failDials ?? 0;
  const connection = new Connection(
    async () => {
      if (failures > 0) {
        failures--;
        throw new Error('refused');
      }
      const transport = new MemoryTransport();
      transports.push(transport);
      return transport;
    },
    {
      random: () => 0,
      now: () => 0,
      setTimer: (run, ms) => {
        timers.push({ run, ms });
        return timers.length;
      },
      clearTimer: () => {},
    },
  );
  const links: LinkInfo[] = [];
  connection.onLink((link) => links.push(link));
  let connects = 0;
  connection.onConnect(() => connects++);
  /** Answers the newest transport's subscribe request. */
  const answerSubscribe = async () => {
    await settle();
    const transport = transports.at(-1)!;
    const request = transport.sent.find((m) => m.method === 'subscribe');
    assert.ok(request, 'subscribe was sent');
    assert.deepEqual(request.params, {});
    transport.deliver({ jsonrpc: '2.0', id: request.id, result: { events: [] } });
    await settle();
  };
  return { connection, transports, timers, links, connects: () => connects, answerSubscribe };
}

test('connecting subscribes to all events, then reports connected and runs onConnect', async () => {
  const h = harness();
  h.connection.start();
  assert.equal(h.connection.link.state, 'connecting');
  await settle();
  assert.equal(h.connects(), 0, 'not before subscribe answered');
  await h.answerSubscribe();
  assert.equal(h.connection.link.state, 'connected');
  assert.equal(h.connects(), 1);
});

test('calls go through the current client; while down they fail at once', async () => {
  const h = harness();
  await assert.rejects(h.connection.call('status'), NotConnectedError);
  h.connection.start();
  await h.answerSubscribe();
  const answer = h.connection.call('status');
  const request = h.transports[0]!.last;
  assert.equal(request.method, 'status');
  h.transports[0]!.deliver({ jsonrpc: '2.0', id: request.id, result: { state: 'running' } });
  assert.deepEqual(await answer, { state: 'running' });
});

test('after a close it waits the backoff, dials again, resubscribes, keeps its listeners', async () => {
  const h = harness();
  const seen: string[] = [];
  h.connection.on('state', (event) => seen.push(event.to));
  h.connection.start();
  await h.answerSubscribe();

  h.transports[0]!.end(new Error('host went away'));
  assert.equal(h.connection.link.state, 'disconnected');
  assert.equal(h.connection.link.reason, 'host went away');
  assert.equal(h.timers.length, 1);
  assert.equal(h.timers[0]!.ms, 500);

  h.timers[0]!.run();
  await h.answerSubscribe();
  assert.equal(h.transports.length, 2);
  assert.equal(h.connection.link.state, 'connected');
  assert.equal(h.connects(), 2, 'onConnect runs after every reconnect');

  h.transports[1]!.deliver({
    jsonrpc: '2.0',
    method: 'event.state',
    params: { from: 'stopped', to: 'starting', at: 1 },
  });
  assert.deepEqual(seen, ['starting'], 'one delivery, from the new client only');
});

test('failed dials back off further each time, and a success resets the backoff', async () => {
  const h = harness({ failDials: 2 });
  h.connection.start();
  await settle();
  assert.equal(h.timers.at(-1)!.ms, 500);
  h.timers.at(-1)!.run();
  await settle();
  assert.equal(h.timers.at(-1)!.ms, 1000);
  h.timers.at(-1)!.run();
  await h.answerSubscribe();
  assert.equal(h.connection.link.state, 'connected');

  h.transports[0]!.end(new Error('gone'));
  assert.equal(h.timers.at(-1)!.ms, 500, 'back to the first delay');
  assert.deepEqual(
    h.links.map((l) => l.state),
    [
      'connecting',
      'disconnected',
      'connecting',
      'disconnected',
      'connecting',
      'connected',
      'disconnected',
    ],
  );
});

test('a listener added while connected hears the current client; unsubscribing stops it', async () => {
  const h = harness();
  h.connection.start();
  await h.answerSubscribe();
  const seen: string[] = [];
  const off = h.connection.on('serial', (event) => seen.push(event.text));
  const serial = (text: string) =>
    h.transports[0]!.deliver({ jsonrpc: '2.0', method: 'event.serial', params: { text } });
  serial('a');
  off();
  serial('b');
  assert.deepEqual(seen, ['a']);
});

test('stop() closes the connection and never reconnects', async () => {
  const h = harness();
  h.connection.start();
  await h.answerSubscribe();
  h.connection.stop();
  assert.equal(h.transports[0]!.closeCalls, 1);
  assert.equal(h.timers.length, 0);
});
