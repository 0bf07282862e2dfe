// The container engine as a user meets it: the VM started with `berth start`, then the host's own
// docker client through the `berth` context. One VM for the whole file; every step has a deadline
// and a failure carries the serial log's tail and the engine's log.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BerthHome } from '../support/berth-cli.ts';
import { busyboxBinary, busyboxRootfs, DockerCli } from '../support/docker-cli.ts';

const IMAGE = 'berth-test/busybox:1';
const home = new BerthHome();
const docker = new DockerCli();
home.env.DOCKER_CONFIG = docker.configDir;
const temporary: string[] = [];

async function withLogs<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (error) {
    const engineLog = await home
      .run(['exec', '--', 'tail', '-n', '20', '/var/log/docker.log'], { deadlineMs: 20_000 })
      .then((r) => r.stdout + r.stderr)
      .catch((e: Error) => e.message);
    throw new Error(`${(error as Error).message}\n${home.serialTail()}\nengine log:\n${engineLog}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** An HTTP GET on 127.0.0.1:port with a raw socket: the body, or null if nothing listens. */
function httpGet(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('connect', () => socket.write('GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('close', () => resolve(data === '' ? null : data));
    socket.on('error', () => resolve(null));
  });
}

async function until<T>(what: string, probe: () => Promise<T | null>, deadlineMs = 30_000) {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() - started > deadlineMs)
      throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('the container engine through the host docker client', { timeout: 900_000 }, () => {
  before(async () => {
    await home.ok(['start'], { deadlineMs: 180_000 });
    await withLogs(() => docker.waitForEngine(90_000));
  });

  after(async () => {
    await home.dispose();
    for (const dir of [docker.configDir, ...temporary])
      rmSync(dir, { recursive: true, force: true });
  });

  test('docker --context berth info shows the engine and its storage driver', async () => {
    const info = await docker.ok(['info', '--format', '{{.ServerVersion}} {{.Driver}}']);
    assert.match(info.trim(), /^20\.10\.\S+ overlay2$/);
    // The user's current context is left as it was.
    assert.equal((await docker.ok(['context', 'show'], { plain: true })).trim(), 'default');
    const contexts = await docker.ok(['context', 'ls', '--format', '{{.Name}}'], { plain: true });
    assert.match(contexts, /^berth$/m);
  });

  test('a busybox rootfs made here is imported and runs: docker run --rm prints hello', async () => {
    const rootfs = busyboxRootfs();
    temporary.push(rootfs);
    const tarball = execFileSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 64 << 20 });
    await withLogs(() => docker.ok(['import', '-', IMAGE], { input: tarball }));
    const out = await withLogs(() => docker.ok(['run', '--rm', IMAGE, 'echo', 'hello']));
    assert.equal(out, 'hello\n');
  });

  test('docker build of a Dockerfile FROM scratch works, RUN step included', async () => {
    const context = mkdtempSync(join(tmpdir(), 'berth-build-'));
    temporary.push(context);
    copyFileSync(busyboxBinary(), join(context, 'busybox'));
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'RUN ["/bin/busybox", "sh", "-c", "echo built in the VM > /built"]',
        'ENTRYPOINT ["/bin/busybox"]',
        'CMD ["cat", "/built"]',
        '',
      ].join('\n'),
    );
    await withLogs(() => docker.ok(['build', '-q', '-t', 'berth-test/scratch:1', context]));
    assert.equal(await docker.ok(['run', '--rm', 'berth-test/scratch:1']), 'built in the VM\n');
  });

  test('a published port answers on 127.0.0.1 and goes away when the container stops', async () => {
    const port = await freePort();
    const name = `berth-web-${port}`;
    await withLogs(() =>
      docker.ok([
        'run',
        '-d',
        '--name',
        name,
        '-p',
        `${port}:80`,
        IMAGE,
        'sh',
        '-c',
        'echo published by berth > /www/index.html && exec httpd -f -p 80 -h /www',
      ]),
    );
    const body = await withLogs(() =>
      until(`GET http://127.0.0.1:${port}/`, async () => {
        const response = await httpGet(port);
        return response?.includes('published by berth') ? response : null;
      }),
    );
    assert.match(body, /^HTTP\/1\.[01] 200/);
    await docker.ok(['rm', '-f', name]);
    await until(`127.0.0.1:${port} closed after the container stopped`, async () =>
      (await httpGet(port)) === null ? true : null,
    );
  });

  test('a volume keeps its data across a VM restart', async () => {
    await docker.ok([
      'run',
      '--rm',
      '-v',
      'berth-test-data:/data',
      IMAGE,
      'sh',
      '-c',
      'echo kept across restarts > /data/file',
    ]);
    await home.ok(['restart'], { deadlineMs: 180_000 });
    await withLogs(() => docker.waitForEngine(90_000));
    const out = await docker.ok([
      'run',
      '--rm',
      '-v',
      'berth-test-data:/data',
      IMAGE,
      'cat',
      '/data/file',
    ]);
    assert.equal(out, 'kept across restarts\n');
  });

  test('switching the storage driver to btrfs and restarting: docker info reports btrfs', async () => {
    await home.ok(['settings', 'set', 'storage-driver=btrfs', '--apply'], { deadlineMs: 180_000 });
    await withLogs(() => docker.waitForEngine(90_000));
    const info = await docker.ok(['info', '--format', '{{.Driver}}']);
    assert.equal(info.trim(), 'btrfs');
    // Volumes are the engine's, not the driver's: still there.
    const out = await docker.ok(['volume', 'ls', '--format', '{{.Name}}']);
    assert.match(out, /^berth-test-data$/m);
  });
});
