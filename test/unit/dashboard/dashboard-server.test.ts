// The dashboard in browser mode end to end, without a VM: a real SupervisorHost (FakeRunner VMs)
// on a temp data directory, serving a tiny fake renderer build, driven over HTTP and the
// WebSocket as a browser would, and as an attacker's page or a rebinding DNS name would try to.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiClient } from '../../../core/api/client.ts';
import { ApiError } from '../../../core/api/errors.ts';
import { MAX_MESSAGE_BYTES } from '../../../core/api/jsonrpc.ts';
import { headerPolicy, metaPolicy } from '../../../core/dashboard/static-files.ts';
import { dataPaths } from '../../../core/paths.ts';
import type { HostLimits } from '../../../core/settings/host-limits.ts';
import { SupervisorHost, type HostOptions } from '../../../core/supervisor/host.ts';
import { ControlConnection } from '../supervisor/control-connection.ts';
import { FakeRunner } from '../supervisor/fake-runner.ts';
import {
  httpGet,
  openWebSocket,
  RefusedError,
  WsTransport,
  type WsOptions,
} from './dashboard-client.ts';

const HOST: HostLimits = { cores: 8, memoryMiB: 16384, freeDiskGiB: 500 };
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const INDEX = `<!doctype html>
<html><head><meta charset="utf-8" />
<meta
  http-equiv="Content-Security-Policy"
  content="${CSP}"
/>
<link rel="stylesheet" href="main.css" /><script type="module" src="main.js"></script>
</head><body><main id="root"></main></body></html>
`;
const SECRET = 'top secret: outside the renderer root';

interface Harness {
  host: SupervisorHost;
  runner: FakeRunner;
  paths: ReturnType<typeof dataPaths>;
  root: string;
  url: string;
  port: number;
  token: string;
  /** The page's origin, as a browser sends it. */
  origin: string;
  /** A WebSocket to /api with the token in the query and the right Origin, as an ApiClient. */
  connect(options?: WsOptions & { query?: string }): Promise<{ api: ApiClient; ws: WsTransport }>;
  control(): Promise<{ conn: ControlConnection; api: ApiClient }>;
}

function withDashboard(
  run: (h: Harness) => Promise<void>,
  options: { built?: boolean; host?: Partial<HostOptions> } = {},
): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-dashboard-'));
    const home = join(dir, 'home');
    const root = join(dir, 'renderer');
    mkdirSync(root);
    writeFileSync(join(dir, 'secret.txt'), SECRET);
    if (options.built !== false) {
      writeFileSync(join(root, 'index.html'), INDEX);
      writeFileSync(join(root, 'main.js'), 'console.log("berth");\n');
      writeFileSync(join(root, 'main.js.map'), '{"version":3}');
      writeFileSync(join(root, 'main.css'), 'body { margin: 0 }\n');
      writeFileSync(join(root, '.stamp'), 'a dotfile');
      symlinkSync(join(dir, 'secret.txt'), join(root, 'link-out.txt'));
      mkdirSync(join(root, 'assets'));
    }
    const runner = new FakeRunner();
    const host = await SupervisorHost.open({
      home,
      makeRunner: () => runner,
      hostLimits: () => HOST,
      dashboard: { root },
      ...options.host,
    });
    const closers: (() => void)[] = [];
    try {
      const { url } = await host.dashboard();
      const parsed = new URL(url);
      const port = Number(parsed.port);
      const token = parsed.searchParams.get('token') ?? '';
      const origin = `http://127.0.0.1:${port}`;
      await run({
        host,
        runner,
        paths: dataPaths(home),
        root,
        url,
        port,
        token,
        origin,
        connect: async (ws = {}) => {
          const socket = await openWebSocket(
            `ws://127.0.0.1:${port}/api${ws.query ?? `?token=${token}`}`,
            { origin: ws.origin === undefined ? origin : ws.origin, headers: ws.headers ?? {} },
          );
          const transport = new WsTransport(socket);
          closers.push(() => socket.terminate());
          return { api: new ApiClient(transport), ws: transport };
        },
        control: async () => {
          const conn = await ControlConnection.open(dataPaths(home).controlSocket);
          closers.push(() => conn.close());
          return { conn, api: new ApiClient(conn) };
        },
      });
    } finally {
      for (const close of closers) close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function refusal(opening: Promise<unknown>): Promise<RefusedError> {
  try {
    await opening;
  } catch (error) {
    assert.ok(error instanceof RefusedError, `not a refusal: ${String(error)}`);
    return error;
  }
  assert.fail('the WebSocket was accepted');
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test(
  'the URL: 127.0.0.1, a random port, a 32-byte base64url token',
  withDashboard(async ({ url, port, token }) => {
    assert.equal(url, `http://127.0.0.1:${port}/?token=${token}`);
    assert.ok(port > 0);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token, 'base64url').length, 32);
  }),
);

