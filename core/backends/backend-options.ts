// What every backend is given to boot the factory image, and what it derives the same way:
// the hybrid-vsock socket guest services connect through, and the kernel command line.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BackendOptions {
  imageDir: string;
  dataDisk: string;
  runDir: string;
  serialLog: string;
  cpus: number;
  memoryMiB: number;
  /** Appended to the image's cmdline (the authorized key, berth.storage_driver=). */
  kernelArgs?: string[];
  log?: (line: string) => void;
}

export interface BackendPaths {
  /** Host side of guest vsock ports (hybrid vsock: CONNECT <port>). */
  vsock: string;
}

export function backendPaths(runDir: string): BackendPaths {
  return { vsock: join(runDir, 'vsock.sock') };
}

/** The image's cmdline file and the extra kernel arguments, as one line. */
export function kernelCmdline(options: Pick<BackendOptions, 'imageDir' | 'kernelArgs'>): string {
  return [
    readFileSync(join(options.imageDir, 'cmdline'), 'utf8').trim(),
    ...(options.kernelArgs ?? []),
  ].join(' ');
}
