// JSON-RPC 2.0 framing (core/api/jsonrpc.ts): what a request must look like, the error a client
// gets for each way it can be wrong (with its id when that id is usable), and the exact shapes
// of answers and notifications on the wire.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, ErrorCode } from '../../../core/api/errors.ts';
import {
  MAX_MESSAGE_BYTES,
  RequestError,
  failure,
  isRequest,
  notification,
  parseRequest,
  success,
} from '../../../core/api/jsonrpc.ts';

/** parseRequest must refuse `text` with `code`, answering to `id`; returns the error. */
function refused(text: string, code: number, id: string | number | null): RequestError {
  let caught: unknown;
  try {
    parseRequest(text);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof RequestError, `accepted: ${text}`);
  assert.ok(caught instanceof ApiError, 'a RequestError is an ApiError');
  assert.equal(caught.code, code, `${text}: ${caught.message}`);
  assert.equal(caught.id, id, text);
  assert.ok(caught.message.length > 0);
  return caught;
}

test('error codes are JSON-RPC 2.0 ones, and Berth own codes are small positive numbers', () => {
  assert.equal(ErrorCode.parseError, -32700);
  assert.equal(ErrorCode.invalidRequest, -32600);
  assert.equal(ErrorCode.methodNotFound, -32601);
  assert.equal(ErrorCode.invalidParams, -32602);
  assert.equal(ErrorCode.internalError, -32603);
  assert.equal(ErrorCode.wrongState, 2);
  assert.equal(MAX_MESSAGE_BYTES, 2 * 1024 * 1024);
});

test('a well-formed request is returned as sent', () => {
  const text = '{"jsonrpc":"2.0","id":7,"method":"settings.set","params":{"changes":{"cpus":2}}}';
  const request = parseRequest(text);
  assert.deepEqual(request, {
    jsonrpc: '2.0',
    id: 7,
    method: 'settings.set',
    params: { changes: { cpus: 2 } },
  });
  assert.equal(isRequest(request), true);
});

test('ids may be strings or whole numbers, including 0, negative and the empty string', () => {
  for (const id of [0, -5, 1, Number.MAX_SAFE_INTEGER, 'abc', '', '42']) {
    const request = parseRequest(JSON.stringify({ jsonrpc: '2.0', id, method: 'status' }));
    assert.equal(isRequest(request), true, JSON.stringify(id));
    assert.equal((request as { id: unknown }).id, id);
  }
});

test('a message without an id is a notification', () => {
  const message = parseRequest('{"jsonrpc":"2.0","method":"status"}');
  assert.equal(isRequest(message), false);
  assert.deepEqual(message, { jsonrpc: '2.0', method: 'status' });
  // params are not checked here: that is the method's job.
  const withParams = parseRequest('{"jsonrpc":"2.0","method":"x","params":[1,2]}');
  assert.deepEqual((withParams as { params: unknown }).params, [1, 2]);
});

test('text that is not JSON is a parse error, answered to id null', () => {
  for (const text of ['', 'hello', '{', '{"jsonrpc":"2.0","id":1,', "{'id':1}", '{"id":1}}']) {
    const error = refused(text, -32700, null);
    assert.match(error.message, /^not JSON: /);
  }
});

test('JSON that is not one object is an invalid request, answered to id null', () => {
  const batch = JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'status' }]);
  for (const text of [batch, '[]', 'null', '1', '"status"', 'true']) {
    const error = refused(text, -32600, null);
    assert.match(error.message, /must be a JSON object \(batches are not supported\)/);
  }
});

test('a wrong or missing jsonrpc version is refused, answered to the request id', () => {
  refused('{"jsonrpc":"1.0","id":5,"method":"status"}', -32600, 5);
  refused('{"id":"a","method":"status"}', -32600, 'a');
  refused('{"jsonrpc":2.0,"id":6,"method":"status"}', -32600, 6);
  const error = refused('{"jsonrpc":"2","method":"status"}', -32600, null);
  assert.match(error.message, /jsonrpc must be "2\.0"/);
});