test(
  'GET / with the token: the page and the security headers; no cookie; assets load without it',
  withDashboard(async ({ port, token }) => {
    const page = await httpGet(port, `/?token=${token}`);
    assert.equal(page.status, 200);
    assert.equal(page.body, INDEX);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['content-security-policy'], CSP);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.equal(page.headers['x-frame-options'], 'DENY');
    // A cookie for 127.0.0.1 would reach every other local server the browser visits.
    assert.equal(page.headers['set-cookie'], undefined);
    // The bundle is the app's public code: it loads without the token, with its own types.
    const types: Record<string, string> = {
      '/main.js': 'text/javascript; charset=utf-8',
      '/main.css': 'text/css; charset=utf-8',
      '/main.js.map': 'application/json; charset=utf-8',
    };
    for (const [path, type] of Object.entries(types)) {
      const answer = await httpGet(port, path);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.headers['content-type'], type, path);
      assert.equal(answer.headers['cache-control'], 'no-store', path);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', path);
    }
    const head = await httpGet(port, '/main.js', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String('console.log("berth");\n'.length));
    assert.equal((await httpGet(port, '/favicon.ico')).status, 204, 'no icon file');
    const post = await httpGet(port, `/?token=${token}`, {}, 'POST');
    assert.equal(post.status, 405);
  }),
);

test(
  'the page and the API without the token: 401; a wrong token: 403',
  withDashboard(async ({ port, token }) => {
    for (const path of ['/', '/index.html']) {
      const answer = await httpGet(port, path);
      assert.equal(answer.status, 401, path);
      assert.match(answer.body, /access token/);
      assert.doesNotMatch(answer.body, new RegExp(token));
    }
    const wrong = 'A'.repeat(43);
    assert.equal((await httpGet(port, `/?token=${wrong}`)).status, 403);
    assert.equal((await httpGet(port, `/?token=${token}x`)).status, 403);
    assert.equal((await httpGet(port, `/?token=`)).status, 401);
    assert.equal(
      (await httpGet(port, '/', { Cookie: `berth_token=${token}` })).status,
      401,
      'a cookie is not a token',
    );
  }),
);

test(
  'a Host header other than 127.0.0.1:PORT or localhost:PORT is refused (DNS rebinding)',
  withDashboard(async ({ port, token }) => {
    for (const host of ['evil.com', `evil.com:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`]) {
      const answer = await httpGet(port, `/?token=${token}`, { Host: host });
      assert.equal(answer.status, 403, host);
      assert.match(answer.body, /Host/);
      assert.equal(answer.headers['set-cookie'], undefined);
    }
    assert.equal(
      (await httpGet(port, `/?token=${token}`, { Host: `localhost:${port}` })).status,
      200,
    );
  }),
);

test(
  'path traversal gets 404 and never a file outside the root',
  withDashboard(async ({ port, token }) => {
    const q = `?token=${token}`;
    for (const path of [
      '/../package.json',
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/..%5csecret.txt',
      '/%00index.html',
      '/link-out.txt',
      '/.stamp',
      '/assets',
      '/assets/',
      '/missing.js',
      '/%E0%A4%A',
      '/' + encodeURIComponent(join(tmpdir(), 'secret.txt')),
    ]) {
      const answer = await httpGet(port, `${path}${q}`);
      assert.equal(answer.status, 404, path);
      assert.ok(!answer.body.includes(SECRET), path);
      assert.ok(!answer.body.includes('"name": "berth"'), path);
    }
  }),
);

test(
  'without a built renderer, / is a page saying to run npm run setup',
  withDashboard(
    async ({ port, token }) => {
      const answer = await httpGet(port, `/?token=${token}`);
      assert.equal(answer.status, 503);
      assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
      assert.match(answer.body, /not built; run <code>npm run setup<\/code>/);
      assert.equal((await httpGet(port, `/main.js?token=${token}`)).status, 404);
    },
    { built: false },
  ),
);

