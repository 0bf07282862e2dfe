// Which backend runs the VM: the kvm backend (our VMM) only when KVM runs guests at hardware
// speed. /dev/kvm existing proves nothing: on a PVM host it opens and runs guests, but by an
// instruction emulator about a thousand times slower than hardware, on which no stock kernel
// boots (shared/ENVIRONMENT.md). So the probe times a tiny guest loop (`dec ecx; jnz`) on
// /dev/kvm, once per process, for at most PROBE_BUDGET_MS: hardware finishes the loop, an
// emulator is stopped at the budget and its progress read from ECX (runProbeGuest).
//
// The measurement runs in a child process (probe-main.ts), as the VMM itself does: the addon is
// built for the system's Node (not Electron's), and a fault in it must not take the UI down.
// BERTH_BACKEND=qemu|kvm skips the probe (for tests, and for users who know better).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../paths.ts';
import { ACPI_POWEROFF_VALUE } from '../vmm/boot/acpi.ts';
import { runProgram } from '../vmm/machine.ts';
import { ACPI_SLEEP_CONTROL_PORT } from '../vmm/memory-layout.ts';
import { nodeForChildren } from './qemu/device-servers.ts';
import { withParentDeathSignal } from './qemu/qemu-vm.ts';

export type BackendName = 'kvm' | 'qemu';

export interface BackendChoice {
  backend: BackendName;
  /** Why, in words for the user and the log ("KVM runs guests at hardware speed (...)"). */
  reason: string;
}

/** What the probe saw: a speed, or why there is none. */
export type KvmSpeed = { nsPerInstruction: number } | { unusable: string };

/**
 * At or below this, KVM runs guests fast enough for our VMM. Measured: hardware ~0.3 ns; the
 * nested harness's L1 (KVM on an SVM that QEMU TCG emulates, where our VMM boots the factory image)
 * 8-29 ns; this machine's PVM 963-3500 ns, which cannot boot Linux.
 */
export const HARDWARE_SPEED_NS = 100;
/**
 * How long the probe guest may run. Its loop is long enough that hardware finishes it well within
 * (5M instructions: ~2 ms), while an emulator is stopped at the budget and its progress read from
 * ECX; so the probe costs an emulated host PROBE_BUDGET_MS and a hardware one a few ms.
 */
export const PROBE_BUDGET_MS = 100;
export const PROBE_ITERATIONS = 2_500_000;
/** The child process, including Node's and tsx's start-up on a loaded machine. */
const PROBE_PROCESS_DEADLINE_MS = 30_000;
const PROBE_MAIN = join(projectRoot, 'core/backends/kvm/probe-main.ts');

/**
 * The probe guest (64-bit): `mov ecx, N; l: dec ecx; jnz l;` then ACPI S5 (`mov dx, 0x600;
 * mov al, 0x34; out dx, al`), which stops the machine; `jmp $` in case the write is ignored.
 */
export function probeProgram(iterations: number): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 0xffffffff) {
    throw new RangeError(`iterations: ${iterations} (1 to 2^32-1)`);
  }
  const count = Buffer.alloc(4);
  count.writeUInt32LE(iterations);
  const port = ACPI_SLEEP_CONTROL_PORT;
  return new Uint8Array([
    0xb9, ...count, // mov ecx, iterations
    0xff, 0xc9, // l: dec ecx
    0x75, 0xfc, // jnz l
    0x66, 0xba, port & 0xff, port >> 8, // mov dx, port
    0xb0, ACPI_POWEROFF_VALUE, // mov al, S5
    0xee, // out dx, al
    0xeb, 0xfe, // jmp $
  ]); // prettier-ignore
}

/**
 * Runs the probe guest for at most `budgetMs`: the loop instructions it executed and the
 * milliseconds that took (from the vCPU's start to the poweroff, or to the budget's end).
 * The fixed cost of a run (thread start, the exit's round trip) counts as guest time, so the
 * figure errs towards slow only by that, which the budget dwarfs.
 */
async function runProbeGuest(
  iterations: number,
  budgetMs: number,
  kvmPath?: string,
): Promise<{ instructions: number; ms: number }> {
  const machine = runProgram({
    code: probeProgram(iterations),
    mode: 'long',
    ...(kvmPath ? { kvmPath } : {}),
  });
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const stop = await Promise.race([
      machine.stopped,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), budgetMs))),
    ]);
    if (stop === null) {
      const vcpu = machine.vcpus[0]!;
      vcpu.pause();
      const ms = performance.now() - started;
      const left = Number(vcpu.getRegs().rcx & 0xffffffffn);
      return { instructions: 2 * (iterations - left), ms };
    }
    const ms = performance.now() - started;
    if (stop.reason !== 'poweroff') {
      throw new Error(`the probe guest stopped (${stop.reason}): ${stop.message}`);
    }
    return { instructions: 2 * iterations, ms };
  } finally {
    clearTimeout(timer);
    machine.destroy();
  }
}

