// The app's dialogs (electron/dialogs.ts) and the main -> renderer navigation message
// (electron/ui-navigation.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmState } from '../../../core/api/types.ts';
import { DataDirLockedError } from '../../../core/supervisor/data-dir-lock.ts';
import {
  QUIT_BUTTON,
  dataDirLockedDialog,
  openFailedDialog,
  quitDialog,
  quitNeedsConfirmation,
} from '../../../electron/dialogs.ts';
import {
  UI_NAVIGATE_METHOD,
  UI_PAGES,
  isUiPage,
  navigateMessage,
} from '../../../electron/ui-navigation.ts';

test('quitting asks only while a VM runs or boots', () => {
  const asks: Record<VmState, boolean> = {
    stopped: false,
    starting: true,
    running: true,
    stopping: false,
    error: false,
  };
  for (const [state, ask] of Object.entries(asks)) {
    assert.equal(quitNeedsConfirmation(state as VmState), ask, state);
  }
});

test('the quit dialog: "Stop VM and quit" (the default) or "Cancel", no "leave running"', () => {
  const model = quitDialog('running');
  assert.deepEqual(model.buttons, ['Stop VM and quit', 'Cancel']);
  assert.equal(model.buttons[QUIT_BUTTON], 'Stop VM and quit');
  assert.equal(model.defaultId, QUIT_BUTTON);
  assert.equal(model.cancelId, 1);
  assert.match(model.message, /The VM is running/);
  assert.equal(model.type, 'question');
});

test('the locked-directory dialog names the directory and the process holding it', () => {
  const error = new DataDirLockedError('/home/u/.local/share/berth', 4242);
  const model = dataDirLockedDialog(error);
  assert.equal(model.type, 'error');
  assert.equal(model.title, 'Berth is already running');
  assert.match(model.detail, /\/home\/u\/\.local\/share\/berth/);
  assert.match(model.detail, /process 4242/);
  assert.deepEqual(model.buttons, ['Quit']);
});

test('any other failure to open says what went wrong', () => {
  const model = openFailedDialog('EACCES: permission denied, mkdir /data');
  assert.equal(model.type, 'error');
  assert.equal(model.detail, 'EACCES: permission denied, mkdir /data');
});

test('ui.navigate is one JSON-RPC 2.0 notification naming the page', () => {
  assert.deepEqual(UI_PAGES, ['dashboard', 'console', 'settings', 'logs', 'reset']);
  for (const page of UI_PAGES) {
    const message = JSON.parse(navigateMessage(page));
    assert.deepEqual(message, { jsonrpc: '2.0', method: UI_NAVIGATE_METHOD, params: { page } });
    assert.equal('id' in message, false, 'a notification has no id');
  }
  assert.equal(UI_NAVIGATE_METHOD, 'ui.navigate');
});

test('isUiPage accepts the pages and nothing else', () => {
  for (const page of UI_PAGES) assert.equal(isUiPage(page), true);
  for (const other of ['home', '', 'Dashboard', null, 3, undefined]) {
    assert.equal(isUiPage(other), false, String(other));
  }
});
