// virtio-blk: the device and what a transport or a test needs to talk about it.
export { VirtioBlkDevice, type VirtioBlkOptions } from './blk-device.ts';
export {
  BLK_CONFIG_SIZE,
  BlkConfigOffset,
  DEFAULT_BLK_LIMITS,
  encodeBlkConfig,
  type BlkConfigFields,
  type BlkLimits,
} from './config.ts';
export { DiskFile, nodeDiskFileOps, type DiskFileOps, type DiskFileOptions } from './disk-file.ts';
export * from './spec.ts';
