// The API's run-time parameter checks (core/api/methods.ts) as a client sees them: good params
// pass unchanged, and a bad request is refused with JSON-RPC's invalid-params code, every wrong
// field named in data.errors and in the message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, ErrorCode } from '../../../core/api/errors.ts';
import {
  API_METHODS,
  MAX_SESSION_WRITE_BYTES,
  checkParams,
  isApiMethod,
  type ApiMethod,
} from '../../../core/api/methods.ts';

/** Asserts checkParams refuses `params` naming exactly `fields` (in any order); returns the error. */
function refuses(method: ApiMethod, params: unknown, fields: string[]): ApiError {
  let caught: unknown;
  try {
    checkParams(method, params);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ApiError, `${method} ${short(params)} was accepted`);
  assert.equal(caught.code, ErrorCode.invalidParams);
  assert.equal(caught.code, -32602);
  const named = (caught.data?.errors ?? []).map((e) => e.field);
  assert.deepEqual([...named].sort(), [...fields].sort(), caught.message);
  for (const field of fields) {
    assert.ok(caught.message.includes(`${field}:`), `message names ${field}: ${caught.message}`);
  }
  for (const error of caught.data?.errors ?? []) {
    assert.equal(typeof error.message, 'string');
    assert.ok(error.message.length > 0);
  }
  return caught;
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function messageOf(error: ApiError, field: string): string {
  const found = error.data?.errors?.find((e) => e.field === field);
  assert.ok(found, `no error for ${field}`);
  return found.message;
}

const b64 = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');

test('the method list is the documented API, and isApiMethod knows exactly those', () => {
  assert.deepEqual(
    [...API_METHODS].sort(),
    [
      'logs',
      'reset',
      'restart',
      'session.close',
      'session.eof',
      'session.open',
      'session.resize',
      'session.write',
      'settings.get',
      'settings.history',
      'settings.rollback',
      'settings.set',
      'start',
      'status',
      'stop',
      'subscribe',
      'stats',
      'terminal.open',
      'terminal.write',
      'terminal.resize',
      'terminal.close',
      'dashboard.open',
    ].sort(),
  );
  for (const method of API_METHODS) assert.equal(isApiMethod(method), true, method);
  for (const name of [
    'toString',
    'constructor',
    '__proto__',
    'hasOwnProperty',
    'Status',
    'status ',
    'settings',
    'session',
    '',
    'event.state',
    'event.engine',
    'engine',
  ]) {
    assert.equal(isApiMethod(name), false, JSON.stringify(name));
  }
  for (const value of [undefined, null, 1, {}, ['status'], true]) {
    assert.equal(isApiMethod(value), false, String(value));
  }
});

test('valid params pass and come back as given', () => {
  const valid: [ApiMethod, unknown][] = [
    ['status', {}],
    ['start', {}],
    ['settings.get', {}],
    ['stop', {}],
    ['stop', { deadlineMs: 0 }],
    ['stop', { deadlineMs: 600_000 }],
    ['restart', { deadlineMs: 15_000 }],
    ['reset', { confirm: true }],
    ['reset', { confirm: true, source: 'gui' }],
    ['settings.set', { changes: {} }],
    ['settings.set', { changes: { cpus: 4 }, source: 'cli', message: 'more', apply: true }],
    ['settings.set', { changes: { anything: 'goes to the schema' }, apply: false }],
    ['settings.history', {}],
    ['settings.history', { limit: 1 }],
    ['settings.history', { limit: 100_000 }],
    ['settings.rollback', { revision: 0 }],
    ['settings.rollback', { revision: 3, source: 'gui', message: 'x'.repeat(500), apply: true }],
    ['logs', {}],
    ['logs', { lines: 1 }],
    ['logs', { lines: 100_000 }],
    ['subscribe', {}],
    ['subscribe', { events: [] }],
    ['subscribe', { events: ['state', 'progress', 'serial', 'settings', 'engine'] }],
    ['subscribe', { events: ['engine'] }],
    ['session.open', {}],
    ['session.open', { command: 'uname -a' }],
    ['session.open', { pty: { cols: 80, rows: 24 } }],
    ['session.open', { command: 'top', pty: { cols: 1, rows: 1000, term: 'xterm-256color' } }],
    ['session.write', { id: 1, data: '' }],
    ['session.write', { id: 1, data: 'aGVsbG8=' }],
    ['session.write', { id: 2, data: 'aGk=' }],
    ['session.write', { id: Number.MAX_SAFE_INTEGER, data: b64(MAX_SESSION_WRITE_BYTES) }],
    ['session.eof', { id: 1 }],
    ['session.resize', { id: 1, cols: 1000, rows: 1 }],
    ['session.close', { id: 9 }],
  ];
  for (const [method, params] of valid) {
    assert.doesNotThrow(() => checkParams(method, params), `${method} ${short(params)}`);
    assert.equal(checkParams(method, params), params);
  }
});

test('absent params mean {}: accepted where nothing is required, refused where something is', () => {
  for (const method of ['status', 'start', 'stop', 'restart', 'settings.get', 'logs'] as const) {
    assert.deepEqual(checkParams(method, undefined), {});
  }
  assert.deepEqual(checkParams('subscribe', undefined), {});
  assert.deepEqual(checkParams('settings.history', undefined), {});
  assert.deepEqual(checkParams('session.open', undefined), {});
  refuses('settings.set', undefined, ['changes']);
  refuses('settings.rollback', undefined, ['revision']);
  refuses('session.write', undefined, ['id', 'data']);
  refuses('session.eof', undefined, ['id']);
  refuses('session.resize', undefined, ['id', 'cols', 'rows']);
  refuses('session.close', undefined, ['id']);
  refuses('reset', undefined, ['confirm']);
});

test('params that are not an object are refused as a whole, naming "params"', () => {
  for (const params of [null, [], [1, 2], 'status', 5, true]) {
    const error = refuses('status', params, ['params']);
    assert.match(error.message, /^status: params: must be an object/);
  }
  const list = refuses('stop', [{ deadlineMs: 1 }], ['params']);
  assert.match(messageOf(list, 'params'), /got a list/);
  assert.match(messageOf(refuses('logs', null, ['params']), 'params'), /got null/);
});

test('unknown fields are refused, each named, with the fields the method does take', () => {
  const status = refuses('status', { verbose: true }, ['verbose']);
  assert.equal(messageOf(status, 'verbose'), 'is not a parameter here');
  assert.match(status.message, /^status: verbose: is not a parameter here$/);

  const stop = refuses('stop', { deadline: 5, force: true }, ['deadline', 'force']);
  assert.match(messageOf(stop, 'deadline'), /expected deadlineMs/);

  const set = refuses('settings.set', { changes: {}, cpus: 2 }, ['cpus']);
  assert.match(messageOf(set, 'cpus'), /expected changes, source, message, apply/);

  // Names that exist on every object's prototype are still unknown parameters.
  refuses('logs', JSON.parse('{"__proto__": {"lines": 5}}'), ['__proto__']);
  refuses('status', { toString: 'x', constructor: 1 }, ['toString', 'constructor']);
  refuses('settings.history', { hasOwnProperty: 1 }, ['hasOwnProperty']);
});

test('every wrong field of one request is named at once, unknown and invalid together', () => {
  const error = refuses('settings.rollback', { revision: -1, source: 'web', apply: 'yes', x: 1 }, [
    'x',
    'revision',
    'source',
    'apply',
  ]);
  assert.match(error.message, /^settings\.rollback: /);
  assert.match(messageOf(error, 'revision'), /whole number from 0/);
  assert.match(messageOf(error, 'source'), /one of cli, gui \(got "web"\)/);
  assert.match(messageOf(error, 'apply'), /true or false \(got "yes"\)/);
  assert.match(messageOf(error, 'x'), /is not a parameter here/);
});

test('missing required fields are reported as required', () => {
  const write = refuses('session.write', { data: 'AAAA' }, ['id']);
  assert.equal(messageOf(write, 'id'), 'is required');
  const resize = refuses('session.resize', { id: 1 }, ['cols', 'rows']);
  assert.equal(messageOf(resize, 'cols'), 'is required');
  assert.equal(messageOf(resize, 'rows'), 'is required');
  const set = refuses('settings.set', { apply: true }, ['changes']);
  assert.equal(messageOf(set, 'changes'), 'is required');
});

test('wrong types are refused with what was given', () => {
  assert.match(
    messageOf(refuses('stop', { deadlineMs: '1000' }, ['deadlineMs']), 'deadlineMs'),
    /got "1000"/,
  );
  refuses('stop', { deadlineMs: 1.5 }, ['deadlineMs']);
  refuses('stop', { deadlineMs: null }, ['deadlineMs']);
  refuses('restart', { deadlineMs: true }, ['deadlineMs']);
  assert.match(
    messageOf(refuses('settings.set', { changes: [] }, ['changes']), 'changes'),
    /must be an object \(got a list\)/,
  );
  refuses('settings.set', { changes: null }, ['changes']);
  refuses('settings.set', { changes: 'cpus=2' }, ['changes']);
  refuses('settings.set', { changes: {}, apply: 1 }, ['apply']);
  refuses('settings.set', { changes: {}, message: 42 }, ['message']);
  refuses('settings.set', { changes: {}, source: 'CLI' }, ['source']);
  refuses('settings.rollback', { revision: '3' }, ['revision']);
  refuses('settings.history', { limit: [] }, ['limit']);
  refuses('logs', { lines: {} }, ['lines']);
  refuses('session.open', { command: ['ls', '-l'] }, ['command']);
  refuses('session.open', { pty: 'xterm' }, ['pty']);
  refuses('session.open', { pty: [80, 24] }, ['pty']);
  refuses('session.write', { id: '1', data: 'AAAA' }, ['id']);
  refuses('session.write', { id: 1, data: 5 }, ['data']);
  refuses('session.eof', { id: 1.1 }, ['id']);
  refuses('session.close', { id: null }, ['id']);
  refuses('subscribe', { events: 'state' }, ['events']);
});

test('numbers out of range are refused, the bounds themselves accepted', () => {
  const bounds: [ApiMethod, string, number, number, Record<string, unknown>][] = [
    ['stop', 'deadlineMs', 0, 600_000, {}],
    ['restart', 'deadlineMs', 0, 600_000, {}],
    ['settings.history', 'limit', 1, 100_000, {}],
    ['logs', 'lines', 1, 100_000, {}],
    ['settings.rollback', 'revision', 0, Number.MAX_SAFE_INTEGER, {}],
    ['session.eof', 'id', 1, Number.MAX_SAFE_INTEGER, {}],
    ['session.close', 'id', 1, Number.MAX_SAFE_INTEGER, {}],
    ['session.write', 'id', 1, Number.MAX_SAFE_INTEGER, { data: '' }],
    ['session.resize', 'id', 1, Number.MAX_SAFE_INTEGER, { cols: 80, rows: 24 }],
    ['session.resize', 'cols', 1, 1000, { id: 1, rows: 24 }],
    ['session.resize', 'rows', 1, 1000, { id: 1, cols: 80 }],
  ];
  for (const [method, field, min, max, rest] of bounds) {
    assert.doesNotThrow(() => checkParams(method, { ...rest, [field]: min }), `${method} ${min}`);
    assert.doesNotThrow(() => checkParams(method, { ...rest, [field]: max }), `${method} ${max}`);
    const below = refuses(method, { ...rest, [field]: min - 1 }, [field]);
    assert.match(messageOf(below, field), new RegExp(`from ${min} to ${max} \\(got ${min - 1}\\)`));
    // Past MAX_SAFE_INTEGER the value is no longer a safe integer, which is refused too.
    refuses(method, { ...rest, [field]: max + 1 }, [field]);
    refuses(method, { ...rest, [field]: min + 0.5 }, [field]);
  }
});

test('strings are refused when too long or holding NUL', () => {
  refuses('settings.set', { changes: {}, message: 'x'.repeat(501) }, ['message']);
  refuses('settings.set', { changes: {}, message: 'a\0b' }, ['message']);
  refuses('settings.rollback', { revision: 0, message: 'x'.repeat(501) }, ['message']);
  assert.doesNotThrow(() => checkParams('session.open', { command: 'x'.repeat(64 * 1024) }));
  refuses('session.open', { command: 'x'.repeat(64 * 1024 + 1) }, ['command']);
  refuses('session.open', { command: 'ls\0-l' }, ['command']);
  const long = refuses('settings.set', { changes: {}, message: 'y'.repeat(600) }, ['message']);
  // The value is quoted back shortened, not all 600 characters.
  assert.ok(long.message.length < 300, long.message);
  assert.match(long.message, /…/);
});

test('session.write data must be base64 within the write limit', () => {
  const bad = ['a', 'ab', 'abc', 'ab=c', '=abc', 'a===', 'ab c', 'abc\n', 'ab-_', '****', 'éééé'];
  for (const data of bad) {
    const error = refuses('session.write', { id: 1, data }, ['data']);
    assert.match(messageOf(error, 'data'), /must be base64 of at most 1048576 bytes/);
  }
  for (const data of [
    '',
    'AAAA',
    'AAA=',
    'AA==',
    'ab+/',
    Buffer.from('héllo\0').toString('base64'),
  ])
    assert.doesNotThrow(() => checkParams('session.write', { id: 1, data }), data);
  assert.doesNotThrow(() =>
    checkParams('session.write', { id: 1, data: b64(MAX_SESSION_WRITE_BYTES) }),
  );
  refuses('session.write', { id: 1, data: b64(MAX_SESSION_WRITE_BYTES + 3) }, ['data']);
});

test('session.write refuses data one or two bytes over the write limit', () => {
  refuses('session.write', { id: 1, data: b64(MAX_SESSION_WRITE_BYTES + 1) }, ['data']);
  refuses('session.write', { id: 1, data: b64(MAX_SESSION_WRITE_BYTES + 2) }, ['data']);
});

test('reset needs confirm: true, and says why', () => {
  for (const params of [{}, { confirm: false }, { confirm: 'true' }, { confirm: 1 }]) {
    const error = refuses('reset', params, ['confirm']);
    assert.match(messageOf(error, 'confirm'), /^must be true: reset deletes the data disk/);
  }
  const both = refuses('reset', { confirm: true, source: 'script' }, ['source']);
  assert.match(both.message, /^reset: source:/);
  refuses('reset', { confirm: true, force: true }, ['force']);
});

test('pty sizes: both dimensions required, each 1..1000, term a short string, nothing else', () => {
  const cases: [unknown, RegExp][] = [
    [{}, /pty\.cols is required; pty\.rows is required/],
    [{ cols: 80 }, /^pty\.rows is required$/],
    [{ cols: 0, rows: 24 }, /pty\.cols must be a whole number from 1 to 1000 \(got 0\)/],
    [{ cols: 80, rows: 1001 }, /pty\.rows must be a whole number from 1 to 1000 \(got 1001\)/],
    [{ cols: '80', rows: 24 }, /pty\.cols must be a whole number/],
    [{ cols: 80, rows: 24, term: 'x'.repeat(65) }, /pty\.term must be a string of at most 64/],
    [{ cols: 80, rows: 24, term: 7 }, /pty\.term must be a string/],
    [{ cols: 80, rows: 24, width: 3 }, /pty\.width is not a parameter here; expected cols, rows/],
  ];
  for (const [pty, message] of cases) {
    const error = refuses('session.open', { pty }, ['pty']);
    assert.match(messageOf(error, 'pty'), message);
    assert.match(error.message, /^session\.open: pty: pty\./);
  }
  assert.doesNotThrow(() =>
    checkParams('session.open', { pty: { cols: 80, rows: 24, term: 'x'.repeat(64) } }),
  );
  refuses('session.open', { pty: null }, ['pty']);
  refuses('session.resize', { id: 1, cols: 0, rows: 0 }, ['cols', 'rows']);
  refuses('session.resize', { id: 1, cols: 80, rows: 24, term: 'xterm' }, ['term']);
});

test('subscribe events must be known event types', () => {
  const error = refuses('subscribe', { events: ['state', 'bogus'] }, ['events']);
  assert.match(
    messageOf(error, 'events'),
    /must be a list of state, progress, serial, settings, engine/,
  );
  refuses('subscribe', { events: [1] }, ['events']);
  refuses('subscribe', { events: ['session.output'] }, ['events']);
  refuses('subscribe', { events: null }, ['events']);
});

test('the error is an ApiError whose message starts with the method and lists each field', () => {
  const error = refuses('session.resize', { id: 0, cols: 80 }, ['id', 'rows']);
  assert.equal(error.name, 'ApiError');
  assert.ok(error instanceof Error);
  assert.equal(
    error.message,
    'session.resize: id: must be a whole number from 1 to 9007199254740991 (got 0); rows: is required',
  );
  assert.deepEqual(error.data, {
    errors: [
      { field: 'id', message: 'must be a whole number from 1 to 9007199254740991 (got 0)' },
      { field: 'rows', message: 'is required' },
    ],
  });
});
