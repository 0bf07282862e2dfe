// Published ports with real sockets: a fake engine lists containers and streams events, a TCP
// echo server stands in for the guest's 127.0.0.1:<port>, and the test connects to the host's
// 127.0.0.1:<port> as a browser or curl would.
import assert from 'node:assert/strict';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { PublishedPorts } from '../../../core/guest/published-ports.ts';
import {
  EchoServer,
  FakeEngine,
  LogLines,
  container,
  freePort,
  reachable,
  sleep,
  talk,
  tempDir,
  until,
} from './fakes.ts';

const dir = tempDir('berth-ports-');
let engine: FakeEngine;
let echo: EchoServer;
let ports: PublishedPorts | null = null;

before(async () => {
  engine = await FakeEngine.listen(join(dir.path, 'docker.sock'));
  echo = await EchoServer.listen('guest');
});
afterEach(async () => {
  await ports?.stop();
  ports = null;
  engine.containers = [];
  engine.down = false;
});
after(async () => {
  await engine.close();
  await echo.close();
  dir.remove();
});

function watch(log = new LogLines()) {
  ports = new PublishedPorts({
    dockerConnect: engine.connect,
    forward: echo.forward,
    log: log.log,
    retryMinMs: 20,
    retryMaxMs: 100,
  });
  ports.start();
  return { ports, log };
}

