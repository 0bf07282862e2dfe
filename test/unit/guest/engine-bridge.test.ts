// The container engine wired into the supervisor, on its production paths: the only fake below
// the supervisor is the guest itself. A stand-in for our vsock device's host socket
// (run/vsock.sock, hybrid vsock) routes CONNECT 22 to an ssh2 server (as the guest's dropbear,
// which forwards direct-tcpip to a TCP echo server) and CONNECT 2375 to a fake docker engine.
// The VM is a FakeRunner's, so "running" is immediate. The docker CLI (when installed) talks to
// the engine through the `berth` context, as a user would.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import type { EngineEvent, EngineStatus } from '../../../core/api/types.ts';
import { describeStatus } from '../../../core/cli/output.ts';
import { relay } from '../../../core/guest/relay.ts';
import { dataPaths } from '../../../core/paths.ts';
import { Supervisor } from '../../../core/supervisor/supervisor.ts';
import { FakeRunner } from '../supervisor/fake-runner.ts';
import {
  EchoServer,
  FakeEngine,
  LogLines,
  container,
  dial,
  freePort,
  reachable,
  talk,
  tempDir,
  until,
} from './fakes.ts';

const { Server: SshServer, utils } = ssh2;
const HOST_LIMITS = { cores: 8, memoryMiB: 16384, freeDiskGiB: 500 };
const DOCKER = ['/usr/local/bin/docker', '/usr/bin/docker'].find((path) => existsSync(path));

let engine: FakeEngine;
let echo: EchoServer;
const work = tempDir('berth-engine-');
before(async () => {
  engine = await FakeEngine.listen(join(work.path, 'guest-docker.sock'));
  echo = await EchoServer.listen('guest');
});
after(async () => {
  await engine.close();
  await echo.close();
  work.remove();
});

/** The guest behind run/vsock.sock: dropbear on port 22, the docker socket on port 2375. */
class FakeGuest {
  /** direct-tcpip requests: where in the guest each forwarded connection went. */
  readonly forwards: { destIP: string; destPort: number }[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly ssh = new SshServer(
    { hostKeys: [utils.generateKeyPairSync('ed25519').private] },
    (client) => {
      client.on('error', () => {});
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () =>
        client.on('tcpip', (accept, reject, info) => {
          this.forwards.push({ destIP: info.destIP, destPort: info.destPort });
          // Every guest port is the echo server (the host's own 127.0.0.1:<port> is ours).
          // A failed dial (the test ending, a busy machine) is the guest refusing: no rejection
          // may outlive the test.
          dial(echo.port).then(
            (socket) => relay(accept(), socket),
            () => reject(),
          );
        }),
      );
    },
  );
  private constructor(private readonly server: Server) {}

