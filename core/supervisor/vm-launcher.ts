// The VmRunner the supervisor gives its lifecycle: at every start it reads the current settings,
// prepares the data disk (created on first start, grown when the disk setting grew; the guest
// grows its filesystem at boot) and boots on the backend the start-up probe chose. So a settings
// change takes effect exactly at the next start, and `pendingRestart` can compare against what
// the running VM was booted with.
import { DataDisk, GiB } from '../disk/data-disk.ts';
import { authorizedKeyArgument, type GuestSshKey } from '../guest/ssh-keys.ts';
import type { Settings } from '../settings/schema.ts';
import { ensureFactoryImage, type ImageProgress } from './factory-image.ts';
import type { BackendOptions } from '../backends/backend-options.ts';
import { type BackendChoice, chooseBackend } from '../backends/kvm-probe.ts';
import { KvmVmRunner } from './kvm-runner.ts';
import { QemuVmRunner } from './qemu-runner.ts';
import { type RunningVm, type StartProgress, type VmRunner, VmStartError } from './vm-runner.ts';

export interface LaunchContext {
  imageDir: string;
  dataDisk: string;
  runDir: string;
  serialLog: string;
  key: GuestSshKey;
  log?: (line: string) => void;
  /** The factory image being built (only when it is missing or damaged). */
  onImageProgress?: ImageProgress;
}

export class VmLauncher implements VmRunner {
  /** The settings the running (or last started) VM was booted with. */
  bootedWith: Settings | null = null;

  constructor(
    private readonly context: LaunchContext,
    private readonly settings: () => Settings,
    /** Seam for tests: how a runner is made for given settings. */
    private readonly makeRunner: (
      settings: Settings,
      context: LaunchContext,
    ) => VmRunner = probedRunner,
  ) {}

  async start(signal: AbortSignal, progress: StartProgress): Promise<RunningVm> {
    const settings = this.settings();
    progress('checking the factory image', 2);
    await ensureFactoryImage(
      this.context.imageDir,
      this.context.onImageProgress ?? (() => {}),
      signal,
    );
    if (signal.aborted) throw new Error('start cancelled');
    progress('preparing the data disk', 5);
    prepareDataDisk(this.context.dataDisk, settings.diskGiB);
    const vm = await this.makeRunner(settings, this.context).start(signal, progress);
    this.bootedWith = settings;
    return vm;
  }
}

/** Creates the data disk on first start; grows it when the setting grew (never shrinks). */
export function prepareDataDisk(path: string, sizeGiB: number): void {
  const disk = new DataDisk(path);
  const wanted = sizeGiB * GiB;
  if (!disk.exists()) disk.create(wanted);
  else if (disk.info().sizeBytes < wanted) disk.grow(wanted);
}

/** What both backends are given: the image, the disk, the run dir and the settings. */
function backendOptions(settings: Settings, context: LaunchContext): BackendOptions {
  return {
    imageDir: context.imageDir,
    dataDisk: context.dataDisk,
    runDir: context.runDir,
    serialLog: context.serialLog,
    cpus: settings.cpus,
    memoryMiB: settings.memoryMiB,
    // The guest's init reads berth.storage_driver= into /etc/docker/daemon.json.
    kernelArgs: [
      authorizedKeyArgument(context.key),
      `berth.storage_driver=${settings.storageDriver}`,
    ],
    log: context.log,
  };
}

/**
 * The default runner: on the backend the start-up probe chose (measured once per process, or
 * BERTH_BACKEND), logged at every start.
 */
export function probedRunner(
  settings: Settings,
  context: LaunchContext,
  choose: () => Promise<BackendChoice> = chooseBackend,
): VmRunner {
  return {
    async start(signal, progress) {
      progress('choosing the backend', 7);
      let choice: BackendChoice;
      try {
        choice = await choose();
      } catch (error) {
        throw new VmStartError(`the VM did not start: ${(error as Error).message}`, {
          serialTail: '',
        });
      }
      if (signal.aborted) throw new Error('start cancelled');
      context.log?.(`backend: ${choice.backend}: ${choice.reason}`);
      const options = backendOptions(settings, context);
      const runner =
        choice.backend === 'kvm'
          ? new KvmVmRunner({ ...options, reason: choice.reason })
          : new QemuVmRunner({ ...options, whyNotKvm: choice.reason });
      return runner.start(signal, progress);
    },
  };
}
