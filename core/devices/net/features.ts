// virtio-net feature bits (virtio 1.2, 5.1.3) and the set this device offers.
//
// Over vhost-user, QEMU 7.2 passes only some bits through to the back-end (hw/net/vhost_net.c,
// user_feature_bits): CSUM, GUEST_CSUM, the GSO/TSO/UFO bits, MRG_RXBUF, MTU, the ring features
// (INDIRECT_DESC, EVENT_IDX, VERSION_1, ...), MQ, RSS. A bit in that list that the back-end does
// not offer is hidden from the guest; MAC, STATUS and CTRL_VQ are QEMU's own (it keeps the
// config space and the control queue). We offer MAC and STATUS anyway, with a config space to
// match, so the same model serves an in-process transport.
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  bit,
} from '../virtio-device.ts';

/** The device completes a partial checksum the driver leaves (NEEDS_CSUM on tx). */
export const VIRTIO_NET_F_CSUM = 0n;
/** The driver accepts rx frames whose checksum the device vouches for (DATA_VALID). */
export const VIRTIO_NET_F_GUEST_CSUM = 1n;
/** Config space mtu is valid: the largest MTU the driver should use. */
export const VIRTIO_NET_F_MTU = 3n;
/** Config space mac is valid. */
export const VIRTIO_NET_F_MAC = 5n;
export const VIRTIO_NET_F_GUEST_TSO4 = 7n;
export const VIRTIO_NET_F_HOST_TSO4 = 11n;
/** The driver may give one rx frame several buffers (num_buffers in the header). */
export const VIRTIO_NET_F_MRG_RXBUF = 15n;
/** Config space status is valid (LINK_UP). */
export const VIRTIO_NET_F_STATUS = 16n;

/** Config space status: the link is up. */
export const VIRTIO_NET_S_LINK_UP = 1;

/**
 * What the device offers. No TSO/GSO: passt takes frames up to its MTU, and with a 65520 MTU
 * the guest already sends 64 KiB frames without segmentation offload.
 */
export function netFeatures(options: { checksumOffload: boolean }): bigint {
  let features =
    bit(VIRTIO_F_VERSION_1) |
    bit(VIRTIO_F_EVENT_IDX) |
    bit(VIRTIO_F_INDIRECT_DESC) |
    bit(VIRTIO_NET_F_MRG_RXBUF) |
    bit(VIRTIO_NET_F_MTU) |
    bit(VIRTIO_NET_F_MAC) |
    bit(VIRTIO_NET_F_STATUS);
  if (options.checksumOffload) {
    features |= bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM);
  }
  return features;
}
