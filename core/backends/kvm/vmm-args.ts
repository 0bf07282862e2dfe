// The VMM child process's command line: KvmBackend writes it (vmmArgs), vmm-main.ts reads and
// checks it (parseVmmArgs). Every mistake is a VmmArgsError naming the argument, so a bad spawn
// fails at once with a message instead of as a guest that never boots.
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';

export interface VmmSpec {
  kernel: string;
  initrd: string;
  cmdline: string;
  cpus: number;
  memoryMiB: number;
  /** The data disk (virtio-blk, read-write). */
  disk: string;
  /** The read-only system image (virtio-blk), when the image has one. */
  systemImage?: string;
  /** The hybrid-vsock Unix socket: host side of guest vsock ports (CONNECT <port>). */
  vsock: string;
  /** The passt binary: with it the guest gets virtio-net with passt behind it. */
  passt?: string;
}

export class VmmArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmmArgsError';
  }
}

/** The same bounds as the machine's (vcpus) and the memory layout's (16 MiB to 1 TiB). */
const MAX_CPUS = 254;
const MIN_MEMORY_MIB = 16;
const MAX_MEMORY_MIB = 1024 * 1024;

export function vmmArgs(spec: VmmSpec): string[] {
  return [
    '--kernel',
    spec.kernel,
    '--initrd',
    spec.initrd,
    '--cmdline',
    spec.cmdline,
    '--cpus',
    String(spec.cpus),
    '--memory',
    String(spec.memoryMiB),
    '--disk',
    spec.disk,
    ...(spec.systemImage ? ['--system-image', spec.systemImage] : []),
    '--vsock',
    spec.vsock,
    ...(spec.passt ? ['--passt', spec.passt] : []),
  ];
}

export function parseVmmArgs(argv: string[]): VmmSpec {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        kernel: { type: 'string' },
        initrd: { type: 'string' },
        cmdline: { type: 'string' },
        cpus: { type: 'string' },
        memory: { type: 'string' },
        disk: { type: 'string' },
        'system-image': { type: 'string' },
        vsock: { type: 'string' },
        passt: { type: 'string' },
      },
    }));
  } catch (error) {
    throw new VmmArgsError((error as Error).message);
  }
  const required = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== 'string' || value === '') {
      throw new VmmArgsError(`--${name} is required`);
    }
    return value;
  };
  const file = (name: 'kernel' | 'initrd' | 'disk' | 'system-image', writable = false) => {
    const path = required(name);
    try {
      if (!statSync(path).isFile()) throw new VmmArgsError(`--${name} ${path}: not a file`);
      accessSync(path, constants.R_OK | (writable ? constants.W_OK : 0));
    } catch (error) {
      if (error instanceof VmmArgsError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
      throw new VmmArgsError(`--${name} ${path}: ${why ?? (error as Error).message}`);
    }
    return path;
  };
  const integer = (name: 'cpus' | 'memory', min: number, max: number) => {
    const text = required(name);
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new VmmArgsError(`--${name} ${text}: an integer from ${min} to ${max}`);
    }
    return value;
  };
  // In the order of the command line, so the first mistake is the one reported.
  const kernel = file('kernel');
  const initrd = file('initrd');
  const cmdline = required('cmdline');
  const cpus = integer('cpus', 1, MAX_CPUS);
  const memoryMiB = integer('memory', MIN_MEMORY_MIB, MAX_MEMORY_MIB);
  const disk = file('disk', true);
  const systemImage = values['system-image'] !== undefined ? file('system-image') : undefined;
  const vsock = required('vsock');
  try {
    if (!statSync(dirname(vsock)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new VmmArgsError(`--vsock ${vsock}: its directory does not exist`);
  }
  const passt = values.passt;
  if (passt !== undefined) {
    try {
      accessSync(passt, constants.X_OK);
    } catch {
      throw new VmmArgsError(`--passt ${passt}: not an executable`);
    }
  }
  return {
    kernel,
    initrd,
    cmdline,
    cpus,
    memoryMiB,
    disk,
    ...(systemImage !== undefined ? { systemImage } : {}),
    vsock,
    ...(passt !== undefined ? { passt } : {}),
  };
}
