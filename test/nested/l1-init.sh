#!/bin/sh
# PID 1 of the nested harness's L1 (built into its initramfs by l1-initramfs.ts): load KVM,
# mount the project read-only over virtiofs, run test/nested/l1-runner.ts with node, power off.
# Every failure prints NESTED-FAIL and the kernel log's tail, then powers off: the host reads
# both on L1's serial console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Keep the console for our lines: the kernel's messages stay in dmesg.
echo 1 > /proc/sys/kernel/printk
up() { cut -d' ' -f1 /proc/uptime; }
echo "nested-l1: init at $(up) s"

stop() {
	sync
	poweroff -f
	reboot -f
}
fail() {
	echo "NESTED-FAIL {\"what\":\"L1 init\",\"message\":\"$*\"}"
	echo "--- L1 dmesg (last lines) ---"
	dmesg | tail -n 40
	echo "--- end of L1 dmesg ---"
	stop
}

for module in $(cat /etc/nested/modules); do
	insmod "$module" || fail "insmod $module failed"
done
grep -qw svm /proc/cpuinfo || fail "the L1 CPU has no svm flag (QEMU needs -cpu max)"
[ -c /dev/kvm ] || fail "/dev/kvm did not appear after loading kvm-amd"
echo "nested-l1: kvm ready at $(up) s"

runs=3
for arg in $(cat /proc/cmdline); do
	case "$arg" in nested.runs=*) runs="${arg#nested.runs=}" ;; esac
done
mkdir -p /berth /run/nested
mount -t virtiofs -o ro berth /berth || fail "mounting the project over virtiofs failed"
cd /berth || fail "no /berth"
node --import tsx test/nested/l1-runner.ts --runs "$runs" --image /berth/build/image --work /run/nested
echo "nested-l1: runner exited with $? at $(up) s"
stop
