// electron/ipc-validation.ts: which IPC messages main accepts. Events are plain objects shaped
// like Electron's IpcMainEvent (sender, senderFrame), as main receives them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_MESSAGE_BYTES } from '../../../core/api/jsonrpc.ts';
import {
  BERTH_CHANNEL,
  validateIpcMessage,
  type IpcEventLike,
  type IpcPolicy,
} from '../../../electron/ipc-validation.ts';

const ROOT = 'file:///opt/Berth/resources/app.asar/build/renderer/';
const PAGE = `${ROOT}index.html`;
const OURS = 7;
const MAIN_FRAME = 70;

const policy: IpcPolicy = { rendererRoot: ROOT, isOurWebContents: (id) => id === OURS };
const request = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'status' });

function event(
  frame: Partial<NonNullable<IpcEventLike['senderFrame']>> | null = {},
  senderId = OURS,
): IpcEventLike {
  return {
    sender: { id: senderId, mainFrame: { frameTreeNodeId: MAIN_FRAME } },
    senderFrame:
      frame === null ? null : { url: PAGE, parent: null, frameTreeNodeId: MAIN_FRAME, ...frame },
  };
}

function reason(verdict: ReturnType<typeof validateIpcMessage>): string {
  assert.equal(verdict.ok, false, 'expected the message to be refused');
  return verdict.ok ? '' : verdict.reason;
}

test('the channel is the one the preload uses', () => {
  assert.equal(BERTH_CHANNEL, 'berth:message');
});

test('a JSON-RPC text from the main frame of our window, on our page, is accepted', () => {
  assert.deepEqual(validateIpcMessage(event(), request, policy), { ok: true, text: request });
  // A route in the fragment or a query is still our page.
  const routed = event({ url: `${PAGE}?x=1#/settings` });
  assert.equal(validateIpcMessage(routed, request, policy).ok, true);
  const nested = event({ url: `${ROOT}pages/console.html` });
  assert.equal(validateIpcMessage(nested, request, policy).ok, true);
});

test('a frame that is gone or detached is refused', () => {
  assert.match(reason(validateIpcMessage(event(null), request, policy)), /frame is gone/);
  assert.match(reason(validateIpcMessage(event({ detached: true }), request, policy)), /detached/);
});

test('a webContents that is not one of our windows is refused', () => {
  assert.match(
    reason(validateIpcMessage(event({}, 8), request, policy)),
    /webContents 8 is not a Berth window/,
  );
});

test('a subframe is refused, even on our own page', () => {
  const iframe = event({ parent: { url: PAGE }, frameTreeNodeId: 71 });
  assert.match(reason(validateIpcMessage(iframe, request, policy)), /subframe/);
  // A frame claiming no parent but not being the main frame is a subframe too.
  const orphan = event({ frameTreeNodeId: 71 });
  assert.match(reason(validateIpcMessage(orphan, request, policy)), /subframe/);
});

test('a page outside the renderer root is refused, however its URL is dressed', () => {
  const outside = [
    'https://example.com/index.html',
    'http://localhost:8080/',
    'file:///opt/Berth/resources/app.asar/build/renderer-evil/index.html',
    'file:///opt/Berth/resources/app.asar/build/index.html',
    `${ROOT}../../../../../etc/passwd`,
    `${ROOT}%2e%2e/%2e%2e/secret.html`,
    `${ROOT}..%2f..%2fsecret.html`,
    'file://evil.example/opt/Berth/resources/app.asar/build/renderer/index.html',
    'data:text/html,<script>1</script>',
    'about:blank',
    'devtools://devtools/bundled/index.html',
    'not a url',
    '',
  ];
  for (const url of outside) {
    assert.match(
      reason(validateIpcMessage(event({ url }), request, policy)),
      /is not Berth's renderer/,
      url,
    );
  }
});

test('the payload must be a string', () => {
  for (const [payload, what] of [
    [undefined, 'an undefined'],
    [null, 'null'],
    [42, 'a number'],
    [{ jsonrpc: '2.0' }, 'an object'],
    [['x'], 'an array'],
    [Buffer.from(request), 'an object'],
  ] as const) {
    assert.equal(
      reason(validateIpcMessage(event(), payload, policy)),
      `the payload is ${what}, not a string`,
    );
  }
});

test('the payload may be at most MAX_MESSAGE_BYTES of UTF-8', () => {
  const limit = 64;
  const small: IpcPolicy = { ...policy, maxBytes: limit };
  assert.equal(validateIpcMessage(event(), 'a'.repeat(limit), small).ok, true);
  assert.match(
    reason(validateIpcMessage(event(), 'a'.repeat(limit + 1), small)),
    /longer than 64 bytes/,
  );
  // Counted in bytes, not characters: 22 three-byte characters are 66 bytes.
  assert.equal(validateIpcMessage(event(), '€'.repeat(21), small).ok, true);
  assert.equal(validateIpcMessage(event(), '€'.repeat(22), small).ok, false);
  // The default is the API's own limit.
  const huge = 'a'.repeat(MAX_MESSAGE_BYTES + 1);
  assert.match(reason(validateIpcMessage(event(), huge, policy)), /longer than/);
  assert.equal(validateIpcMessage(event(), huge.slice(1), policy).ok, true);
});

test('the sender is checked before the payload', () => {
  assert.match(
    reason(validateIpcMessage(event({ url: 'https://example.com/' }), 42, policy)),
    /is not Berth's renderer/,
  );
});
