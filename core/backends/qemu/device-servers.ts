// The qemu backend's device processes: one vhost-user server per device model (ours, in
// TypeScript), started before QEMU and stopped after it. Each dies with its parent (setpriv
// pdeathsig) and reports whether it became ready within a deadline.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../paths.ts';
import { withParentDeathSignal } from './qemu-vm.ts';

const STATS_PREFIX = 'vhost-user: stats ';
const SERVER_MAIN = join(projectRoot, 'core/devices/vhost-user/main.ts');

/**
 * The Node that runs a device server. Inside Electron, process.execPath is the app itself (and
 * the RunAsNode fuse is off), so the system's node runs them there; BERTH_NODE overrides.
 */
export function nodeForChildren(): string {
  if (process.env.BERTH_NODE) return process.env.BERTH_NODE;
  return process.versions.electron ? 'node' : process.execPath;
}

export type DeviceServerSpec =
  | { device: 'blk'; socket: string; disk: string; readOnly?: boolean; serial?: string }
  | { device: 'rng'; socket: string }
  | { device: 'vsock'; socket: string; guestCid: number; uds: string }
  | {
      device: 'net';
      socket: string;
      /** The guest's MAC (the same as QEMU's virtio-net-pci mac=). */
      mac: string;
      mtu?: number;
      /** Leave checksums to the guest (CSUM / GUEST_CSUM not offered). */
      noChecksumOffload?: boolean;
      /** The passt binary (default: BERTH_PASST, else passt on PATH). */
      passt?: string;
    };

function serverArgs(spec: DeviceServerSpec): string[] {
  const args = ['--device', spec.device, '--socket', spec.socket];
  if (spec.device === 'blk') {
    args.push('--disk', spec.disk);
    if (spec.readOnly) args.push('--read-only');
    if (spec.serial) args.push('--serial', spec.serial);
  } else if (spec.device === 'vsock') {
    args.push('--guest-cid', String(spec.guestCid), '--uds', spec.uds);
  } else if (spec.device === 'net') {
    args.push('--mac', spec.mac);
    if (spec.mtu !== undefined) args.push('--mtu', String(spec.mtu));
    if (spec.noChecksumOffload) args.push('--no-checksum-offload');
    if (spec.passt) args.push('--passt', spec.passt);
  }
  return args;
}

export class DeviceServer {
  private readonly child: ChildProcess;
  private log = '';
  private readonly statsReports: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly spec: DeviceServerSpec,
    onLog: (line: string) => void,
  ) {
    const [cmd, args] = withParentDeathSignal(nodeForChildren(), [
      '--import',
      'tsx',
      SERVER_MAIN,
      ...serverArgs(spec),
    ]);
    // Own process group: a Ctrl-C at the terminal must not stop a device under a running guest;
    // only its owner does (stop()), and pdeathsig covers the owner dying.
    this.child = spawn(cmd, args, {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.setEncoding('utf8');
      let partial = '';
      stream.on('data', (text: string) => {
        this.log = (this.log + text).slice(-16384);
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const line of lines.filter(Boolean)) {
          if (line.startsWith(STATS_PREFIX))
            this.statsReports.push(line.slice(STATS_PREFIX.length));
          else onLog(`[${spec.device}] ${line}`);
        }
      });
    }
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Starts a device server and waits until it listens (or fails, with its output). */
  static async start(
    spec: DeviceServerSpec,
    onLog: (line: string) => void = () => {},
    timeoutMs = 30_000,
  ) {
    const server = new DeviceServer(spec, onLog);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        server.kill();
        reject(
          new Error(
            `the ${spec.device} device server did not start within ${timeoutMs / 1000} s:\n${server.log}`,
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (server.log.includes(' ready on ')) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.child.stdout!.on('data', check);
      void server.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the ${spec.device} device server exited (code ${code}):\n${server.log}`));
      });
    });
    return server;
  }

  get output(): string {
    return this.log;
  }

  /** null while running. */
  get exitCode(): number | null {
    return this.child.exitCode ?? (this.child.signalCode ? -1 : null);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The device's counters (the server prints them on SIGUSR2). */
  async stats(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const before = this.statsReports.length;
    this.child.kill('SIGUSR2');
    const deadline = Date.now() + timeoutMs;
    while (this.statsReports.length === before) {
      if (Date.now() > deadline)
        throw new Error(`the ${this.spec.device} device server did not report its stats`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return JSON.parse(this.statsReports[this.statsReports.length - 1]!) as Record<string, unknown>;
  }

  /** Asks the server to stop and waits for it (SIGKILL after a deadline). */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
