// Browser mode's access token (renderer/src/api/token.ts): from ?token= or #token=, never from a
// page route, and the WebSocket URL built from the page's own host.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiSocketUrl, tokenFromUrl } from '../../../renderer/src/api/token.ts';

test('the token comes from the query first, then the fragment', () => {
  assert.equal(tokenFromUrl('?token=abc', ''), 'abc');
  assert.equal(tokenFromUrl('', '#token=def'), 'def');
  assert.equal(tokenFromUrl('?token=abc', '#token=def'), 'abc');
  assert.equal(tokenFromUrl('?x=1&token=a%2Bb', ''), 'a+b');
});

test('no token, an empty one, or a page route give null', () => {
  assert.equal(tokenFromUrl('', ''), null);
  assert.equal(tokenFromUrl('?token=', '#token='), null);
  assert.equal(tokenFromUrl('', '#/settings'), null);
  assert.equal(tokenFromUrl('', '#/settings?token=x'), null);
});

test('the socket URL is the page host’s /api, with the token escaped', () => {
  assert.equal(
    apiSocketUrl({ protocol: 'http:', host: '127.0.0.1:7777' }, 'a+b/c'),
    'ws://127.0.0.1:7777/api?token=a%2Bb%2Fc',
  );
  assert.equal(apiSocketUrl({ protocol: 'https:', host: 'h' }, null), 'wss://h/api');
});
