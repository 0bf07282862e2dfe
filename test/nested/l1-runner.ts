// Runs inside L1 (started by l1-init.sh with the project mounted read-only over virtiofs): boots
// the factory image under KVM with each VMM, alternating runs so that drift in L1 hits both the
// same, and reports every figure on L1's serial console as NESTED-* lines (results.ts).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decideBackend, measureKvmSpeed } from '../../core/backends/kvm-probe.ts';
import { berthVmm } from './berth-vmm.ts';
import type { L2Boot, L2Image, L2Run, NestedVmm } from './l2-vmm.ts';
import { qemuKvm } from './peer-qemu-kvm.ts';
import { formatLine, type NestedLine, slowestSteps } from './results.ts';

const DATA_DISK_BYTES = 1 << 30;

function say(line: NestedLine): void {
  process.stdout.write(`${formatLine(line)}\n`);
}

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** The image in L1's RAM: both VMMs then read the same bytes, and neither pays for virtiofs. */
function stageImage(from: string, to: string): L2Image {
  mkdirSync(to, { recursive: true });
  const started = performance.now();
  const copy = (name: string) => {
    if (!existsSync(join(from, name))) return null;
    copyFileSync(join(from, name), join(to, name));
    return join(to, name);
  };
  const kernel = copy('vmlinuz');
  const initrd = copy('initrd.img');
  const systemImage = copy('system.img');
  if (!kernel || !initrd) throw new Error(`no factory image in ${from} (run npm run image)`);
  const cmdline = readFileSync(join(from, 'cmdline'), 'utf8').trim();
  console.log(`nested-l1: image copied to ${to} in ${Math.round(performance.now() - started)} ms`);
  return { kernel, initrd, systemImage, cmdline };
}

/** A sparse, all-zero data disk, as a first start has (the guest formats it). */
function freshDataDisk(path: string): void {
  writeFileSync(path, '');
  truncateSync(path, DATA_DISK_BYTES);
}

/**
 * One boot. The peer gets one retry: QEMU under nested KVM in TCG sometimes fails on its own (an
 * XSAVE size mismatch at start, a hang in the PCI scan), and a broken reference run says nothing
 * about our VMM. Our VMM gets none: any failure of ours fails the harness.
 */
async function bootOnce(vmm: NestedVmm, run: L2Run): Promise<L2Boot> {
  try {
    return await vmm.boot(run);
  } catch (error) {
    if (vmm.name !== 'qemu-kvm') throw error;
    const first = (error as Error).message.split('\n')[0];
    console.log(`nested-l1: ${vmm.name} run ${run.run} failed (${first}); retrying it once`);
    freshDataDisk(run.dataDisk);
    return vmm.boot(run);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      image: { type: 'string', default: '/berth/build/image' },
      runs: { type: 'string', default: '3' },
      work: { type: 'string', default: '/run/nested' },
    },
  });
  const l1UptimeAtStart = uptime();
  const runs = Number(values.runs);
  const image = stageImage(values.image, join(values.work, 'image'));
  // What the supervisor's start-up probe would choose here, where KVM is real (not PVM).
  const choice = decideBackend(await measureKvmSpeed());
  console.log(`nested-l1: backend probe: ${choice.backend}: ${choice.reason}`);
  const berth = berthVmm();
  const vmms: NestedVmm[] = [];
  if ('unavailable' in berth)
    say({ kind: 'UNAVAILABLE', value: { vmm: 'berth', reason: berth.unavailable } });
  else vmms.push(berth.vmm);
  vmms.push(qemuKvm);

  // What starting a node process costs here (emulated L1), against the VMM's figures.
  for (const [what, args] of [
    ['node -e 0', ['-e', '0']],
    [
      'node build/vmm/vmm-main.js (load, then exit on no arguments)',
      ['/berth/build/vmm/vmm-main.js'],
    ],
  ] as const) {
    const started = performance.now();
    spawnSync(process.execPath, [...args], { stdio: 'ignore' });
    console.log(`nested-l1: ${what}: ${Math.round(performance.now() - started)} ms`);
  }

  for (let run = 1; run <= runs; run++) {
    for (const vmm of vmms) {
      const dataDisk = join(values.work, `data-${vmm.name}-${run}.img`);
      freshDataDisk(dataDisk);
      const serialLog = join(values.work, `serial-${vmm.name}-${run}.log`);
      try {
        const boot = await bootOnce(vmm, {
          image,
          dataDisk,
          serialLog,
          run,
          cpus: 2,
          memoryMiB: 1024,
        });
        say({ kind: 'BOOT', value: { vmm: vmm.name, run, ...boot } });
        for (const step of slowestSteps(readFileSync(serialLog, 'latin1'))) {
          console.log(`nested-l1: ${vmm.name} run ${run} slow step: ${step}`);
        }
      } catch (error) {
        say({
          kind: 'FAIL',
          value: { what: `${vmm.name} run ${run}`, message: (error as Error).message },
        });
        return 1;
      } finally {
        writeFileSync(dataDisk, ''); // give the RAM back
      }
    }
  }
  say({ kind: 'DONE', value: { l1UptimeAtStart, l1UptimeAtEnd: uptime() } });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    say({ kind: 'FAIL', value: { what: 'the L1 runner', message: error.stack ?? error.message } });
    process.exit(1);
  },
);
