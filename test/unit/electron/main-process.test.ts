// The main process as it ships: scripts/build-electron.mjs bundles electron/main.ts, and the
// bundle runs here under plain Node with a recording stand-in for the `electron` module
// (fake-electron.ts; the Electron binary cannot be installed on these machines). It checks the
// wiring the pure modules' tests cannot: the single-instance lock, the supervisor hosted
// in-process (the control socket answers), the tray following the VM, IPC through validation to
// an ApiDispatch and back, navigation from the tray, the locked-data-directory dialog, and a quit
// that closes the host and releases the lock.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../../../core/paths.ts';
import { ControlConnection } from '../supervisor/control-connection.ts';
import { app, fake, ipcMain, type BrowserWindow, type FakeWebContents } from './fake-electron.ts';

const fakeUrl = new URL('./fake-electron.ts', import.meta.url).href;
// `import 'electron'` (external in the bundle) resolves to the stand-in, this very module.
register(
  `data:text/javascript,${encodeURIComponent(
    `export async function resolve(specifier, context, next) {
      if (specifier === 'electron') return { url: ${JSON.stringify(fakeUrl)}, shortCircuit: true };
      return next(specifier, context);
    }`,
  )}`,
);

const outDir = join(projectRoot, 'build', `electron-test-${process.pid}`);
const homes: string[] = [];
let bundleUrl = '';
let scenario = 0;

before(() => {
  execFileSync(process.execPath, ['scripts/build-electron.mjs', '--out', outDir], {
    cwd: projectRoot,
    stdio: 'pipe',
  });
  bundleUrl = pathToFileURL(join(outDir, 'main.js')).href;
});

after(() => {
  rmSync(outDir, { recursive: true, force: true });
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function newHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'berth-main-'));
  homes.push(home);
  return home;
}

/** Runs the bundle's top level once more (a fresh module instance), as a new app launch. */
async function launch(home: string): Promise<void> {
  process.env.BERTH_HOME = home;
  await import(`${bundleUrl}?launch=${++scenario}`);
}

async function waitFor<T>(what: string, probe: () => T | undefined | null | false): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function trayItem(id: string) {
  const item = fake.trays[0]?.menu?.template.find((entry) => entry.id === id);
  assert.ok(item, `tray item ${id}`);
  return item;
}

/** An IPC event as Electron builds it, from the main frame of `contents` showing `url`. */
function ipcEvent(contents: FakeWebContents, url: string, overrides: Record<string, unknown> = {}) {
  return {
    sender: contents,
    senderFrame: { url, parent: null, frameTreeNodeId: contents.mainFrame.frameTreeNodeId },
    ...overrides,
  };
}

function replies(contents: FakeWebContents): any[] {
  return contents.sent
    .filter((message) => message.channel === 'berth:message')
    .map((message) => JSON.parse(message.args[0] as string));
}

test('a second launch leaves at once (the first instance gets second-instance)', async () => {
  fake.reset();
  fake.singleInstance = false;
  await launch(newHome());
  assert.equal(fake.quitCalls, 1);
  assert.equal(fake.trays.length, 0);
  assert.equal(fake.windows.length, 0);
});

test('a data directory held by another Berth: a dialog says so, and the app exits', async () => {
  fake.reset();
  const home = newHome();
  const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    writeFileSync(join(home, 'berth.lock'), `${owner.pid}\n`);
    await launch(home);
    await waitFor('the exit', () => fake.exitCode !== null);
    assert.equal(fake.exitCode, 1);
    assert.equal(fake.dialogs.length, 1);
    assert.equal(fake.dialogs[0].title, 'Berth is already running');
    assert.match(fake.dialogs[0].detail, new RegExp(`process ${owner.pid}`));
    assert.equal(fake.trays.length, 0, 'no tray without a supervisor');
  } finally {
    owner.kill();
  }
});

