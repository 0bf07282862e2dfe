// Placing received frames into the guest's rx buffers (virtio 1.2, 5.1.6.3-4).
//
// With MRG_RXBUF a frame may take several chains: the header goes at the start of the first,
// with num_buffers saying how many follow, and the frame continues chain after chain. A frame is
// placed only once enough buffer space is in hand; chains popped while gathering that space stay
// here (not in the ring) until the next frame, so the used ring only ever gets whole frames.
// Without MRG_RXBUF a frame needs one chain big enough for all of it, or it is dropped.
//
// The guest is untrusted: a malformed chain, or one without writable buffers (wrong direction),
// is returned at once with length 0, which Linux counts as a short packet.
import type { DescriptorChain, SplitQueue } from '../queue/index.ts';
import { ChainWriter } from '../queue/index.ts';
import { writeRxHeader } from './net-header.ts';

export type PlaceResult = 'placed' | 'no-buffers' | 'dropped';

export interface RxCounters {
  badChains: number;
  droppedTooBig: number;
}

export class RxBuffers {
  /** Chains popped from the ring and not yet used, oldest first. */
  private held: DescriptorChain[] = [];
  private heldBytes = 0;

  constructor(
    private readonly counters: RxCounters,
    private readonly options: { headerBytes: number; mergeable: boolean; headerFlags: number },
  ) {}

  /** Chains held back, for diagnostics. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Forget held chains (the queue is going away; their memory may be unmapped). */
  clear(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  /** Copies `frame` into the guest's buffers and adds them to the used ring. */
  place(queue: SplitQueue, frame: Uint8Array): PlaceResult {
    const need = this.options.headerBytes + frame.length;
    if (!this.options.mergeable) {
      if (!this.gather(queue, 1)) return 'no-buffers';
      const chain = this.held[0]!;
      if (chain.writableBytes < need) {
        // Linux posts buffers for its MTU; a bigger frame cannot be delivered. The chain
        // stays held for the next frame.
        this.counters.droppedTooBig++;
        return 'dropped';
      }
      this.take(1);
      const writer = new ChainWriter(chain);
      writeRxHeader(writer, this.options.headerBytes, this.options.headerFlags, 1);
      writer.write(frame);
      queue.addUsed(chain.head, writer.written);
      return 'placed';
    }
    const gathered = this.gatherBytes(queue, need);
    if (gathered === 'dry') return 'no-buffers';
    if (gathered === 'impossible') {
      // The whole ring cannot hold it (a driver posting tiny buffers): drop the frame rather
      // than wait for space that can never come. The chains stay held for smaller frames.
      this.counters.droppedTooBig++;
      return 'dropped';
    }
    // How many held chains the frame takes: the fewest whose space covers it.
    let count = 0;
    for (let space = 0; space < need; count++) space += this.held[count]!.writableBytes;
    const chains = this.take(count);
    let offset = 0;
    for (const [i, chain] of chains.entries()) {
      const writer = new ChainWriter(chain);
      if (i === 0) writeRxHeader(writer, this.options.headerBytes, this.options.headerFlags, count);
      const step = Math.min(writer.remaining, frame.length - offset);
      writer.write(frame.subarray(offset, offset + step));
      offset += step;
      queue.addUsed(chain.head, writer.written);
    }
    return 'placed';
  }

  /** Pops until `count` usable chains are held; false if the ring runs dry first. */
  private gather(queue: SplitQueue, count: number): boolean {
    while (this.held.length < count) if (!this.popOne(queue)) return false;
    return true;
  }

  /** Pops until the held chains hold `bytes`: 'dry' if the ring runs out first. */
  private gatherBytes(queue: SplitQueue, bytes: number): 'ok' | 'dry' | 'impossible' {
    while (this.heldBytes < bytes || this.held.length === 0) {
      if (this.held.length >= queue.size) return 'impossible';
      if (!this.popOne(queue)) return 'dry';
    }
    return 'ok';
  }

  private popOne(queue: SplitQueue): boolean {
    for (;;) {
      const next = queue.pop();
      if (next === null) return false;
      if ('error' in next) {
        this.counters.badChains++;
        queue.addUsed(next.head, 0);
        continue;
      }
      const chain = next.chain;
      const needsHeader = this.held.length === 0;
      if (
        chain.writableBytes === 0 ||
        (needsHeader && chain.writableBytes < this.options.headerBytes)
      ) {
        this.counters.badChains++;
        queue.addUsed(chain.head, 0);
        continue;
      }
      this.held.push(chain);
      this.heldBytes += chain.writableBytes;
      return true;
    }
  }

  private take(count: number): DescriptorChain[] {
    const taken = this.held.splice(0, count);
    for (const chain of taken) this.heldBytes -= chain.writableBytes;
    return taken;
  }
}