test('the header policy adds frame-ancestors when the page (a meta policy) cannot', () => {
  assert.equal(headerPolicy(CSP), CSP);
  assert.equal(
    headerPolicy("default-src 'self'; connect-src 'self'"),
    "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  );
  assert.match(headerPolicy(null), /^default-src 'self'.*frame-ancestors 'none'$/);
});

test('metaPolicy reads the CSP of a page (and null without one)', () => {
  assert.equal(metaPolicy(INDEX), CSP);
  assert.equal(
    metaPolicy(readFileSync(new URL('../../../renderer/index.html', import.meta.url), 'utf8')) !==
      null,
    true,
  );
  assert.equal(metaPolicy('<html><meta charset="utf-8"></html>'), null);
});

test(
  'the WebSocket with the token and the page Origin: status answered, events after subscribe',
  withDashboard(async ({ host, connect }) => {
    const { api, ws } = await connect();
    assert.equal((await api.call('status')).state, 'stopped');
    assert.equal(host.dashboardClientCount, 1);
    assert.deepEqual(await api.call('subscribe', { events: ['state', 'progress'] }), {
      events: ['state', 'progress'],
    });
    const states: string[] = [];
    api.on('state', ({ from, to }) => states.push(`${from}>${to}`));
    assert.equal((await api.call('start')).state, 'running');
    assert.deepEqual(states, ['stopped>starting', 'starting>running']);
    assert.ok(ws.notifications('event.progress').length > 0);
    // Each message is a text frame with one JSON-RPC object.
    assert.ok(ws.messages.every((m) => m.jsonrpc === '2.0'));
  }),
);

test(
  'the WebSocket takes the token from the URL only, and works from localhost',
  withDashboard(async ({ port, token, connect }) => {
    const byCookie = connect({ query: '', headers: { Cookie: `berth_token=${token}` } });
    assert.equal((await refusal(byCookie)).status, 401);
    const socket = await openWebSocket(`ws://127.0.0.1:${port}/api?token=${token}`, {
      origin: `http://localhost:${port}`,
      headers: { Host: `localhost:${port}` },
    });
    socket.terminate();
  }),
);

test(
  'WebSockets are refused without the token, with a wrong one, or from another Origin',
  withDashboard(async ({ host, port, token, connect }) => {
    assert.equal((await refusal(connect({ query: '' }))).status, 401);
    assert.equal((await refusal(connect({ query: '?token=nope' }))).status, 403);
    for (const origin of [
      'http://evil.example',
      `http://evil.example:${port}`,
      `https://127.0.0.1:${port}`,
      `http://127.0.0.1:${port + 1}`,
      'null',
    ]) {
      const refused = await refusal(connect({ origin }));
      assert.equal(refused.status, 403, origin);
      assert.match(refused.body, /did not come from this dashboard/);
    }
    assert.equal((await refusal(connect({ origin: null }))).status, 403, 'no Origin at all');
    assert.equal(
      (await refusal(connect({ headers: { Host: `evil.com:${port}` } }))).status,
      403,
      'DNS rebinding',
    );
    await refusal(
      openWebSocket(`ws://127.0.0.1:${port}/other?token=${token}`, {
        origin: `http://127.0.0.1:${port}`,
      }),
    );
    assert.equal(host.dashboardClientCount, 0);
  }),
);

test(
  'a host terminal over the WebSocket: open, type, see the output; it ends with the page',
  withDashboard(async ({ host, connect }) => {
    const { api } = await connect();
    let output = '';
    api.on('terminal.output', ({ data }) => (output += Buffer.from(data, 'base64').toString()));
    const { id } = await api.call('terminal.open', { cols: 80, rows: 24 });
    assert.equal(id, 1);
    await api.call('terminal.write', {
      id,
      data: Buffer.from('echo hi-$((6*7))\r').toString('base64'),
    });
    await until('hi-42', () => output.includes('hi-42'));
    assert.deepEqual(await api.call('terminal.resize', { id, cols: 100, rows: 30 }), {});
    const exits: unknown[] = [];
    api.on('terminal.exit', (event) => exits.push(event));
    await api.call('terminal.write', { id, data: Buffer.from('exit 3\r').toString('base64') });
    await until('the exit', () => exits.length > 0);
    assert.deepEqual(exits, [{ id, code: 3 }]);
    // A shell still open when the page goes is hung up.
    const second = await api.call('terminal.open', { cols: 80, rows: 24 });
    await api.call('terminal.write', {
      id: second.id,
      data: Buffer.from('echo "pid=$$."\r').toString('base64'),
    });
    await until('the pid', () => /pid=\d+\./.test(output));
    const pid = Number(/pid=(\d+)\./.exec(output)?.[1]);
    assert.doesNotThrow(() => process.kill(pid, 0), 'the shell runs');
    api.close();
    await until('the page gone', () => host.dashboardClientCount === 0);
    await until('the shell gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }),
);

test(
  'the control socket opens the dashboard (once: the same URL twice) but serves no terminal',
  withDashboard(async ({ url, control }) => {
    const { api } = await control();
    assert.deepEqual(await api.call('dashboard.open'), { url });
    assert.deepEqual(await api.call('dashboard.open'), { url });
    await assert.rejects(api.call('terminal.open', { cols: 80, rows: 24 }), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.code, -32601);
      assert.match(error.message, /served by the desktop app and the dashboard/);
      return true;
    });
  }),
);

test(
  'dashboard.open on the dashboard WebSocket answers its own URL',
  withDashboard(async ({ url, connect }) => {
    const { api } = await connect();
    assert.deepEqual(await api.call('dashboard.open'), { url });
  }),
);

test(
  'a binary frame is answered with an error; a frame over the maximum closes the socket (1009)',
  withDashboard(async ({ connect }) => {
    const { ws } = await connect();
    ws.ws.send(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"status"}'), { binary: true });
    await until('the refusal', () => ws.messages.length > 0);
    assert.equal(ws.messages[0].error.code, -32600);
    assert.match(ws.messages[0].error.message, /text frame/);
    const bad = await connect();
    bad.ws.ws.send('x'.repeat(MAX_MESSAGE_BYTES + 1));
    assert.equal((await bad.ws.closed).code, 1009);
    await assert.rejects(bad.api.call('status'), /closed/);
    // Just under the maximum is read and answered (a 1 MiB write, as on the control socket).
    const data = Buffer.alloc(1024 * 1024, 1).toString('base64');
    const { api } = await connect();
    await assert.rejects(api.call('session.write', { id: 1, data }), /no session 1/);
  }),
);

test(
  'host.close() closes the pages with 1001 (going away) and stops listening',
  withDashboard(async ({ host, port, token, connect }) => {
    const { ws } = await connect();
    await host.close();
    assert.equal((await ws.closed).code, 1001);
    await assert.rejects(httpGet(port, `/?token=${token}`), /ECONNREFUSED/);
    await assert.rejects(host.dashboard(), /shutting down/);
  }),
);

test('the idle background host stays while a page is connected, and exits after it left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-dashboard-'));
  try {
    const host = await SupervisorHost.open({
      home: join(dir, 'home'),
      makeRunner: () => new FakeRunner(),
      hostLimits: () => HOST,
      dashboard: { root: join(dir, 'renderer'), terminals: null },
      idleExitMs: 150,
      dashboardVisitGraceMs: 0,
    });
    let done = false;
    void host.done.then(() => (done = true));
    const { url } = await host.dashboard();
    const { port, searchParams } = new URL(url);
    const socket = await openWebSocket(
      `ws://127.0.0.1:${port}/api?token=${searchParams.get('token')}`,
      {
        origin: `http://127.0.0.1:${port}`,
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.equal(done, false, 'a connected page keeps the host');
    socket.close();
    await until('the idle exit', () => done, 5000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dashboard URL just handed out keeps the idle host for the visit grace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-dashboard-'));
  try {
    const host = await SupervisorHost.open({
      home: join(dir, 'home'),
      makeRunner: () => new FakeRunner(),
      hostLimits: () => HOST,
      dashboard: { root: join(dir, 'renderer'), terminals: null },
      idleExitMs: 100,
      dashboardVisitGraceMs: 60_000,
    });
    let done = false;
    void host.done.then(() => (done = true));
    await host.dashboard();
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(done, false);
    await host.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
