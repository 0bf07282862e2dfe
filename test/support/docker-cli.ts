// The host's own docker client (the `docker` command, with no engine on this machine) against the
// engine in the VM through the `berth` context, as a user runs it. Every run has a deadline.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPaths } from '../../core/paths.ts';
import { collectWithDeadline, type CommandRun } from './run-with-deadline.ts';

export type DockerRun = CommandRun;

export class DockerCli {
  /** A private DOCKER_CONFIG, so the user's own contexts are never touched by a test. */
  readonly configDir = mkdtempSync(join(tmpdir(), 'berth-docker-config-'));
  readonly env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_CONFIG: this.configDir,
    // The client here has no buildx plugin; the engine's own (classic) builder does the build.
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };

  constructor(private readonly context = 'berth') {}

  run(
    args: string[],
    options: { input?: Buffer | string; deadlineMs?: number; cwd?: string; plain?: boolean } = {},
  ): Promise<DockerRun> {
    const { deadlineMs = 120_000 } = options;
    // plain: as the user's shell runs it, with whatever context is current.
    const contextArgs = options.plain ? [] : ['--context', this.context];
    const child = spawn('docker', [...contextArgs, ...args], {
      env: this.env,
      cwd: options.cwd,
      stdio: 'pipe',
    });
    return collectWithDeadline(child, {
      label: `docker ${args.join(' ')}`,
      deadlineMs,
      input: options.input,
    });
  }

  async ok(args: string[], options: Parameters<DockerCli['run']>[1] = {}): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0) {
      throw new Error(
        `docker ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      );
    }
    return result.stdout;
  }

  /** Polls `docker version` until the engine answers; returns how long that took. */
  async waitForEngine(deadlineMs = 60_000): Promise<number> {
    const started = Date.now();
    let last: DockerRun | null = null;
    while (Date.now() - started < deadlineMs) {
      last = await this.run(['version', '--format', '{{.Server.Version}}'], { deadlineMs: 20_000 });
      if (last.code === 0 && last.stdout.trim()) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(
      `the engine did not answer within ${deadlineMs / 1000} s; last docker version said:\n` +
        `${last?.stdout}${last?.stderr}`,
    );
  }
}

/** busybox-static from the image builder's package cache (the image build fetched it). */
export function busyboxBinary(): string {
  const unpacked = join(buildPaths.cache, 'unpacked');
  const dir = readdirSync(unpacked).find((name) => name.startsWith('busybox-static_'));
  if (!dir) throw new Error(`no busybox-static in ${unpacked}: run npm run image`);
  return join(unpacked, dir, 'bin/busybox');
}

/** A minimal root filesystem (busybox and its applets) in a new directory, for `docker import`. */
export function busyboxRootfs(applets = ['sh', 'echo', 'cat', 'ls', 'httpd', 'sleep']): string {
  const root = mkdtempSync(join(tmpdir(), 'berth-rootfs-'));
  mkdirSync(join(root, 'bin'));
  copyFileSync(busyboxBinary(), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const applet of applets) symlinkSync('busybox', join(root, 'bin', applet));
  mkdirSync(join(root, 'www'));
  return root;
}