describe('PublishedPorts', () => {
  test('a running container’s port works on 127.0.0.1 at once; one that starts later too', async () => {
    const web = await freePort();
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];
    const { ports: p, log } = watch();
    await until(() => reachable(web), `127.0.0.1:${web}`);
    // Bytes both ways, and a half-close: the guest answers after our EOF ("bye").
    assert.equal(await talk(web, 'GET /'), 'guest: GET /bye');
    assert.deepEqual(p.ports, [
      { port: web, privatePort: 80, containerId: 'aaa'.padEnd(64, '0'), containerName: 'web' },
    ]);
    assert.deepEqual(log.matching(/web/), [
      `published ports: container web: 127.0.0.1:${web} -> 80/tcp`,
    ]);
    const filters = engine.requests.find((r) => r.startsWith('/v1.41/events?'));
    assert.ok(filters, 'the event stream was opened');
    assert.deepEqual(JSON.parse(new URL(filters, 'http://d').searchParams.get('filters')!), {
      type: ['container'],
      event: ['start', 'die', 'stop', 'kill', 'destroy'],
    });

    const api = await freePort();
    engine.containers.push(container('bbb', 'api', [{ public: api, private: 8080 }]));
    assert.equal(await reachable(api), false);
    engine.event('start', 'bbb');
    await until(() => reachable(api), `127.0.0.1:${api} after the start event`);
    assert.equal(await talk(api, 'ping'), 'guest: pingbye');
  });

  test('a stopped container’s port goes away, with its open connections', async () => {
    const web = await freePort();
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];
    const { ports: p, log } = watch();
    await until(() => reachable(web), `127.0.0.1:${web}`);
    const open = await new Promise<Socket>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: web }, () => resolve(socket));
    });
    let openClosed = false;
    open.on('error', () => {});
    open.once('close', () => (openClosed = true));
    await until(() => echo.connections > 0, 'the connection to reach the guest');

    engine.containers = [];
    engine.event('die', 'aaa');
    await until(async () => !(await reachable(web)), `127.0.0.1:${web} to close`);
    await until(() => openClosed, 'the open connection to be closed');
    assert.deepEqual(p.ports, []);
    assert.equal(log.matching(/closed \(container web is gone\)/).length, 1);
  });

  test('a host port in use: one clear log line, no crash, other ports still work; later it is published', async () => {
    const busy = await freePort();
    const web = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) =>
      squatter.listen({ host: '127.0.0.1', port: busy }, resolve),
    );
    engine.containers = [
      container('aaa', 'db', [{ public: busy, private: 5432 }]),
      container('bbb', 'web', [{ public: web, private: 80 }]),
    ];
    const { ports: p, log } = watch();
    await until(() => reachable(web), `127.0.0.1:${web}`);
    await until(() => log.matching(/cannot publish/).length > 0, 'the busy port to be reported');
    assert.deepEqual(log.matching(/cannot publish/), [
      `published ports: cannot publish container db's port ${busy} on the host at 127.0.0.1:${busy}: ` +
        'it is already in use on this machine (stop what uses it, or publish another port)',
    ]);
    // More events: tried again, but not said again.
    engine.event('start', 'ccc');
    engine.event('start', 'ddd');
    await sleep(100);
    assert.equal(log.matching(/cannot publish/).length, 1);
    assert.deepEqual(
      p.ports.map((x) => x.port),
      [web],
    );
    // The port is freed and the engine says something: now it is published.
    await new Promise((resolve) => squatter.close(resolve));
    engine.event('start', 'eee');
    await until(() => p.ports.some((x) => x.port === busy), 'the freed port to be published');
    assert.equal(await talk(busy, 'q'), 'guest: qbye');
  });

  test('the event stream drops: reconnect, resync what changed meanwhile, log the outage once', async () => {
    const web = await freePort();
    const api = await freePort();
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];
    const { ports: p, log } = watch();
    await until(() => reachable(web), `127.0.0.1:${web}`);
    await until(() => engine.eventStreams === 1, 'the event stream');

    // The engine goes away for a while (dockerd restarting); things change without events.
    engine.down = true;
    engine.dropEvents();
    await until(() => log.matching(/lost the VM's docker engine/).length === 1, 'the outage log');
    engine.containers = [container('bbb', 'api', [{ public: api, private: 3000 }])];
    await sleep(300); // several retries fail meanwhile
    assert.equal(log.matching(/lost the VM's docker engine/).length, 1, 'said once');
    assert.equal(await reachable(web), true, 'kept until the engine says otherwise');

    engine.down = false;
    await until(() => reachable(api), `127.0.0.1:${api} after the resync`);
    await until(async () => !(await reachable(web)), `127.0.0.1:${web} gone after the resync`);
    assert.deepEqual(
      p.ports.map((x) => x.containerName),
      ['api'],
    );
    assert.equal(log.matching(/following the VM's docker engine/).length, 1);
    // Events flow again on the new stream.
    engine.containers = [];
    engine.event('stop', 'bbb');
    await until(async () => !(await reachable(api)), `127.0.0.1:${api} after the stop event`);
  });

  test('UDP ports: said once, not forwarded; ports bound to another VM address are skipped', async () => {
    const dns = await freePort();
    const other = await freePort();
    engine.containers = [
      container('aaa', 'dns', [
        { public: dns, private: 53, type: 'udp' },
        { public: other, private: 80, ip: '10.0.2.15' },
      ]),
    ];
    const { ports: p, log } = watch();
    await until(() => log.lines.length >= 2, 'the log lines');
    engine.event('start', 'aaa');
    await sleep(100);
    assert.deepEqual(log.lines, [
      `published ports: container dns publishes ${dns}/udp; only TCP ports are forwarded to the host`,
      `published ports: container dns publishes ${other} on 10.0.2.15 only; not forwarded to the host`,
    ]);
    assert.deepEqual(p.ports, []);
    assert.equal(await reachable(other), false);
  });

  test('stop() closes every host listener', async () => {
    const web = await freePort();
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];
    const { ports: p } = watch();
    await until(() => reachable(web), `127.0.0.1:${web}`);
    await p.stop();
    assert.equal(await reachable(web), false);
    await until(() => engine.eventStreams === 0, 'the event stream to be closed');
  });

  test('an engine that is not up yet: retried until it is, then its ports appear', async () => {
    const web = await freePort();
    engine.down = true;
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];
    const { log } = watch();
    await sleep(150);
    assert.equal(await reachable(web), false);
    assert.equal(log.lines.length, 1, 'one line for the whole wait');
    engine.down = false;
    await until(() => reachable(web), `127.0.0.1:${web}`);
  });
});
