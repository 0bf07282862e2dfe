// run/docker.sock with real sockets: a fake engine on a Unix socket stands in for the guest's
// /var/run/docker.sock, and clients talk to the proxy as the docker CLI would (HTTP requests,
// and hijacked attach connections that half-close).
import assert from 'node:assert/strict';
import { lstat, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DockerSocketProxy } from '../../../core/guest/docker-socket.ts';
import {
  FakeEngine,
  LogLines,
  Reader,
  dial,
  staleSocket,
  tempDir,
  until,
  type AttachRecord,
} from './fakes.ts';

const dir = tempDir('berth-docker-socket-');
let engine: FakeEngine;

before(async () => {
  engine = await FakeEngine.listen(join(dir.path, 'guest-docker.sock'));
});
after(async () => {
  await engine.close();
  dir.remove();
});

let count = 0;
async function proxy(log = new LogLines()) {
  const path = join(dir.path, `docker-${++count}.sock`);
  const p = await DockerSocketProxy.listen({ path, connect: engine.connect, log: log.log });
  return { proxy: p, path, log };
}

/** GET over the proxy as the docker CLI does (HTTP/1.1 on the Unix socket). */
function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { Host: 'docker' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** Opens an attach (hijacked) connection through the proxy; returns it after the 101 head. */
async function attach(path: string, query: string) {
  const socket = await dial(path);
  const reader = new Reader(socket);
  socket.write(
    `POST /v1.41/containers/web/attach?stream=1&stdin=1&stdout=1${query} HTTP/1.1\r\n` +
      'Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
  );
  await until(() => reader.text.includes('\r\n\r\n'), 'the 101 answer');
  assert.match(reader.text, /^HTTP\/1.1 101 UPGRADED/);
  const headEnd = reader.text.indexOf('\r\n\r\n') + 4;
  const body = () => reader.text.slice(headEnd);
  const record = engine.attaches.at(-1) as AttachRecord;
  return { socket, reader, body, record };
}

describe('DockerSocketProxy', () => {
  test('relays API requests to the engine; the socket is 0600', async () => {
    engine.containers = [{ Id: 'abc', Names: ['/web'], Ports: [] }];
    const { proxy: p, path } = await proxy();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const answer = await get(path, '/v1.41/containers/json');
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), engine.containers);
    const missing = await get(path, '/v1.41/nothing');
    assert.equal(missing.status, 404);
    await p.close();
  });

  test('half-close from the client (docker run -i, stdin EOF): output still arrives', async () => {
    const { proxy: p, path } = await proxy();
    const { socket, reader, body, record } = await attach(path, '');
    socket.write('hello');
    await until(() => body() === 'out: hello', 'the echoed input');
    socket.end(); // stdin at EOF: only our sending side is shut
    await until(() => record.eof, 'the engine to see EOF on stdin');
    await until(() => reader.ended, 'the engine to end its output');
    assert.equal(body(), 'out: hellostdin closed after 5 bytes\n');
    assert.equal(reader.error, null);
    await until(() => reader.closed && p.connections === 0, 'the connection to be gone');
    await p.close();
  });

  test('half-close from the engine: the client can still send after the output ended', async () => {
    const { proxy: p, path } = await proxy();
    const { socket, reader, body, record } = await attach(path, '&output-first=1');
    await until(() => reader.ended, 'EOF from the engine');
    assert.equal(body(), 'output done\n');
    assert.equal(reader.closed, false, 'the client may still send');
    socket.end('late input');
    await until(() => record.eof, 'the engine to get the late input and EOF');
    assert.equal(record.stdin, 'late input');
    await until(() => reader.closed && p.connections === 0, 'the connection to be gone');
    await p.close();
  });

  test('engine not up: the client is told at once and closed, the reason is logged once', async () => {
    const { proxy: p, path, log } = await proxy();
    engine.down = true;
    try {
      const started = Date.now();
      const answer = await get(path, '/_ping');
      assert.ok(Date.now() - started < 2000, 'answered promptly, not after a hang');
      assert.equal(answer.status, 503);
      assert.match(
        JSON.parse(answer.body).message,
        /^Berth: the VM's docker engine is not reachable .*connection refused \(the engine is down\)/,
      );
      // A raw client that sends nothing is answered and closed too (it sees EOF).
      const silent = new Reader(await dial(path));
      await until(() => silent.ended, 'the silent client to be closed', 3000);
      assert.match(silent.text, /^HTTP\/1.1 503 /);
      assert.equal(log.matching(/cannot reach the VM's docker engine/).length, 1);
      assert.match(log.lines[0]!, /closing the client: connection refused \(the engine is down\)/);
    } finally {
      engine.down = false;
    }
    assert.equal((await get(path, '/_ping')).status, 200);
    assert.equal(log.matching(/answers again/).length, 1);
    await p.close();
  });

  test('engine socket missing in the VM (the guest accepts, then closes): the client is told why', async () => {
    // berth-vsockd takes the vsock connection, cannot reach /var/run/docker.sock, and closes.
    const mutePath = join(dir.path, 'mute.sock');
    const mute = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end());
    });
    await new Promise<void>((resolve) => mute.listen(mutePath, resolve));
    const log = new LogLines();
    const path = join(dir.path, 'docker-mute.sock');
    const p = await DockerSocketProxy.listen({ path, connect: () => dial(mutePath), log: log.log });
    const answer = await get(path, '/_ping');
    assert.equal(answer.status, 503);
    assert.match(
      JSON.parse(answer.body).message,
      /closed the connection without answering \(is dockerd still starting in the VM\?\)/,
    );
    await get(path, '/_ping');
    assert.equal(log.matching(/without answering/).length, 1, 'logged once while it lasts');
    await p.close();
    await new Promise((resolve) => mute.close(resolve));
  });

  test('close() ends open connections and removes the socket file', async () => {
    const { proxy: p, path } = await proxy();
    const { reader } = await attach(path, '');
    await p.close();
    await until(() => reader.ended, 'the attached client to see its connection end');
    await assert.rejects(lstat(path), { code: 'ENOENT' });
    await assert.rejects(dial(path), { code: 'ENOENT' });
  });

  test('a stale socket file is replaced; a live socket or a regular file is refused and kept', async () => {
    const path = join(dir.path, 'stale.sock');
    await staleSocket(path);
    assert.ok((await lstat(path)).isSocket());
    const p = await DockerSocketProxy.listen({ path, connect: engine.connect });
    assert.equal((await get(path, '/_ping')).body, 'OK');
    assert.equal((await stat(path)).mode & 0o777, 0o600);

    await assert.rejects(
      DockerSocketProxy.listen({ path, connect: engine.connect }),
      /docker socket: cannot listen on .*stale\.sock: .*in use/,
    );
    assert.equal((await get(path, '/_ping')).body, 'OK', 'the live one still serves');
    await p.close();

    const file = join(dir.path, 'not-a-socket');
    await writeFile(file, 'precious');
    await assert.rejects(
      DockerSocketProxy.listen({ path: file, connect: engine.connect }),
      /docker socket: cannot listen on .*not-a-socket: .*exists and is not a socket/,
    );
    assert.equal((await stat(file)).size, 8);
  });
});
