// What the guest expects of its devices whichever backend runs it: the serials its init finds
// disks by (native/guest/init.c), its vsock context ID, and its MAC address; and the line it
// prints on its serial console when it is up.

/** The data disk's virtio-blk serial. */
export const DATA_DISK_SERIAL = 'berth-data';

/** The guest's init finds the system image's disk by this serial (native/guest/init.c). */
export const SYSTEM_DISK_SERIAL = 'berth-system';

/** The guest's vsock context ID; the host is always 2. */
export const GUEST_CID = 3;

/** The guest's MAC address (eth0): QEMU's prefix, and stable, so DHCP hands out the same lease. */
export const GUEST_MAC = '52:54:00:b3:47:01';

/** init prints this, with its uptime in seconds, once the guest is up (native/guest/init.c). */
export const READY_LINE = /BERTH-READY (\d+\.\d+)\r?\n/;