test('an id that is not a string or whole number is refused, answered to id null', () => {
  for (const id of ['1.5', 'null', 'true', '{}', '[1]', '9007199254740992', '-1e400']) {
    const error = refused(`{"jsonrpc":"2.0","id":${id},"method":"status"}`, -32600, null);
    assert.match(error.message, /id must be a string or a whole number/);
  }
});

test('a missing, empty or non-string method is refused, answered to the request id', () => {
  for (const method of [undefined, '', 5, null, ['status'], { name: 'status' }]) {
    const error = refused(JSON.stringify({ jsonrpc: '2.0', id: 9, method }), -32600, 9);
    assert.match(error.message, /method must be a non-empty string/);
  }
  refused('{"jsonrpc":"2.0","id":"q","method":""}', -32600, 'q');
  refused('{"jsonrpc":"2.0"}', -32600, null);
});

test('success answers carry the id and the result', () => {
  assert.deepEqual(success(3, { state: 'stopped' }), {
    jsonrpc: '2.0',
    id: 3,
    result: { state: 'stopped' },
  });
  assert.deepEqual(success('x', null), { jsonrpc: '2.0', id: 'x', result: null });
  assert.equal(JSON.stringify(success(1, {})), '{"jsonrpc":"2.0","id":1,"result":{}}');
});

test('failure of an ApiError keeps its code, message and data', () => {
  const errors = [{ field: 'memoryMiB', message: 'must be at least 512' }];
  const error = new ApiError(ErrorCode.invalidParams, 'settings: memoryMiB: bad', { errors });
  assert.deepEqual(failure(4, error), {
    jsonrpc: '2.0',
    id: 4,
    error: { code: -32602, message: 'settings: memoryMiB: bad', data: { errors } },
  });
  // Without data there is no data key at all (not "data": undefined or null).
  const plain = failure('id', new ApiError(ErrorCode.wrongState, 'the VM is stopped'));
  assert.deepEqual(plain, {
    jsonrpc: '2.0',
    id: 'id',
    error: { code: 2, message: 'the VM is stopped' },
  });
  assert.equal(Object.hasOwn(plain.error, 'data'), false);
  assert.equal(
    JSON.stringify(plain),
    '{"jsonrpc":"2.0","id":"id","error":{"code":2,"message":"the VM is stopped"}}',
  );
});

test('failure of a RequestError answers to the given id with its code', () => {
  let caught: unknown;
  try {
    parseRequest('not json');
  } catch (error) {
    caught = error;
  }
  const answer = failure(null, caught);
  assert.equal(answer.id, null);
  assert.equal(answer.error.code, -32700);
  assert.match(answer.error.message, /^not JSON/);
  assert.equal(answer.jsonrpc, '2.0');
});

test('failure of anything that is not an ApiError is an internal error -32603', () => {
  assert.deepEqual(failure(1, new Error('disk on fire')), {
    jsonrpc: '2.0',
    id: 1,
    error: { code: -32603, message: 'disk on fire' },
  });
  assert.deepEqual(failure(2, new TypeError('x is undefined')).error, {
    code: -32603,
    message: 'x is undefined',
  });
  assert.deepEqual(failure(3, 'a string was thrown').error, {
    code: -32603,
    message: 'a string was thrown',
  });
  assert.deepEqual(failure(null, undefined), {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32603, message: 'undefined' },
  });
  // An error's own code property (an errno string, say) does not leak into the JSON-RPC code.
  const errno = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  assert.equal(failure(5, errno).error.code, -32603);
});

test('notifications have a method and params and no id', () => {
  const message = notification('event.state', { from: 'stopped', to: 'starting', at: 1 });
  assert.deepEqual(message, {
    jsonrpc: '2.0',
    method: 'event.state',
    params: { from: 'stopped', to: 'starting', at: 1 },
  });
  assert.equal('id' in message, false);
  // What a client parses back is a notification, not a request.
  const parsed = parseRequest(JSON.stringify(message));
  assert.equal(isRequest(parsed), false);
});
