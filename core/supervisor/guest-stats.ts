// The VM's resource use as the guest reports it: /proc/stat's CPU line (the busy share between two
// readings), /proc/meminfo (used = total - available, as `free` counts it) and df of /var.
import type { VmStats } from '../api/types.ts';
import type { DataDiskInfo } from '../disk/data-disk.ts';

export class GuestStats {
  /** One round trip: three small reads, each on lines the parser finds by their labels. */
  static readonly COMMAND =
    "head -n1 /proc/stat; grep -E '^Mem(Total|Available):' /proc/meminfo; df -k /var | tail -n1";

  private previous: { busy: number; total: number } | null = null;

  parse(text: string, disk: DataDiskInfo, now = Date.now()): VmStats {
    const cpuLine = /^cpu\s+([\d\s]+)$/m.exec(text);
    const memTotal = /^MemTotal:\s+(\d+) kB/m.exec(text);
    const memAvailable = /^MemAvailable:\s+(\d+) kB/m.exec(text);
    const df = /^\S+\s+(\d+)\s+(\d+)\s+\d+\s+\d+%\s+\/var\s*$/m.exec(text);
    if (!cpuLine || !memTotal || !memAvailable || !df) {
      throw new Error(
        `unexpected statistics from the guest: ${JSON.stringify(text.slice(0, 200))}`,
      );
    }
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    const ticks = cpuLine[1]!.trim().split(/\s+/).map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const busy = total - (ticks[3] ?? 0) - (ticks[4] ?? 0);
    let cpuPercent: number | null = null;
    if (this.previous && total > this.previous.total) {
      cpuPercent =
        Math.round(((busy - this.previous.busy) / (total - this.previous.total)) * 1000) / 10;
    }
    this.previous = { busy, total };
    const totalKiB = Number(memTotal[1]);
    return {
      at: now,
      cpuPercent,
      memory: {
        totalMiB: Math.round(totalKiB / 1024),
        usedMiB: Math.round((totalKiB - Number(memAvailable[1])) / 1024),
      },
      disk: {
        sizeBytes: Number(df[1]) * 1024,
        usedBytes: Number(df[2]) * 1024,
        allocatedBytes: disk.allocatedBytes,
      },
    };
  }
}
