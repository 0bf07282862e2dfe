// The addon in a worker thread: terminating a worker with an active watcher and live mappings
// must not crash the process (a worker unloads its addons before its loop's last turn).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { addonPath, loadNative } from '../../../core/native.ts';

/**
 * Worker code (CommonJS) that runs body with the addon as `native`. An eval'd worker cannot load
 * TypeScript, so it loads the addon itself, from the path core/native.ts checked.
 */
function inWorker(body: string): string {
  loadNative();
  return `const native = require(${JSON.stringify(addonPath)}); ${body}`;
}

const workerCode = inWorker(`
  const { parentPort } = require('node:worker_threads');
  const events = native.eventfd(0);
  new native.FdWatcher(events, () => native.eventfdRead(events));
  native.eventfdWrite(events);
  const stopped = new native.FdWatcher(native.eventfd(0), () => {});
  stopped.stop();
  const memfd = native.memfdCreate('berth-test-worker', 65536);
  const kept = native.mmap(memfd, 0, 65536, true);
  new Uint8Array(kept.buffer)[0] = 1;
  native.mmap(memfd, 0, 65536, true).unmap();
  parentPort.postMessage('ready');
`);

test('terminating a worker that uses the addon leaves the process running', async () => {
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(workerCode, { eval: true });
    const ready = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(ready, 'ready');
    assert.equal(await worker.terminate(), 1);
  }
});

test('a worker whose only watcher is unref()d exits by itself', async () => {
  const worker = new Worker(
    inWorker('new native.FdWatcher(native.eventfd(0), () => {}).unref();'),
    { eval: true },
  );
  const code = await new Promise((resolve) => worker.once('exit', resolve));
  assert.equal(code, 0);
});
