// What the queue-driven device models (vsock, net) share: the context they were activated with,
// and one rule for trouble. A ring the guest broke, or an exception of ours, asks the transport
// for a reset once, with the reason, and the device does no more work until it is reset. A batch
// of work interrupts at most once per queue, and only when the driver wants it.
import type { SplitQueue } from './queue/index.ts';
import type { DeviceContext } from './virtio-device.ts';

export abstract class QueueDevice {
  abstract readonly name: string;
  protected context: DeviceContext | null = null;
  protected failed = false;

  /** Called once when the device stops itself (it also goes to the transport as needsReset). */
  protected onFailure(_reason: string): void {}

  protected activateQueues(context: DeviceContext): void {
    this.context = context;
    this.failed = false;
  }

  protected deactivateQueues(): void {
    this.context = null;
    this.failed = false;
  }

  /** Runs `fn`; nothing escapes: an exception is a bug of ours, and the device stops. */
  protected guard(fn: () => void): void {
    if (this.context === null || this.failed) return;
    try {
      fn();
    } catch (error) {
      this.fail(`internal error: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  protected fail(reason: string): void {
    if (this.failed || this.context === null) return;
    this.failed = true;
    this.onFailure(reason);
    this.context.needsReset(`${this.name}: ${reason}`);
  }

  /** Queue `index`, or null when the driver did not set it up or the ring broke (then: fail). */
  protected queue(index: number): SplitQueue | null {
    const queue = this.context?.queues[index] ?? null;
    if (queue?.broken) {
      this.fail(`queue ${index}: ${queue.broken}`);
      return null;
    }
    return queue;
  }

  /** Interrupts once for the batch, if the driver wants it; notices a ring that broke meanwhile. */
  protected finish(index: number, queue: SplitQueue): void {
    if (queue.broken) {
      this.fail(`queue ${index}: ${queue.broken}`);
      return;
    }
    if (queue.needsInterrupt()) this.context?.interrupt(index);
  }
}
