// What the L1 runner reports on L1's serial console, and how the host turns it into the harness's
// last line. One line per fact, `NESTED-<KIND> <json>`, so kernel messages or a guest's own
// output interleaved on the console cannot be mistaken for a result.
import type { L2Boot } from './l2-vmm.ts';

/** One boot of the factory image inside L1, by one VMM: what its boot() resolved with. */
export interface BootResult extends L2Boot {
  vmm: 'berth' | 'qemu-kvm';
  run: number;
}

/** The berth side when it could not run at all (our VMM does not exist yet). */
export interface Unavailable {
  vmm: 'berth';
  reason: string;
}

export type NestedLine =
  | { kind: 'BOOT'; value: BootResult }
  | { kind: 'UNAVAILABLE'; value: Unavailable }
  | { kind: 'FAIL'; value: { what: string; message: string } }
  | { kind: 'DONE'; value: { l1UptimeAtStart: number; l1UptimeAtEnd: number } };

export function formatLine(line: NestedLine): string {
  return `NESTED-${line.kind} ${JSON.stringify(line.value)}`;
}

const LINE = /^NESTED-(BOOT|UNAVAILABLE|FAIL|DONE) (\{.*\})\r?$/;

/** Every result line in a stretch of serial output, in order; anything else is ignored. */
export function parseLines(serial: string): NestedLine[] {
  const lines: NestedLine[] = [];
  for (const text of serial.split('\n')) {
    const match = LINE.exec(text.trim());
    if (!match) continue;
    try {
      lines.push({ kind: match[1], value: JSON.parse(match[2]!) } as NestedLine);
    } catch {
      // A line torn by interleaved console output: not a result.
    }
  }
  return lines;
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Summary {
  berth: { readyMs: number[] } | { unavailable: string };
  qemu: { readyMs: number[] };
}

/**
 * The harness's last line. With both sides measured it is the contract of issue 4:
 * `nested: berth READY in <ms> ms; qemu-kvm READY in <ms> ms; ratio <berth/qemu>` (medians).
 * While our VMM does not exist, the berth side says so instead of a figure.
 */
export function finalLine(summary: Summary): string {
  const qemuMs = Math.round(median(summary.qemu.readyMs));
  if ('unavailable' in summary.berth) {
    return `nested: berth READY in n/a (${summary.berth.unavailable}); qemu-kvm READY in ${qemuMs} ms`;
  }
  const berthMs = Math.round(median(summary.berth.readyMs));
  const ratio = median(summary.berth.readyMs) / median(summary.qemu.readyMs);
  return `nested: berth READY in ${berthMs} ms; qemu-kvm READY in ${qemuMs} ms; ratio ${ratio.toFixed(2)}`;
}

/**
 * Where a boot's time went, from the kernel's own timestamps on the serial console: the largest
 * gaps between consecutive "[ seconds]" lines, each with the lines on both sides (for comparing our
 * VMM's boot with the peer's step by step).
 */
export function slowestSteps(serial: string, count = 6): string[] {
  const stamped: { at: number; text: string }[] = [];
  for (const line of serial.split('\n')) {
    const match = /^\[\s*(\d+\.\d+)\]\s?(.*)$/.exec(line.trim());
    if (match) stamped.push({ at: Number(match[1]), text: match[2]!.slice(0, 80) });
  }
  const gaps = stamped
    .slice(1)
    .map((line, i) => ({ gap: line.at - stamped[i]!.at, line, before: stamped[i]! }));
  return gaps
    .sort((a, b) => b.gap - a.gap)
    .slice(0, count)
    .map(
      ({ gap, line, before }) =>
        `${gap.toFixed(3)} s from "${before.text.slice(0, 50)}" to [${line.at.toFixed(3)}] ${line.text.slice(0, 50)}`,
    );
}