test('the desktop app: tray, window, IPC, the control socket, navigation and quit', async (t) => {
  fake.reset();
  const home = newHome();
  await launch(home);
  const tray = await waitFor('the tray', () => fake.trays[0]);
  const window: BrowserWindow = await waitFor('the window', () => fake.windows[0]);
  const contents = window.webContents;
  const rendererIndex = join(projectRoot, 'build/renderer/index.html');
  const pageUrl = pathToFileURL(rendererIndex).href;

  await t.test('hardened before any window: sandbox, session, app name', () => {
    assert.equal(fake.sandboxEnabled, true);
    assert.equal(app.name, 'Berth');
    const request = (permission: string, requestingUrl: string, isMainFrame = true) => {
      let granted: boolean | null = null;
      fake.session.permissionRequest(
        { getURL: () => pageUrl },
        permission,
        (allow: boolean) => (granted = allow),
        { requestingUrl, isMainFrame },
      );
      return granted;
    };
    assert.equal(request('media', pageUrl), false);
    assert.equal(request('clipboard-read', pageUrl), false);
    assert.equal(request('clipboard-sanitized-write', pageUrl), true);
    assert.equal(request('clipboard-sanitized-write', pageUrl, false), false);
    assert.equal(request('clipboard-sanitized-write', 'https://example.com/'), false);
    const check = (permission: string, requestingUrl: string) =>
      fake.session.permissionCheck(null, permission, 'file:///', {
        requestingUrl,
        isMainFrame: true,
      });
    assert.equal(check('notifications', pageUrl), false);
    assert.equal(check('clipboard-sanitized-write', pageUrl), true);
    assert.deepEqual(fake.session.headersFilter, { urls: ['http://*/*', 'https://*/*'] });
  });

  await t.test('the window: secure webPreferences, our preload, the built renderer', () => {
    const prefs = window.options.webPreferences;
    assert.equal(prefs.contextIsolation, true);
    assert.equal(prefs.sandbox, true);
    assert.equal(prefs.nodeIntegration, false);
    assert.equal(prefs.webSecurity, true);
    assert.equal(prefs.webviewTag, false);
    // The bundle finds the project root from build/: its paths are the checkout's.
    assert.equal(prefs.preload, join(projectRoot, 'build/electron/preload/index.cjs'));
    assert.equal(contents.loadedFile, rendererIndex);
  });

  await t.test('navigation and new windows are refused', () => {
    let prevented = false;
    contents.emit('will-navigate', {
      url: 'https://example.com/',
      preventDefault: () => (prevented = true),
    });
    assert.equal(prevented, true);
    prevented = false;
    contents.emit('will-navigate', {
      url: pageUrl,
      preventDefault: () => (prevented = true),
    });
    assert.equal(prevented, false, 'our own page may load');
    assert.deepEqual(contents.windowOpenHandler?.({ url: 'file:///etc/passwd' }), {
      action: 'deny',
    });
  });

  await t.test('the tray shows the stopped VM; Start is offered, Stop is not', () => {
    assert.equal(tray.image.path, join(projectRoot, 'assets/tray/stopped.png'));
    assert.ok(existsSync(tray.image.path));
    assert.match(tray.tooltip, /stopped/);
    assert.equal(trayItem('start').enabled, true);
    assert.equal(trayItem('stop').enabled, false);
  });

  await t.test('a valid IPC request reaches the supervisor and its answer comes back', async () => {
    const request = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'status' });
    ipcMain.emit('berth:message', ipcEvent(contents, pageUrl), request);
    const reply = await waitFor('the reply', () => replies(contents).find((m) => m.id === 1));
    assert.equal(reply.result.state, 'stopped');
    assert.equal(reply.result.dataDirectory, home);
  });

  await t.test('IPC from elsewhere is dropped without an answer', async () => {
    const ask = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'status' });
    ipcMain.emit('berth:message', ipcEvent(contents, 'https://evil.example/'), ask(2));
    ipcMain.emit(
      'berth:message',
      ipcEvent(contents, pageUrl, {
        senderFrame: { url: pageUrl, parent: {}, frameTreeNodeId: 99 },
      }),
      ask(3),
    );
    ipcMain.emit('berth:message', ipcEvent(contents, pageUrl), { not: 'a string' });
    ipcMain.emit('berth:message', ipcEvent(contents, pageUrl), ask(4));
    await waitFor('the valid reply', () => replies(contents).find((m) => m.id === 4));
    assert.deepEqual(
      replies(contents)
        .map((m) => m.id)
        .filter((id) => id >= 2),
      [4],
    );
  });

  await t.test('the berth command reaches the same supervisor (control socket)', async () => {
    const connection = await ControlConnection.open(join(home, 'run/control.sock'));
    try {
      connection.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'status' }));
      const reply = await waitFor('the socket reply', () =>
        connection.messages.find((m) => m.id === 7),
      );
      assert.equal(reply.result.state, 'stopped');
    } finally {
      connection.close();
    }
  });

  await t.test('a tray page waits for the page to load, then navigates', async () => {
    const navigations = () =>
      replies(contents)
        .filter((m) => m.method === 'ui.navigate')
        .map((m) => m.params.page);
    tray.click('settings');
    assert.deepEqual(navigations(), [], 'not before the page has loaded');
    contents.emit('did-finish-load');
    assert.deepEqual(navigations(), ['settings']);
    tray.click('console');
    tray.click('reset');
    assert.deepEqual(navigations(), ['settings', 'console', 'reset']);
    assert.ok(window.shown > 0 && window.focused > 0, 'the window comes to the front');
  });

  await t.test('a second launch brings the window forward', () => {
    const focused = window.focused;
    app.emit('second-instance');
    assert.equal(window.focused, focused + 1);
  });

  await t.test('closing the window keeps the app; the tray opens a new one', () => {
    window.close();
    assert.equal(fake.quitted, false);
    tray.click('dashboard');
    assert.equal(fake.windows.length, 2);
  });

  await t.test(
    'Quit with the VM stopped: no question, the host closes, the lock goes',
    async () => {
      tray.click('quit');
      await waitFor('the quit', () => fake.quitted);
      assert.equal(fake.dialogs.length, 0);
      assert.equal(existsSync(join(home, 'berth.lock')), false);
      assert.equal(existsSync(join(home, 'run/control.sock')), false);
    },
  );
});
