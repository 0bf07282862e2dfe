// virtio-rng: the entropy device.
export {
  DEFAULT_RNG_MAX_BYTES_PER_REQUEST,
  VirtioRngDevice,
  type VirtioRngOptions,
} from './rng-device.ts';
