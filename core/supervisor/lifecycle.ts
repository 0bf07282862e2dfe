// The VM lifecycle state machine: stopped, starting, running, stopping, error. It owns at most
// one VM (a RunningVm from an injected VmRunner, which hosts the VMM in a child process) and turns
// what the user asks (start, stop, restart) and what the VM does (crash) into state changes.
//
// Every start and stop runs on one queue, one at a time, so two operations never interleave
// their awaits and two VMs never run at once. The calls themselves only decide whether to join,
// answer at once, or queue; they never throw for a state problem.
import type { StateEvent, StopRecord, VmErrorInfo, VmState } from '../api/types.ts';
import {
  describeExit,
  VmStartError,
  type RunningVm,
  type VmExitInfo,
  type VmRunner,
} from './vm-runner.ts';

export type { StopRecord, VmErrorInfo, VmState };

export const DEFAULT_STOP_DEADLINE_MS = 15_000;

/** A state change, as the API's clients receive it. */
export type StateChange = StateEvent;

export interface ProgressEvent {
  step: string;
  percent: number;
}

export interface LifecycleEvents {
  state: StateChange;
  progress: ProgressEvent;
}

export interface LifecycleStatus {
  state: VmState;
  /** When the current state began (ms since the epoch). */
  since: number;
  uptimeMs?: number;
  backend?: string;
  backendReason?: string;
  vmmPid?: number;
  error?: VmErrorInfo;
  lastStop?: StopRecord;
}

export interface StopOptions {
  /** How long the guest gets to sync, unmount /var and power off before the VMM is killed. */
  deadlineMs?: number;
}

export interface LifecycleOptions {
  runner: VmRunner;
  /** The clock for `since`, `at` and durations; tests pass their own. */
  now?: () => number;
  /** A throwing listener must not leave a transition half-done; its error goes here instead. */
  onListenerError?: (error: unknown) => void;
}

/** What a start() caller gets when a stop cancelled its start. */
export class StartCancelledError extends Error {
  constructor() {
    super('the start was cancelled by a stop');
    this.name = 'AbortError';
  }
}

type Listeners = { [K in keyof LifecycleEvents]: Set<(payload: LifecycleEvents[K]) => void> };

interface StartJob {
  done: Promise<void>;
  abort: AbortController;
}

interface StopJob {
  done: Promise<void>;
}

export class VmLifecycle {
  private state: VmState = 'stopped';
  private since: number;
  private runningSince = 0;
  /** The VM we own; kept after a failed kill too, so nothing starts beside it. */
  private vm: RunningVm | null = null;
  private error: VmErrorInfo | undefined;
  private lastStop: StopRecord | undefined;
  /** The start a start() call joins (queued or in progress); cleared when a stop cancels it. */
  private startJob: StartJob | null = null;
  /** The stop a stop() call joins. */
  private stopJob: StopJob | null = null;
  /** Tail of the operation queue; it never rejects, so one failure does not block the rest. */
  private queue: Promise<void> = Promise.resolve();
  private readonly listeners: Listeners = { state: new Set(), progress: new Set() };
  private readonly runner: VmRunner;
  private readonly now: () => number;
  private readonly onListenerError: (error: unknown) => void;

  constructor(options: LifecycleOptions) {
    this.runner = options.runner;
    this.now = options.now ?? Date.now;
    this.onListenerError =
      options.onListenerError ??
      ((error) => console.error('berth: a VM lifecycle listener failed:', error));
    this.since = this.now();
  }

  /** Subscribes to 'state' or 'progress'; returns the unsubscribe function. */
  on<K extends keyof LifecycleEvents>(
    event: K,
    listener: (payload: LifecycleEvents[K]) => void,
  ): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  /** The VM while one is owned (running, stopping), e.g. to follow its serial console. */
  get currentVm(): RunningVm | null {
    return this.vm;
  }

