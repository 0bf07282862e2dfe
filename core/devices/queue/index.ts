// The split virtqueue library: SplitQueue (the rings), the chain walk, and stream access to a
// chain's buffers. Devices import from here.
export {
  SplitQueue,
  vringNeedEvent,
  DEFAULT_MAX_CHAIN_BYTES,
  MAX_QUEUE_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
  type PopResult,
  type QueueLayout,
  type SplitQueueOptions,
} from './split-queue.ts';
export {
  walkChain,
  DESC_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  type ChainLimits,
  type DescriptorChain,
} from './descriptor-chain.ts';
export { ChainReader, ChainWriter } from './chain-io.ts';