/** Times the guest loop on /dev/kvm in this process. Never throws: a failure is `unusable`. */
export async function measureKvmSpeed(
  options: { kvmPath?: string; iterations?: number; budgetMs?: number } = {},
): Promise<KvmSpeed> {
  const kvmPath = options.kvmPath ?? '/dev/kvm';
  try {
    accessSync(kvmPath, constants.R_OK | constants.W_OK);
  } catch {
    return { unusable: `${kvmPath} missing or not accessible` };
  }
  try {
    const { instructions, ms } = await runProbeGuest(
      options.iterations ?? PROBE_ITERATIONS,
      options.budgetMs ?? PROBE_BUDGET_MS,
      kvmPath,
    );
    if (instructions <= 0) {
      return { unusable: `KVM ran no guest instruction in ${Math.round(ms)} ms (a hung vCPU)` };
    }
    return { nsPerInstruction: (ms * 1e6) / instructions };
  } catch (error) {
    return { unusable: `KVM cannot run a probe guest: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** The decision from a measurement. */
export function decideBackend(speed: KvmSpeed): BackendChoice {
  if ('unusable' in speed) return { backend: 'qemu', reason: speed.unusable };
  const ns = formatNs(speed.nsPerInstruction);
  if (speed.nsPerInstruction <= HARDWARE_SPEED_NS) {
    return { backend: 'kvm', reason: `KVM runs guests at hardware speed (${ns} per instruction)` };
  }
  return {
    backend: 'qemu',
    reason: `KVM here runs guests at ${ns} per instruction (emulated, e.g. PVM), not hardware speed (at most ${HARDWARE_SPEED_NS} ns)`,
  };
}

function formatNs(ns: number): string {
  return `${ns < 10 ? ns.toFixed(1) : Math.round(ns)} ns`;
}

/** BERTH_BACKEND: null when unset or empty; throws on anything but kvm or qemu. */
export function backendOverride(env: NodeJS.ProcessEnv = process.env): BackendName | null {
  const value = env.BERTH_BACKEND?.trim();
  if (!value) return null;
  if (value === 'kvm' || value === 'qemu') return value;
  throw new Error(`BERTH_BACKEND must be kvm or qemu (got ${JSON.stringify(env.BERTH_BACKEND)})`);
}

/** Runs probe-main.ts in a child process and reads its one JSON line. Never throws. */
export function measureKvmSpeedInChild(): Promise<KvmSpeed> {
  return new Promise((resolve) => {
    const [cmd, args] = withParentDeathSignal(nodeForChildren(), ['--import', 'tsx', PROBE_MAIN]);
    const child = spawn(cmd, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.stderr
      .setEncoding('utf8')
      .on('data', (text: string) => (err = (err + text).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_PROCESS_DEADLINE_MS);
    const finish = (speed: KvmSpeed) => {
      clearTimeout(timer);
      resolve(speed);
    };
    child.on('error', (error) =>
      finish({ unusable: `the KVM probe did not run: ${error.message}` }),
    );
    child.on('close', (code, signal) => {
      try {
        const speed = JSON.parse(out.trim().split('\n').pop() ?? '') as KvmSpeed;
        if ('unusable' in speed || Number.isFinite(speed.nsPerInstruction)) return finish(speed);
      } catch {
        // reported below
      }
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      const last = err.trim().split('\n').pop() ?? '';
      finish({ unusable: `the KVM probe failed (${how})${last ? `: ${last}` : ''}` });
    });
  });
}

let cached: Promise<BackendChoice> | null = null;

/**
 * The backend for this process: BERTH_BACKEND if set (it throws on a bad value, every call),
 * else the probe's decision, measured once and cached.
 */
export function chooseBackend(
  env: NodeJS.ProcessEnv = process.env,
  measure: () => Promise<KvmSpeed> = measureKvmSpeedInChild,
): Promise<BackendChoice> {
  const forced = backendOverride(env);
  if (forced) return Promise.resolve({ backend: forced, reason: `BERTH_BACKEND=${forced}` });
  cached ??= measure().then(decideBackend);
  return cached;
}