  status(): LifecycleStatus {
    const status: LifecycleStatus = { state: this.state, since: this.since };
    if (this.state === 'running') status.uptimeMs = this.now() - this.runningSince;
    if (this.vm) {
      status.backend = this.vm.backend;
      status.backendReason = this.vm.backendReason;
      if (this.vm.pid !== undefined) status.vmmPid = this.vm.pid;
    }
    if (this.error) status.error = { ...this.error };
    if (this.lastStop) status.lastStop = { ...this.lastStop };
    return status;
  }

  /**
   * Resolves when the VM is running (the guest is ready). Joins a start already under way;
   * resolves at once if running; waits for a stop under way, then starts. Rejects with the
   * runner's error (state error) or with StartCancelledError if a stop cancels it.
   */
  start(): Promise<void> {
    if (this.startJob) return this.startJob.done;
    if (this.state === 'running' && !this.stopJob) return Promise.resolve();
    const job: StartJob = { done: Promise.resolve(), abort: new AbortController() };
    job.done = this.enqueue(async () => {
      try {
        await this.runStart(job.abort.signal);
      } finally {
        if (this.startJob === job) this.startJob = null;
      }
    });
    this.startJob = job;
    return job.done;
  }

  /**
   * Resolves when no VM runs. Succeeds at once when stopped; cancels a start (queued or under
   * way); joins a stop under way (with that stop's deadline). From error it clears the error.
   */
  stop({ deadlineMs = DEFAULT_STOP_DEADLINE_MS }: StopOptions = {}): Promise<void> {
    if (!(deadlineMs >= 0 && deadlineMs < Infinity)) {
      return Promise.reject(
        new RangeError(`stop deadline must be a finite ms >= 0: ${deadlineMs}`),
      );
    }
    if (this.startJob) {
      // A stop supersedes a pending start: the start unwinds (the runner kills what it began),
      // and this stop runs after it, so when it resolves nothing runs.
      this.startJob.abort.abort();
      this.startJob = null;
    } else if (this.stopJob) {
      return this.stopJob.done;
    } else if (this.state === 'stopped') {
      return Promise.resolve();
    }
    const job: StopJob = { done: Promise.resolve() };
    job.done = this.enqueue(async () => {
      try {
        await this.runStop(deadlineMs);
      } finally {
        if (this.stopJob === job) this.stopJob = null;
      }
    });
    this.stopJob = job;
    return job.done;
  }

  /** Stop, then start: from running, from error (a crash), or from stopped (just a start). */
  restart(options: StopOptions = {}): Promise<void> {
    // Both are queued now, in this order, so nothing can slip in between them.
    const stopped = this.stop(options);
    const started = this.start();
    return Promise.all([stopped, started]).then(() => undefined);
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const done = this.queue.then(op);
    this.queue = done.catch(() => {});
    return done;
  }

