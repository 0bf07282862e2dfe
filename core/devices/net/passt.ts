// passt, the user-mode network stack behind our virtio-net (as VPNKit was behind Docker
// Desktop's): it terminates the guest's TCP, UDP and ICMP and turns them into ordinary host
// sockets, answers DHCP, NDP and DHCPv6, and maps the gateway address to the host's loopback.
//
// No socket file: passt gets one end of a socketpair as fd 3 (`--fd 3`, which implies
// `--one-off`: passt exits when the connection closes, so it dies with this process). The pair
// comes from Node's 'pipe' stdio, which leaves passt's end blocking: passt finishes a frame it
// sent in part with a blocking send(), and a non-blocking end would tear the stream. setpriv
// also sets PR_SET_PDEATHSIG, but passt drops to nobody, which clears it; the closing socket is
// what ends it. Running as root, passt switches to nobody itself (`--runas`).
//
// PasstLink keeps one passt running for the device: it attaches a FramePort, reports every exit
// with passt's last words, and starts a new passt after a back-off (the guest keeps its address:
// passt derives it from the host's, and the guest renews by DHCP as before).
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { FramePort } from './frame-port.ts';
import type { VirtioNetDevice } from './net-device.ts';

const SETPRIV = '/usr/bin/setpriv';
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** A passt that ran this long before exiting restarts after the shortest delay again. */
const HEALTHY_RUN_MS = 30_000;

/** The passt binary: BERTH_PASST, else the first `passt` on PATH; null if there is none. */
export function findPasst(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = env.BERTH_PASST
    ? [env.BERTH_PASST]
    : [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/sbin'].map((dir) =>
        join(dir, 'passt'),
      );
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

export interface PasstLinkOptions {
  device: VirtioNetDevice;
  /** The passt binary (default: findPasst(env)). */
  binary?: string;
  /** Where findPasst looks (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Arguments after ours (for tests: `--no-map-gw`, `-4`, ...). */
  extraArgs?: string[];
  log: (line: string) => void;
}

export class PasstLink {
  private readonly binary: string;
  private child: ChildProcess | null = null;
  private port: FramePort | null = null;
  private closing = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private delayMs = RESTART_MIN_MS;
  private startedAt = 0;
  private stderrTail: string[] = [];
  /** How many times passt has been started. */
  starts = 0;
  /** The last exit, as a sentence, or null. */
  lastExit: string | null = null;

  constructor(private readonly options: PasstLinkOptions) {
    const binary = options.binary ?? findPasst(options.env);
    if (binary === null) {
      throw new Error(
        'passt is not installed (it is the network stack of the guest): install the Debian package `passt`, or set BERTH_PASST',
      );
    }
    this.binary = binary;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  start(): void {
    if (this.closing || this.child) return;
    const args = [
      '--foreground',
      '--stderr',
      '--fd',
      '3',
      '--mtu',
      String(this.options.device.mtu),
      ...(this.options.extraArgs ?? []),
    ];
    const [command, argv] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', this.binary, ...args]]
      : [this.binary, args];
    this.starts++;
    this.startedAt = Date.now();
    this.stderrTail = [];
    const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    this.child = child;
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.onStderr(line);
    });
    child.on('error', (error) => this.exited(child, `could not be started: ${error.message}`));
    child.on('exit', (code, signal) =>
      this.exited(child, signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
    const stream = child.stdio[3] as Duplex | null;
    if (!stream) return; // spawn failed: 'error' reports it
    const port = new FramePort(stream);
    port.onClose = (reason) => {
      this.options.device.detach(port);
      if (this.port !== port || this.closing) return;
      // An orderly end is passt exiting, which 'exit' reports; anything else is said here.
      if (!/closed/.test(reason)) this.options.log(`passt: connection failed: ${reason}`);
      // passt exits when the connection closes; make sure it does.
      child.kill('SIGTERM');
    };
    this.port = port;
    this.options.device.attach(port);
  }

  /** Stops passt (closing its socket ends it; SIGKILL if it lingers) and restarts no more. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    this.port?.close();
    if (!child) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.child !== child) {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private onStderr(line: string): void {
    // Without a syslog (a container, a minimal host) passt says so before every line.
    if (line === '' || /^Failed to send \d+ bytes to syslog$/.test(line)) return;
    this.stderrTail = [...this.stderrTail.slice(-19), line];
    this.options.log(`passt: ${line}`);
  }

  private exited(child: ChildProcess, how: string): void {
    if (this.child !== child) return;
    this.child = null;
    const port = this.port;
    this.port = null;
    port?.close('passt exited');
    if (this.closing) return;
    const ranMs = Date.now() - this.startedAt;
    if (ranMs >= HEALTHY_RUN_MS) this.delayMs = RESTART_MIN_MS;
    const tail = this.stderrTail.length
      ? `; its last output:\n  ${this.stderrTail.join('\n  ')}`
      : '';
    this.lastExit = `passt ${how} after ${(ranMs / 1000).toFixed(1)} s`;
    this.options.log(
      `${this.lastExit}: the guest has no network until it restarts in ${this.delayMs / 1000} s${tail}`,
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start();
    }, this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, RESTART_MAX_MS);
  }
}
