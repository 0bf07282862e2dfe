// The host's TSC frequency, which a TCG guest needs on its kernel command line.
//
// Why: under QEMU TCG the guest's TSC ticks at the host's TSC rate. Early in boot the kernel
// measures it against the PIT, and under TCG that measurement sometimes fails (about 5% of
// boots, nearly always under host load). On the microvm machine there is then no HPET or ACPI
// PM timer to fall back on and no timer tick yet, so the kernel spins forever in calibrate_delay
// waiting for jiffies to move (seen at calibrate_delay+0x448 with jiffies at its initial value).
// Passing tsc_early_khz skips that measurement. Without a known rate we use q35, whose HPET
// makes the fallback work, at about 0.5 s more boot time.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const PLAUSIBLE_KHZ = { min: 100_000, max: 10_000_000 };

function plausible(khz: number): number | null {
  return Number.isFinite(khz) && khz >= PLAUSIBLE_KHZ.min && khz <= PLAUSIBLE_KHZ.max
    ? Math.round(khz)
    : null;
}

/**
 * /proc/cpuinfo's "cpu MHz" is the TSC calibration (cpu_khz) unless the CPU has APERF/MPERF,
 * in which case it is the current clock, which says nothing about the TSC.
 */
export function tscKhzFromCpuinfo(cpuinfo: string): number | null {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/) ?? [];
  if (!flags.includes('constant_tsc') || flags.includes('aperfmperf')) return null;
  const mhz = /^cpu MHz\s*:\s*([\d.]+)$/m.exec(cpuinfo)?.[1];
  return mhz ? plausible(Number(mhz) * 1000) : null;
}

/** The kernel log's own figure: the refined calibration if there is one, else the first. */
export function tscKhzFromKernelLog(log: string): number | null {
  const refined = /tsc: Refined TSC clocksource calibration: ([\d.]+) MHz/.exec(log)?.[1];
  const detected = /tsc: Detected ([\d.]+) MHz processor/.exec(log)?.[1];
  const mhz = refined ?? detected;
  return mhz ? plausible(Number(mhz) * 1000) : null;
}

export function hostTscKhz(): number | null {
  try {
    const fromCpuinfo = tscKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
    if (fromCpuinfo) return fromCpuinfo;
  } catch {
    // Not Linux, or /proc is not mounted: try the kernel log.
  }
  const dmesg = spawnSync('dmesg', [], { encoding: 'utf8', timeout: 2000 });
  return dmesg.status === 0 ? tscKhzFromKernelLog(dmesg.stdout) : null;
}
