// The pure rules behind Berth's windows: which URLs are the renderer's (url-policy.ts), which
// links may go to the browser, the CSP given to http(s) responses (content-security.ts), and
// where the app finds its files (app-paths.ts).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../../../core/paths.ts';
import { appPaths } from '../../../electron/app-paths.ts';
import { FOREIGN_CSP, withContentSecurityPolicy } from '../../../electron/content-security.ts';
import { permissionAllowed } from '../../../electron/permissions.ts';
import { TRAY_ICONS } from '../../../electron/tray-menu.ts';
import { directoryUrl, isRendererUrl, isSafeExternalUrl } from '../../../electron/url-policy.ts';

test('directoryUrl: a file:// URL ending in a slash, special characters encoded', () => {
  assert.equal(directoryUrl('/opt/Berth/build/renderer'), 'file:///opt/Berth/build/renderer/');
  assert.equal(directoryUrl('/opt/Berth/build/renderer/'), 'file:///opt/Berth/build/renderer/');
  assert.equal(directoryUrl('/home/a b/#x'), 'file:///home/a%20b/%23x/');
});

test('isRendererUrl: pages at or below the root, and nothing else', () => {
  const root = directoryUrl('/home/a b/berth/build/renderer');
  assert.equal(isRendererUrl('file:///home/a%20b/berth/build/renderer/index.html', root), true);
  assert.equal(isRendererUrl('file:///home/a%20b/berth/build/renderer/', root), true);
  assert.equal(isRendererUrl('file:///home/a%20b/berth/build/renderer', root), false);
  assert.equal(isRendererUrl('file:///home/a%20b/berth/build/renderer2/x.html', root), false);
  assert.equal(isRendererUrl('file:///home/a%20b/berth/build/renderer/../x.html', root), false);
  assert.equal(isRendererUrl('file://host/home/a%20b/berth/build/renderer/x.html', root), false);
  assert.equal(isRendererUrl('https://home/a%20b/berth/build/renderer/x.html', root), false);
  // A root that is not a local file URL accepts nothing.
  assert.equal(isRendererUrl('https://example.com/x', 'https://example.com/'), false);
});

test('isSafeExternalUrl: https links, and http to 127.0.0.1 (published ports), without credentials', () => {
  assert.equal(isSafeExternalUrl('https://docs.docker.com/engine/'), true);
  assert.equal(isSafeExternalUrl('http://127.0.0.1:8080/'), true);
  assert.equal(isSafeExternalUrl('http://127.0.0.1/'), true);
  for (const url of [
    'http://example.com/',
    'http://localhost.example.com:8080/',
    'http://127.0.0.1.example.com:8080/',
    'http://user:pass@127.0.0.1:8080/',
    'http://0.0.0.0:8080/',
    'http://[::1]:8080/',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'smb://server/share',
    'ms-msdt:/id',
    'https://user:pass@example.com/',
    'https://',
    'not a url',
  ]) {
    assert.equal(isSafeExternalUrl(url), false, url);
  }
});

test('http(s) responses lose their own CSP and get the strictest one', () => {
  const headers = withContentSecurityPolicy('https://example.com/', {
    'content-security-policy': ["script-src 'unsafe-inline'"],
    'Content-Security-Policy-Report-Only': ['default-src *'],
    'Content-Type': ['text/html'],
  });
  assert.deepEqual(headers, {
    'Content-Type': ['text/html'],
    'Content-Security-Policy': [FOREIGN_CSP],
  });
  assert.deepEqual(withContentSecurityPolicy('http://127.0.0.1:1/', undefined), {
    'Content-Security-Policy': [FOREIGN_CSP],
  });
});

test('other schemes pass through unchanged', () => {
  const original = { 'Content-Type': ['text/html'] };
  assert.deepEqual(withContentSecurityPolicy('file:///x/index.html', original), original);
  assert.deepEqual(withContentSecurityPolicy('not a url', original), original);
});

test('the policy for foreign pages lets nothing load', () => {
  assert.equal(FOREIGN_CSP, "default-src 'none'; frame-ancestors 'none'");
});

test("the renderer's index.html carries a CSP: own scripts only, no eval, no plugins", () => {
  // The window loads it from file://, where the <meta> tag is the only way to set a policy.
  const html = readFileSync(join(projectRoot, 'renderer/index.html'), 'utf8');
  const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]*)"/i.exec(html);
  assert.ok(meta, 'renderer/index.html has a CSP meta tag');
  const policy = meta[1]!;
  assert.match(policy, /script-src 'self'(;|$)/);
  assert.match(policy, /object-src 'none'/);
  assert.doesNotMatch(policy, /unsafe-eval|unsafe-inline|\*/);
});

test('app paths: the bundles under build/, the images under assets/ (which exist)', () => {
  const paths = appPaths('/opt/berth');
  assert.equal(paths.preload, '/opt/berth/build/electron/preload/index.cjs');
  assert.equal(paths.rendererIndex, '/opt/berth/build/renderer/index.html');
  assert.equal(paths.rendererDir, '/opt/berth/build/renderer');
  assert.equal(paths.trayIcon('running'), '/opt/berth/assets/tray/running.png');
  const here = appPaths();
  assert.equal(here.root, projectRoot);
  assert.ok(existsSync(here.appIcon), here.appIcon);
  for (const icon of TRAY_ICONS) {
    assert.ok(existsSync(here.trayIcon(icon)), here.trayIcon(icon));
    assert.ok(existsSync(here.trayIcon(icon).replace(/\.png$/, '@2x.png')), `${icon}@2x`);
  }
});

test('permissions: only a clipboard write, only from the renderer', () => {
  const root = directoryUrl('/opt/berth/build/renderer');
  const page = `${root}index.html`;
  assert.equal(permissionAllowed('clipboard-sanitized-write', page, root), true);
  for (const permission of ['clipboard-read', 'media', 'notifications', 'geolocation', 'hid']) {
    assert.equal(permissionAllowed(permission, page, root), false, permission);
  }
  assert.equal(permissionAllowed('clipboard-sanitized-write', 'https://example.com/', root), false);
  assert.equal(permissionAllowed('clipboard-sanitized-write', '', root), false);
});
