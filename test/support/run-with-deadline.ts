// A command a test runs as a user would, collected whole: its exit code, stdout and stderr.
// It has a deadline; past it the command is killed and the test gets what it printed so far, plus
// whatever else explains it (a VM's serial tail).
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function collectWithDeadline(
  child: ChildProcessWithoutNullStreams,
  options: {
    /** The command as a user typed it, for messages ("docker ps"). */
    label: string;
    deadlineMs: number;
    input?: Buffer | string;
    /** More to say when the deadline passes. */
    context?: () => string;
  },
): Promise<CommandRun> {
  const { label, deadlineMs } = options;
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  child.stdin.on('error', () => {}); // a command that does not read its input
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const more = options.context ? `\n${options.context()}` : '';
      reject(
        new Error(
          `${label} did not finish within ${deadlineMs / 1000} s\n` +
            `stdout: ${Buffer.concat(stdout)}\nstderr: ${Buffer.concat(stderr)}${more}`,
        ),
      );
    }, deadlineMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      });
    });
  });
}
