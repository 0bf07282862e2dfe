// The VM lifecycle state machine against a fake runner: every transition, joins, cancellation,
// crashes with their exit reason and serial tail, graceful stop versus the deadline kill, and the
// order of events. No VM boots here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  StartCancelledError,
  VmLifecycle,
  type LifecycleOptions,
} from '../../../core/supervisor/lifecycle.ts';
import { VmStartError } from '../../../core/supervisor/vm-runner.ts';
import { FakeRunner } from './fake-runner.ts';

/** Lets every pending promise callback run (setImmediate is never mocked here). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(options: Partial<LifecycleOptions> = {}) {
  const runner = new FakeRunner();
  const clock = { t: 1_000 };
  const lifecycle = new VmLifecycle({ runner, now: () => clock.t, ...options });
  const events: string[] = [];
  lifecycle.on('state', ({ from, to }) => events.push(`${from}>${to}`));
  lifecycle.on('progress', ({ step, percent }) => events.push(`${step} ${percent}%`));
  return { runner, clock, lifecycle, events };
}

async function running() {
  const context = setup();
  await context.lifecycle.start();
  context.events.length = 0;
  return context;
}

test('start from stopped: starting, then running once the guest is ready', async () => {
  const { runner, clock, lifecycle, events } = setup();
  assert.deepEqual(lifecycle.status(), { state: 'stopped', since: 1_000 });
  runner.mode = 'manual';
  const started = lifecycle.start();
  await settle();
  assert.equal(lifecycle.status().state, 'starting');
  clock.t = 2_000;
  runner.pending!.ready();
  await started;
  clock.t = 2_500;
  assert.deepEqual(lifecycle.status(), {
    state: 'running',
    since: 2_000,
    uptimeMs: 500,
    backend: 'fake',
    backendReason: 'a test double',
    vmmPid: 4242,
  });
  assert.deepEqual(events, ['stopped>starting', 'starting>running']);
});

test('events come in order, with the runner progress forwarded between them', async () => {
  const { runner, lifecycle } = setup();
  runner.mode = 'manual';
  const seen: unknown[] = [];
  lifecycle.on('state', (change) => seen.push(change));
  lifecycle.on('progress', (progress) => seen.push(progress));
  const started = lifecycle.start();
  await settle();
  runner.pending!.progress('device servers', 10);
  runner.pending!.progress('booting the kernel', 60);
  runner.pending!.progress('waiting for the guest', 95);
  runner.pending!.ready();
  await started;
  assert.deepEqual(seen, [
    { from: 'stopped', to: 'starting', at: 1_000 },
    { step: 'device servers', percent: 10 },
    { step: 'booting the kernel', percent: 60 },
    { step: 'waiting for the guest', percent: 95 },
    { from: 'starting', to: 'running', at: 1_000 },
  ]);
});

test('two starts while starting join the same start: the runner runs once', async () => {
  const { runner, lifecycle, events } = setup();
  runner.mode = 'manual';
  const first = lifecycle.start();
  const second = lifecycle.start();
  assert.equal(first, second);
  await settle();
  assert.equal(lifecycle.start(), first);
  runner.pending!.ready();
  await Promise.all([first, second]);
  assert.equal(runner.calls, 1);
  assert.deepEqual(events, ['stopped>starting', 'starting>running']);
});

test('start while running resolves at once without touching the runner', async () => {
  const { runner, lifecycle, events } = await running();
  await lifecycle.start();
  assert.equal(runner.calls, 1);
  assert.deepEqual(events, []);
  assert.equal(lifecycle.status().state, 'running');
});

test('a graceful stop asks the guest to power off and records how long it took', async () => {
  const { runner, clock, lifecycle } = await running();
  const seen: unknown[] = [];
  lifecycle.on('state', (change) => seen.push(change));
  clock.t = 5_000;
  const stopped = lifecycle.stop();
  await settle();
  await stopped;
  assert.equal(runner.last.powerOffRequests, 1);
  assert.equal(runner.last.kills, 0);
  assert.deepEqual(seen, [
    { from: 'running', to: 'stopping', at: 5_000 },
    { from: 'stopping', to: 'stopped', at: 5_000 },
  ]);
  assert.deepEqual(lifecycle.status(), {
    state: 'stopped',
    since: 5_000,
    lastStop: { graceful: true, durationMs: 0 },
  });
});

test('a guest that does not power off within the 15 s default is killed, and the user is told', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { runner, lifecycle } = await running();
  runner.last.onPowerOff = 'ignore';
  const messages: (string | undefined)[] = [];
  lifecycle.on('state', (change) => messages.push(change.message));
  let done = false;
  const stopped = lifecycle.stop().then(() => (done = true));
  await settle();
  assert.equal(lifecycle.status().state, 'stopping');
  t.mock.timers.tick(14_999);
  await settle();
  assert.equal(done, false);
  assert.equal(runner.last.kills, 0);
  t.mock.timers.tick(1);
  await stopped;
  assert.equal(runner.last.kills, 1);
  assert.equal(runner.alive, 0);
  const { state, lastStop } = lifecycle.status();
  assert.equal(state, 'stopped');
  assert.equal(lastStop?.graceful, false);
  assert.match(lastStop?.message ?? '', /did not power off within 15 s, so it was killed/);
  assert.deepEqual(messages, [undefined, lastStop?.message]);
});

test('a shorter deadline is honoured, and the message names it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { runner, lifecycle } = await running();
  runner.last.onPowerOff = 'ignore';
  const stopped = lifecycle.stop({ deadlineMs: 2_500 });
  await settle();
  t.mock.timers.tick(2_500);
  await stopped;
  assert.equal(runner.last.kills, 1);
  assert.match(lifecycle.status().lastStop?.message ?? '', /within 2.5 s/);
});

test('a guest that cannot be asked to power off is killed at once', async () => {
  const { runner, lifecycle } = await running();
  runner.last.onPowerOff = 'reject';
  await lifecycle.stop();
  assert.equal(runner.last.kills, 1);
  const { state, lastStop } = lifecycle.status();
  assert.equal(state, 'stopped');
  assert.equal(lastStop?.graceful, false);
  assert.match(lastStop?.message ?? '', /could not be asked .*serial console closed.*killed/);
});

test('stop while stopped succeeds at once, with no events', async () => {
  const { runner, lifecycle, events } = setup();
  await lifecycle.stop();
  await lifecycle.stop({ deadlineMs: 0 });
  assert.equal(runner.calls, 0);
  assert.deepEqual(events, []);
  assert.equal(lifecycle.status().state, 'stopped');
});

test('stop while stopping joins the same stop: the guest is asked once', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.onPowerOff = 'ignore';
  const first = lifecycle.stop();
  const second = lifecycle.stop();
  assert.equal(first, second);
  await settle();
  assert.equal(lifecycle.stop(), first);
  runner.last.exit(0, null);
  await Promise.all([first, second]);
  assert.equal(runner.last.powerOffRequests, 1);
  assert.deepEqual(events, ['running>stopping', 'stopping>stopped']);
});

test('stop while starting aborts the start and ends stopped; the start is told', async () => {
  const { runner, lifecycle, events } = setup();
  runner.mode = 'manual';
  const started = lifecycle.start();
  await settle();
  const signal = runner.pending!.signal;
  const stopped = lifecycle.stop();
  assert.equal(signal.aborted, true);
  await assert.rejects(started, StartCancelledError);
  await stopped;
  assert.equal(runner.aborts, 1);
  assert.equal(runner.alive, 0);
  assert.equal(lifecycle.status().state, 'stopped');
  assert.deepEqual(events, ['stopped>starting', 'starting>stopping', 'stopping>stopped']);
  // Progress the runner reports after the abort is not forwarded.
  runner.pending!.progress('late', 99);
  assert.equal(events.length, 3);
  // And a later start works.
  runner.mode = 'auto';
  await lifecycle.start();
  assert.equal(lifecycle.status().state, 'running');
});

test('a start cancelled while still queued behind a stop never reaches the runner', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.onPowerOff = 'ignore';
  const firstStop = lifecycle.stop();
  const started = lifecycle.start();
  const secondStop = lifecycle.stop();
  await settle();
  runner.last.exit(0, null);
  await firstStop;
  await assert.rejects(started, StartCancelledError);
  await secondStop;
  assert.equal(runner.calls, 1);
  assert.equal(lifecycle.status().state, 'stopped');
  assert.deepEqual(events, ['running>stopping', 'stopping>stopped']);
});

test('a runner that hands over a VM despite the abort has it killed, not kept', async () => {
  const { runner, lifecycle } = setup();
  runner.mode = 'manual';
  runner.ignoreAbort = true;
  const started = lifecycle.start();
  await settle();
  const stopped = lifecycle.stop();
  const vm = runner.pending!.ready();
  await assert.rejects(started, StartCancelledError);
  await stopped;
  assert.equal(vm.kills, 1);
  assert.equal(runner.alive, 0);
  assert.equal(lifecycle.status().state, 'stopped');
});

test('start while stopping waits for the stop, then starts; never two VMs', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.onPowerOff = 'ignore';
  const first = runner.last;
  const stopped = lifecycle.stop();
  const started = lifecycle.start();
  await settle();
  assert.equal(lifecycle.status().state, 'stopping');
  assert.equal(runner.calls, 1);
  first.exit(0, null);
  await Promise.all([stopped, started]);
  assert.equal(runner.calls, 2);
  assert.equal(runner.maxAlive, 1);
  assert.equal(lifecycle.status().state, 'running');
  assert.deepEqual(events, [
    'running>stopping',
    'stopping>stopped',
    'stopped>starting',
    'starting>running',
  ]);
});

test('a crash while running is an error with the exit reason and the serial tail', async () => {
  const { runner, clock, lifecycle } = await running();
  const seen: unknown[] = [];
  lifecycle.on('state', (change) => seen.push(change));
  clock.t = 9_000;
  runner.last.crash('SIGKILL');
  await settle();
  const serialTail = [
    '[    0.000000] Linux version 6.12.0',
    'berth-init: /var mounted',
    'BERTH-READY',
    'kvm: vcpu0: unhandled exit',
  ].join('\n');
  const error = {
    message: 'The VM stopped unexpectedly (killed by SIGKILL).',
    exitReason: 'killed by SIGKILL',
    serialTail,
  };
  assert.deepEqual(seen, [{ from: 'running', to: 'error', at: 9_000, error }]);
  assert.deepEqual(lifecycle.status(), { state: 'error', since: 9_000, error });
});

test('an exit code is reported as such', async () => {
  const { runner, lifecycle } = await running();
  runner.last.crash(null, 1);
  await settle();
  assert.equal(lifecycle.status().error?.exitReason, 'exit code 1');
});

test('restart after a crash recovers: error, stopped, starting, running', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.crash();
  await settle();
  await lifecycle.restart();
  assert.equal(runner.calls, 2);
  assert.equal(runner.maxAlive, 1);
  const status = lifecycle.status();
  assert.equal(status.state, 'running');
  assert.equal(status.error, undefined);
  assert.deepEqual(events, [
    'running>error',
    'error>stopped',
    'stopped>starting',
    'starting>running',
  ]);
});

test('start after a crash recovers too', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.crash();
  await settle();
  await lifecycle.start();
  assert.equal(runner.calls, 2);
  assert.equal(lifecycle.status().state, 'running');
  assert.deepEqual(events, ['running>error', 'error>starting', 'starting>running']);
});

test('stop from error clears the error', async () => {
  const { runner, lifecycle, events } = await running();
  runner.last.crash();
  await settle();
  await lifecycle.stop();
  assert.equal(lifecycle.status().state, 'stopped');
  assert.equal(lifecycle.status().error, undefined);
  assert.deepEqual(events, ['running>error', 'error>stopped']);
});

test('restart from running stops the old VM before the new one starts', async () => {
  const { runner, lifecycle, events } = await running();
  const old = runner.last;
  await lifecycle.restart();
  assert.equal(old.powerOffRequests, 1);
  assert.equal(old.alive, false);
  assert.equal(runner.calls, 2);
  assert.equal(runner.maxAlive, 1);
  assert.equal(lifecycle.status().state, 'running');
  assert.deepEqual(events, [
    'running>stopping',
    'stopping>stopped',
    'stopped>starting',
    'starting>running',
  ]);
});

test('restart from stopped just starts; restart while starting starts afresh', async () => {
  const { runner, lifecycle, events } = setup();
  await lifecycle.restart();
  assert.equal(lifecycle.status().state, 'running');
  await lifecycle.stop();
  events.length = 0;
  runner.mode = 'manual';
  const started = lifecycle.start();
  await settle();
  const restarted = lifecycle.restart();
  await assert.rejects(started, StartCancelledError);
  await settle();
  runner.pending!.ready();
  await restarted;
  assert.equal(lifecycle.status().state, 'running');
  assert.equal(runner.maxAlive, 1);
  assert.deepEqual(events, [
    'stopped>starting',
    'starting>stopping',
    'stopping>stopped',
    'stopped>starting',
    'starting>running',
  ]);
});

test('a failed start is an error with the runner message, exit reason and serial tail', async () => {
  const { runner, lifecycle, events } = setup();
  runner.mode = 'manual';
  const started = lifecycle.start();
  await settle();
  const failure = new VmStartError('the VM stopped before the guest was ready', {
    serialTail: 'Kernel panic - not syncing: VFS: Unable to mount root fs',
    exit: { code: 1, signal: null, expected: false },
  });
  runner.pending!.fail(failure);
  await assert.rejects(started, (error) => error === failure);
  assert.deepEqual(lifecycle.status().error, {
    message: 'the VM stopped before the guest was ready',
    exitReason: 'exit code 1',
    serialTail: 'Kernel panic - not syncing: VFS: Unable to mount root fs',
  });
  assert.deepEqual(events, ['stopped>starting', 'starting>error']);
  // Any error with a serialTail (like the qemu backend's VmError) is read the same way.
  const next = lifecycle.start();
  await settle();
  runner.pending!.fail(
    Object.assign(new Error('BERTH-READY did not happen within 60 s'), {
      serialTail: 'stuck in initrd',
    }),
  );
  await assert.rejects(next, /did not happen/);
  assert.deepEqual(lifecycle.status().error, {
    message: 'BERTH-READY did not happen within 60 s',
    exitReason: null,
    serialTail: 'stuck in initrd',
  });
});

test('a VM that cannot be killed is kept and killed again before the next start', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { runner, lifecycle } = await running();
  const stubborn = runner.last;
  stubborn.onPowerOff = 'ignore';
  stubborn.killRejects = true;
  const stopped = lifecycle.stop({ deadlineMs: 1_000 });
  await settle();
  t.mock.timers.tick(1_000);
  await assert.rejects(stopped, /EPERM/);
  assert.equal(lifecycle.status().state, 'error');
  assert.match(lifecycle.status().error?.message ?? '', /could not be stopped: EPERM/);
  stubborn.killRejects = false;
  await lifecycle.start();
  assert.equal(stubborn.alive, false);
  assert.equal(runner.maxAlive, 1);
  assert.equal(lifecycle.status().state, 'running');
});

test('a throwing listener does not break a transition', async () => {
  const reported: unknown[] = [];
  const { lifecycle } = setup({ onListenerError: (error) => reported.push(error) });
  lifecycle.on('state', () => {
    throw new Error('listener bug');
  });
  await lifecycle.start();
  assert.equal(lifecycle.status().state, 'running');
  assert.equal(reported.length, 2);
});

test('unsubscribing stops events; a bad deadline rejects instead of throwing', async () => {
  const { lifecycle } = await running();
  const seen: string[] = [];
  const off = lifecycle.on('state', ({ to }) => seen.push(to));
  off();
  const bad = lifecycle.stop({ deadlineMs: -1 });
  await assert.rejects(bad, RangeError);
  await lifecycle.stop();
  assert.deepEqual(seen, []);
});