  private async runStart(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new StartCancelledError(); // cancelled while queued: nothing to undo
    if (this.state === 'running') return;
    // Only left after a kill that failed: make sure that VM is gone before booting another.
    if (this.vm) await this.reap(this.vm);
    this.transition('starting');
    // Show the cancellation at once; the runner may take a moment to kill what it started.
    const onAbort = () => this.transition('stopping');
    signal.addEventListener('abort', onAbort, { once: true });
    let vm: RunningVm;
    try {
      vm = await this.runner.start(signal, (step, percent) => {
        if (!signal.aborted) this.emit('progress', { step, percent });
      });
    } catch (error) {
      if (signal.aborted) {
        this.transition('stopped');
        throw new StartCancelledError();
      }
      this.transition('error', { error: startErrorInfo(error) });
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (signal.aborted) {
      // Cancelled just as the guest became ready: the runner handed over a VM nobody wants.
      await this.reap(vm);
      this.transition('stopped');
      throw new StartCancelledError();
    }
    this.vm = vm;
    this.runningSince = this.now();
    vm.exited.then(
      (exit) => this.onExit(vm, exit),
      () => this.onExit(vm, { code: null, signal: null, expected: false }),
    );
    this.transition('running');
  }

  private async runStop(deadlineMs: number): Promise<void> {
    const vm = this.vm;
    if (this.state === 'error') {
      if (vm) await this.reap(vm);
      this.transition('stopped');
      return;
    }
    if (!vm || this.state !== 'running') return; // e.g. the start this stop cancelled has unwound
    this.transition('stopping');
    const began = this.now();
    let outcome: { graceful: boolean; message?: string };
    try {
      outcome = await this.shutDown(vm, deadlineMs);
    } catch (error) {
      // Only kill() can fail here. The VMM may still run, so we keep it (a start kills it first)
      // and say so rather than claim "stopped".
      const message = `The VM could not be stopped: ${messageOf(error)}`;
      this.transition('error', {
        error: { message, exitReason: null, serialTail: vm.serialTail() },
      });
      throw error;
    }
    this.vm = null;
    this.lastStop = { graceful: outcome.graceful, durationMs: this.now() - began };
    if (outcome.message) this.lastStop.message = outcome.message;
    this.transition('stopped', { message: outcome.message });
  }

  /**
   * Asks the guest to power off (it syncs and unmounts /var first) and waits for the VMM to exit
   * until the deadline; then kills it. A guest that cannot even be asked is killed at once.
   */
  private async shutDown(
    vm: RunningVm,
    deadlineMs: number,
  ): Promise<{ graceful: boolean; message?: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const asked = (async () => vm.requestPowerOff())().then(
      () => new Promise<never>(() => {}), // delivered: now only the exit or the deadline counts
      (error: unknown) => ({ refused: error }),
    );
    const first = await Promise.race([vm.exited.then(() => 'exited' as const), deadline, asked]);
    clearTimeout(timer);
    if (first === 'exited') return { graceful: true };
    const why =
      first === 'deadline'
        ? `did not power off within ${deadlineMs / 1000} s`
        : `could not be asked to power off (${messageOf(first.refused)})`;
    await this.reap(vm);
    return {
      graceful: false,
      message: `The VM ${why}, so it was killed; data the guest had not synced may be lost.`,
    };
  }

  /** Kills a VM and waits until it is gone. */
  private async reap(vm: RunningVm): Promise<void> {
    await vm.kill();
    await vm.exited;
    if (this.vm === vm) this.vm = null;
  }

  private onExit(vm: RunningVm, exit: VmExitInfo): void {
    if (this.vm !== vm) return; // a VM we already let go of
    if (this.state === 'running') {
      // Nobody asked it to stop: a crash (or the guest powered itself off). Either way the user
      // needs to see why, so it is an error, not "stopped".
      this.vm = null;
      const exitReason = describeExit(exit);
      this.transition('error', {
        error: {
          message: `The VM stopped unexpectedly (${exitReason}).`,
          exitReason,
          serialTail: vm.serialTail(),
        },
      });
    } else if (this.state === 'error') {
      this.vm = null; // the VM we failed to kill has gone after all
    }
    // While stopping, runStop is waiting for exactly this exit.
  }

  private transition(to: VmState, extra: { error?: VmErrorInfo; message?: string } = {}): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.since = this.now();
    this.error = extra.error; // an error belongs to the error state; leaving it clears it
    const change: StateChange = { from, to, at: this.since };
    if (extra.error) change.error = { ...extra.error };
    if (extra.message) change.message = extra.message;
    this.emit('state', change);
  }

  private emit<K extends keyof LifecycleEvents>(event: K, payload: LifecycleEvents[K]): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        listener(payload);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

function startErrorInfo(error: unknown): VmErrorInfo {
  const tail = (error as { serialTail?: unknown } | null | undefined)?.serialTail;
  return {
    message: messageOf(error),
    exitReason: error instanceof VmStartError && error.exit ? describeExit(error.exit) : null,
    serialTail: typeof tail === 'string' ? tail : '',
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
