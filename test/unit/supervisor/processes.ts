// Real processes for the lock tests: one that stays alive (so its pid owns a lock), the pid of one
// that has exited (a stale lock), and a separate Node process running a snippet of our code.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** A `sleep 30` child; call stop() when done (it is killed by its own pid, nothing else). */
export async function liveProcess(): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('sleep has no pid');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The pid of a process that has exited and been reaped. */
export function exitedPid(): number {
  const result = spawnSync('true');
  if (result.pid === undefined || result.status !== 0) throw new Error('cannot run true');
  return result.pid;
}

/**
 * Runs `body` (an async function body that may `await`, with `load(path)` importing a module of
 * this repository) in a new Node process with tsx; resolves with what it printed and its exit code.
 */
export function runNode(body: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const root = pathToFileURL(repoRoot).href;
  const code =
    `const load = (path) => import(new URL(path, ${JSON.stringify(root)}).href);\n` +
    `(async () => {\n${body}\n})().catch((error) => { console.error(error); process.exit(70); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve({ stdout, stderr, code: exitCode ?? -1 }));
  });
}