  static async listen(path: string): Promise<FakeGuest> {
    const server = createServer({ allowHalfOpen: true });
    const guest = new FakeGuest(server);
    server.on('connection', (socket) => guest.accept(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return guest;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let line = '';
    const onData = (data: Buffer) => {
      line += data.toString('latin1');
      const end = line.indexOf('\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const port = Number(/^CONNECT (\d+)$/.exec(line.slice(0, end))?.[1]);
      if (port === 22) {
        socket.write('OK 1\n');
        this.ssh.injectSocket(socket);
      } else if (port === 2375 && !engine.down) {
        socket.write('OK 2\n');
        dial(engine.path).then(
          (stream) => relay(socket, stream),
          () => socket.destroy(), // the engine refused (it closes between tests): a reset
        );
      } else {
        socket.destroy(); // nothing listens on that port (RST)
      }
    };
    socket.on('data', onData);
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Harness {
  supervisor: Supervisor;
  guest: FakeGuest;
  log: LogLines;
  dockerConfig: string;
  socket: string;
}

let current: { supervisor: Supervisor; guest: FakeGuest; home: ReturnType<typeof tempDir> } | null;
afterEach(async () => {
  if (!current) return;
  await current.supervisor.close();
  await current.guest.close();
  current.home.remove();
  current = null;
});

async function open(
  dockerConfig = join(work.path, `docker-config-${Date.now()}`),
): Promise<Harness> {
  const home = tempDir('berth-home-');
  const paths = dataPaths(home.path);
  const log = new LogLines();
  const supervisor = await Supervisor.open({
    home: home.path,
    makeRunner: () => new FakeRunner(),
    hostLimits: () => HOST_LIMITS,
    engine: { dockerConfig, retryMinMs: 20, retryMaxMs: 100 },
    log: log.log,
  });
  const guest = await FakeGuest.listen(join(paths.run, 'vsock.sock'));
  current = { supervisor, guest, home };
  return { supervisor, guest, log, dockerConfig, socket: join(paths.run, 'docker.sock') };
}

const run = promisify(execFile);

/** The docker CLI as the user runs it, with this test's DOCKER_CONFIG (asynchronously: the proxy is in this process). */
async function docker(dockerConfig: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(DOCKER!, args, {
    env: { PATH: process.env.PATH, HOME: dockerConfig, DOCKER_CONFIG: dockerConfig },
  });
  return stdout;
}

describe('the container engine in the supervisor', () => {
  test('VM running: run/docker.sock serves the engine, `berth` context made, ports published; all gone on stop', async () => {
    const { supervisor, guest, log, dockerConfig, socket } = await open();
    const web = await freePort();
    engine.containers = [container('aaa', 'web', [{ public: web, private: 80 }])];

    await supervisor.start();
    await until(
      () => supervisor.status().engine?.socket === socket,
      'the docker socket in the status',
    );
    assert.equal(lstatSync(socket).mode & 0o777, 0o600);
    assert.match(
      describeStatus(supervisor.status()),
      /^docker: {3}unix:\/\/.*\/run\/docker\.sock \(docker --context berth \.\.\.\)$/m,
    );
    await until(
      () => log.matching(/docker context "berth" created/).length === 1,
      'the context log line',
    );

    // A published port, through ssh direct-tcpip to the guest's 127.0.0.1:<port>.
    await until(() => reachable(web), `127.0.0.1:${web}`);
    assert.equal(await talk(web, 'GET /'), 'guest: GET /bye');
    // (reachable() made a connection of its own before.)
    assert.deepEqual(
      new Set(guest.forwards.map((f) => `${f.destIP}:${f.destPort}`)),
      new Set([`127.0.0.1:${web}`]),
    );

    if (DOCKER) {
      // What the user types: the CLI reaches the VM's engine through the context and the socket.
      assert.equal(
        await docker(dockerConfig, '--context', 'berth', 'ps', '--format', '{{.Names}}'),
        'web\n',
      );
      const contexts = await docker(
        dockerConfig,
        'context',
        'ls',
        '--format',
        '{{.Name}} {{.Current}}',
      );
      assert.match(contexts, /^berth false$/m, 'listed, and not made current');
    }

    await supervisor.stop();
    await until(() => !existsSync(socket), 'run/docker.sock removed');
    assert.equal(supervisor.status().engine, undefined);
    assert.doesNotMatch(describeStatus(supervisor.status()), /docker:/);
    await until(async () => !(await reachable(web)), `127.0.0.1:${web} closed`);

    // Started again: the context is already right.
    await supervisor.start();
    await until(
      () => log.matching(/docker context "berth" is up to date/).length === 1,
      'unchanged',
    );
    await until(() => reachable(web), `127.0.0.1:${web} again`);
  });

  test('status.engine and event.engine follow the published ports, once per change', async () => {
    const { supervisor, socket } = await open();
    const events: EngineEvent[] = [];
    supervisor.on('engine', (event) => events.push(event));
    const [api, web] = [await freePort(), await freePort()];
    const low = Math.min(api, web) === api ? 'api' : 'web';
    engine.containers = [container('bbb', 'api', [{ public: api, private: 8080 }])];

    await supervisor.start();
    await until(
      () => supervisor.status().engine?.publishedPorts.length === 1,
      'the api port in the status',
    );
    const first: EngineStatus = {
      socket,
      context: 'berth',
      publishedPorts: [{ port: api, privatePort: 8080, containerName: 'api' }],
    };
    assert.deepEqual(supervisor.status().engine, first);
    await until(() => events.length > 0 && events.at(-1)!.engine !== null, 'an engine event');
    assert.deepEqual(events.at(-1), { engine: first }, 'the event carries what status() has');
    // `berth status`: the docker line, then one line per published port.
    assert.match(
      describeStatus(supervisor.status()),
      new RegExp(
        `^docker: {3}unix://${socket} \\(docker --context berth \\.\\.\\.\\)\\n` +
          `port: {5}127\\.0\\.0\\.1:${api} -> 8080/tcp \\(api\\)$`,
        'm',
      ),
    );

    // A second container: both ports, sorted by port, without a status call.
    engine.containers = [
      ...engine.containers,
      container('ccc', 'web', [{ public: web, private: 80 }]),
    ];
    engine.event('start', 'ccc');
    await until(() => events.at(-1)?.engine?.publishedPorts.length === 2, 'both ports');
    assert.deepEqual(
      events.at(-1)!.engine!.publishedPorts.map((p) => p.containerName),
      low === 'api' ? ['api', 'web'] : ['web', 'api'],
    );
    assert.match(describeStatus(supervisor.status()), new RegExp(`-> 80/tcp \\(web\\)$`, 'm'));

    // The first one dies: its port goes, in an event.
    engine.containers = engine.containers.slice(1);
    engine.event('die', 'bbb');
    await until(() => events.at(-1)?.engine?.publishedPorts.length === 1, 'one port left');
    assert.deepEqual(events.at(-1)!.engine!.publishedPorts, [
      { port: web, privatePort: 80, containerName: 'web' },
    ]);

    // Stopped: the engine is gone from the status, and an event says so.
    await supervisor.stop();
    await until(() => events.at(-1)?.engine === null, 'the engine-gone event');
    assert.equal(supervisor.status().engine, undefined);
    // Each event is a change: never the same status twice in a row.
    for (let i = 1; i < events.length; i++) {
      assert.notDeepEqual(events[i], events[i - 1], `event ${i} repeats the one before`);
    }
  });

  test('a docker context that cannot be written is logged and does not fail the start', async () => {
    const notADirectory = join(work.path, 'docker-config-file');
    writeFileSync(notADirectory, '');
    const { supervisor, log, socket } = await open(notADirectory);
    engine.containers = [];
    await supervisor.start();
    assert.equal(supervisor.status().state, 'running');
    await until(() => log.matching(/could not be written/).length === 1, 'the context failure');
    assert.match(
      log.matching(/could not be written/)[0]!,
      new RegExp(
        `^docker context "berth" could not be written in .*docker-config-file: .*; DOCKER_HOST=unix://${socket} reaches`,
      ),
    );
    await until(
      () => supervisor.status().engine?.socket === socket,
      'the docker socket all the same',
    );
  });

  test('with a test runner and no engine option, nothing of the engine is set up', async () => {
    const home = tempDir('berth-home-');
    try {
      const supervisor = await Supervisor.open({
        home: home.path,
        makeRunner: () => new FakeRunner(),
        hostLimits: () => HOST_LIMITS,
      });
      await supervisor.start();
      assert.equal(supervisor.status().engine, undefined);
      assert.equal(existsSync(join(dataPaths(home.path).run, 'docker.sock')), false);
      await supervisor.close();
    } finally {
      home.remove();
    }
  });
});
