// Running the real `berth` command (bin/berth) against a throwaway data directory, as a user
// would from a shell. Every run has a deadline; a failure carries the serial log's tail.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPaths, projectRoot } from '../../core/paths.ts';
import { readOwner } from '../../core/supervisor/data-dir-lock.ts';
import { readTail } from '../../core/supervisor/log-tail.ts';
import { collectWithDeadline, type CommandRun } from './run-with-deadline.ts';

export const BERTH_BIN = join(projectRoot, 'bin/berth');

export type BerthRun = CommandRun;

export class BerthHome {
  readonly home = mkdtempSync(join(tmpdir(), 'berth-e2e-'));
  readonly paths = dataPaths(this.home);
  /**
   * DOCKER_CONFIG in the throwaway directory: the host writes the `berth` docker context at every
   * start, and a test must never point the user's own context at a directory it deletes.
   */
  readonly env: NodeJS.ProcessEnv = {
    ...process.env,
    BERTH_HOME: this.home,
    DOCKER_CONFIG: join(this.home, 'docker-config'),
  };

  /** Runs `berth ARGS`; rejects (with the serial tail) if it is not done within the deadline. */
  run(args: string[], options: { input?: string; deadlineMs?: number } = {}): Promise<BerthRun> {
    const { input, deadlineMs = 120_000 } = options;
    return collectWithDeadline(this.spawn(args), {
      label: `berth ${args.join(' ')}`,
      deadlineMs,
      input,
      context: () => this.serialTail(),
    });
  }

  /** Runs `berth ARGS` and insists it succeeds; returns its stdout. */
  async ok(args: string[], options: { input?: string; deadlineMs?: number } = {}): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0) {
      throw new Error(
        `berth ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}\n${this.serialTail()}`,
      );
    }
    return result.stdout;
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.ok([...args, '--json'])) as T;
  }

  spawn(args: string[]): ChildProcessWithoutNullStreams {
    return spawn(BERTH_BIN, args, { env: this.env, stdio: 'pipe' });
  }

  serialTail(lines = 40): string {
    return `serial log, last ${lines} lines:\n${readTail(this.paths.serialLog, lines)}`;
  }

  /** Stops the VM and the background host, then deletes the data directory. */
  async dispose(): Promise<void> {
    await this.run(['stop', '--deadline', '5'], { deadlineMs: 30_000 }).catch(() => {});
    const lock = join(this.home, 'berth.lock');
    for (let i = 0; i < 100 && readOwner(lock) !== null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const owner = readOwner(lock);
    if (owner !== null) {
      try {
        process.kill(owner, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Resolves with everything `child` printed once `pattern` appears in it; rejects at the deadline. */
export function waitForOutput(
  child: ChildProcessWithoutNullStreams,
  pattern: RegExp,
  deadlineMs = 30_000,
): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.stdout.off('data', onData);
      reject(new Error(`no ${pattern} within ${deadlineMs / 1000} s; got ${JSON.stringify(seen)}`));
    }, deadlineMs);
    const onData = (data: Buffer) => {
      seen += data.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(seen);
      }
    };
    child.stdout.on('data', onData);
  });
}
