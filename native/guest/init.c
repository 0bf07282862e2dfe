/*
 * berth-init: PID 1 of the Berth guest VM.
 *
 * Boot order (see README.md for the full contract):
 *   1. mount the API filesystems, open /dev/console
 *   2. load the kernel modules listed in /etc/berth/modules; mount the
 *      read-only system image (squashfs, serial berth-system) under /usr
 *   3. hostname, loopback up
 *   4. data disk /dev/vda on /var (format only if it is all zeros: btrfs
 *      when that storage driver is chosen, else ext4); then the container
 *      engine: containerd, dockerd, and docker.sock on vsock port 2375
 *   5. SSH host key, authorized key from the kernel command line
 *   6. vsock SSH listener (berth-vsockd + dropbear -i)
 *   7. root shell on the serial console
 *   8. print "BERTH-READY <uptime>"
 *   9. supervise: reap, respawn, wait for shutdown signals
 *  10. orderly shutdown: kill everything, unmount /var, power off / reboot
 *
 * PID 1 must never exit (the kernel panics), so every failure is logged
 * and boot carries on with whatever still works.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <linux/module.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

#define LOG_PREFIX "berth-init: "
#define SEARCH_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

#define MODULES_LIST "/etc/berth/modules"
#define DATA_DISK "/dev/vda"
#define DISK_WAIT_MS 5000
#define DISK_POLL_MS 10
#define ZERO_CHECK_BYTES (128 * 1024)

#define HOST_KEY "/var/lib/dropbear/dropbear_ed25519_host_key"
#define AUTH_KEY_PARAM "berth.authorized_key"
#define STORAGE_DRIVER_PARAM "berth.storage_driver"

#define SYSTEM_SERIAL "berth-system"
#define SYSTEM_MOUNT "/.system"
#define DOCKER_VSOCK_PORT "2375"    /* must match DOCKER_VSOCK_PORT on the host */
#define DOCKER_SOCKET "/var/run/docker.sock"
#define DOCKER_STOP_GRACE_MS 8000   /* dockerd stops its containers (shutdown-timeout 5 s) */

#define READY_FD 3            /* must match "--ready-fd" in listener_argv */
#define READY_TIMEOUT_MS 5000

#define RESTART_MIN_MS 1000   /* never start a service more than once a second */
#define RESTART_MAX_MS 60000  /* back off to this when it keeps failing */
#define HEALTHY_RUN_MS 10000  /* running this long resets the back-off */

#define TERM_GRACE_MS 2000
#define KILL_GRACE_MS 1000

/* ---- small utilities ------------------------------------------------ */

static char *const base_env[] = { "HOME=/", "PATH=" SEARCH_PATH, NULL };
/* DOCKER_RAMDISK: the root is an initramfs, which runc cannot pivot_root away from. */
static char *const engine_env[] = {
	"HOME=/root", "PATH=" SEARCH_PATH, "DOCKER_RAMDISK=true", NULL,
};

/* From berth.storage_driver= on the kernel command line (the host's setting). */
static char storage_driver[16] = "overlay2";
static int system_image_mounted;
static char *const shell_env[] = {
	"HOME=/root", "TERM=linux", "PATH=" SEARCH_PATH, NULL,
};

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* One message = one write(), so lines are not torn by other writers. */
__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	char line[512];
	size_t prefix = sizeof LOG_PREFIX - 1;
	size_t room = sizeof line - prefix - 1; /* keep one byte for '\n' */
	va_list ap;
	int n;

	memcpy(line, LOG_PREFIX, prefix);
	va_start(ap, fmt);
	n = vsnprintf(line + prefix, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = prefix + ((size_t)n < room ? (size_t)n : room - 1);
	line[len++] = '\n';
	write_all(STDERR_FILENO, line, len);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Reads a small text file into buf (NUL-terminated). Returns its length or -1. */
static ssize_t read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -1;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Strips leading and trailing white space in place. */
static char *trim(char *s)
{
	size_t len;

	while (is_space(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_space(s[len - 1]))
		s[--len] = '\0';
	return s;
}

static void mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (strlen(path) >= sizeof buf)
		return;
	strcpy(buf, path);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			say("cannot create %s: %s", buf, strerror(errno));
		*p = saved;
		if (saved == '\0')
			return;
	}
}

/* "exited with status 1" / "killed by signal 9" */
static const char *describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "wait status 0x%x", (unsigned int)status);
	return buf;
}

/* ---- running programs ----------------------------------------------- */

static sigset_t handled_signals; /* blocked in init, consumed via signalfd */

/* Child side of fork(): undo init's signal blocking and exec. Never returns. */
static void exec_child(char *const argv[], char *const envp[])
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the mask survives exec */
	execve(argv[0], argv, envp);
	say("cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

static void stdout_to_null(void)
{
	int fd = open("/dev/null", O_WRONLY);

	if (fd >= 0 && fd != STDOUT_FILENO) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}

/* Runs argv to completion. Returns 0 on exit status 0, else -1 (logged). */
static int run(char *const argv[], int quiet_stdout)
{
	char why[96];
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		say("cannot fork to run %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (quiet_stdout)
			stdout_to_null();
		exec_child(argv, base_env);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			say("cannot wait for %s: %s", argv[0], strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	say("%s failed: %s", argv[0], describe_status(status, why, sizeof why));
	return -1;
}

/* Waits up to ms for pid to exit. Returns 1 and its status if it did. */
static int reap_within(pid_t pid, long ms, int *status)
{
	long long deadline = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
		if (now_ms() >= deadline)
			return 0;
		sleep_ms(10);
	}
}

/* ---- step 1: filesystems and console ------------------------------- */

struct mount_spec {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
	mode_t mode; /* of the mount point, if it has to be created */
};

static const struct mount_spec base_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755 },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	  "ptmxmode=0666,mode=0620,gid=5", 0755 },
	{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755 },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	  NULL, 0755 },
};

static void mount_base_filesystems(void)
{
	for (size_t i = 0; i < sizeof base_mounts / sizeof base_mounts[0]; i++) {
		const struct mount_spec *m = &base_mounts[i];

		if (mkdir(m->target, m->mode) < 0 && errno != EEXIST)
			say("cannot create %s: %s", m->target, strerror(errno));
		if (mount(m->source, m->target, m->type, m->flags, m->data) < 0)
			say("cannot mount %s on %s: %s", m->type, m->target, strerror(errno));
	}
}

/* Opens a terminal without waiting for carrier detect (a serial open can
 * block on it), then makes it blocking again and ignores modem lines. */
static int open_tty(const char *path, int extra_flags)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NONBLOCK | extra_flags);

	if (fd < 0)
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (tcgetattr(fd, &t) == 0 && !(t.c_cflag & CLOCAL)) {
		t.c_cflag |= CLOCAL;
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* The kernel may start init with no fds 0-2 (no /dev/console in the
 * initramfs). O_NOCTTY: init must never get a controlling terminal, or a
 * ^C typed on the console would reach PID 1. */
static void open_console(void)
{
	int fd = open_tty("/dev/console", O_NOCTTY);

	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* ---- step 2: kernel modules ------------------------------------------ */

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void load_module(const char *path)
{
	/* Let the kernel decompress; a plain .ko must not carry the flag. */
	int compressed = has_suffix(path, ".xz") || has_suffix(path, ".gz") ||
			 has_suffix(path, ".zst");
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		say("cannot load module %s: %s", path, strerror(errno));
		return;
	}
	if (syscall(SYS_finit_module, fd, "",
		    compressed ? MODULE_INIT_COMPRESSED_FILE : 0) < 0 && errno != EEXIST)
		say("cannot load module %s: %s", path, strerror(errno));
	close(fd);
}

static void load_module_list(const char *list)
{
	FILE *f = fopen(list, "re");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		say("cannot read %s: %s; loading no modules", list, strerror(errno));
		return;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *path = trim(line);

		if (*path != '\0' && *path != '#')
			load_module(path);
	}
	free(line);
	fclose(f);
}

static void load_modules(void)
{
	load_module_list(MODULES_LIST);
}

/* An on-demand module (the builder's /etc/berth/modules-<name>), once. */
static void load_btrfs(void)
{
	static int loaded;

	if (!loaded)
		load_module_list(MODULES_LIST "-btrfs");
	loaded = 1;
}

/* ---- step 2b: the read-only system image ----------------------------- */

/* The virtio disk whose serial (the host's --serial) is `serial`. */
static int find_disk_by_serial(const char *serial, char *dev, size_t size)
{
	char path[64], buf[64];

	for (char c = 'a'; c <= 'z'; c++) {
		snprintf(path, sizeof path, "/sys/block/vd%c/serial", c);
		if (read_text(path, buf, sizeof buf) < 0)
			continue;
		if (strcmp(trim(buf), serial) == 0) {
			snprintf(dev, size, "/dev/vd%c", c);
			return 1;
		}
	}
	return 0;
}

/* squashfs on its own disk, its /usr laid over the initrd's (read-only
 * overlay: the initrd's files first, then the image's). Called once the
 * data disk (the first virtio disk) has appeared, so the rest have too. */
static void mount_system_image(void)
{
	char dev[32];

	if (!find_disk_by_serial(SYSTEM_SERIAL, dev, sizeof dev)) {
		say("no system image disk (serial %s): the container engine is not available",
		    SYSTEM_SERIAL);
		return;
	}
	mkdir_p(SYSTEM_MOUNT, 0755);
	if (mount(dev, SYSTEM_MOUNT, "squashfs", MS_RDONLY | MS_NODEV, NULL) < 0) {
		say("cannot mount the system image %s: %s", dev, strerror(errno));
		return;
	}
	if (mount("overlay", "/usr", "overlay", MS_RDONLY | MS_NODEV,
		  "lowerdir=/usr:" SYSTEM_MOUNT "/usr") < 0) {
		say("cannot lay the system image over /usr: %s", strerror(errno));
		umount2(SYSTEM_MOUNT, MNT_DETACH);
		return;
	}
	system_image_mounted = 1;
}

/* ---- step 3: hostname and loopback ---------------------------------- */

static void set_hostname(void)
{
	char buf[HOST_NAME_MAX + 2];
	char *name;

	if (read_text("/etc/hostname", buf, sizeof buf) < 0) {
		say("cannot read /etc/hostname: %s", strerror(errno));
		return;
	}
	name = trim(buf);
	name[strcspn(name, " \t\r\n")] = '\0'; /* first word only */
	if (*name != '\0' && sethostname(name, strlen(name)) < 0)
		say("cannot set hostname to %s: %s", name, strerror(errno));
}

/* Bringing lo up is enough: the kernel adds 127.0.0.1/8 and ::1 itself. */
static void bring_up_loopback(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0) {
		say("cannot bring up lo: socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		say("cannot bring up lo: SIOCGIFFLAGS: %s", strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			say("cannot bring up lo: SIOCSIFFLAGS: %s", strerror(errno));
	}
	close(s);
}

/* ---- step 4: data disk on /var -------------------------------------- */

enum disk_kind { DISK_EXT4, DISK_BTRFS, DISK_BLANK, DISK_FOREIGN, DISK_UNREADABLE };

static char *const mkfs_argv[] = {
	"/sbin/mkfs.ext4", "-q", "-F", "-L", "berth-data", "-m", "0",
	"-E", "lazy_itable_init=1,lazy_journal_init=1", DATA_DISK, NULL,
};
/* From the system image: only there when it is mounted. */
static char *const mkfs_btrfs_argv[] = {
	"/usr/sbin/mkfs.btrfs", "-q", "-f", "-L", "berth-data", DATA_DISK, NULL,
};

#define BTRFS_SUPER_OFFSET 0x10000 /* the primary superblock, at 64 KiB */
#define BTRFS_MAGIC "_BHRfS_M"     /* at +0x40 in the superblock */
#define BTRFS_TOTAL_BYTES 0x70     /* u64 LE in the superblock */

static int wants_btrfs(void)
{
	return strcmp(storage_driver, "btrfs") == 0;
}

static int wait_for_path(const char *path, long timeout_ms)
{
	for (long waited = 0; ; waited += DISK_POLL_MS) {
		if (access(path, F_OK) == 0)
			return 1;
		if (waited >= timeout_ms)
			return 0;
		sleep_ms(DISK_POLL_MS);
	}
}

/* Reads up to len bytes at off (short only at end of device). -1 on error. */
static ssize_t pread_full(int fd, unsigned char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* 1 if the first `len` bytes are all zero, 0 if not, -1 on read error. */
static int starts_with_zeros(int fd, size_t len)
{
	unsigned char buf[16384];

	for (size_t off = 0; off < len; off += sizeof buf) {
		ssize_t n = pread_full(fd, buf, sizeof buf, (off_t)off);

		if (n < 0)
			return -1;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != 0)
				return 0;
		if ((size_t)n < sizeof buf)
			break; /* end of a (tiny) device */
	}
	return 1;
}

/* Only a blank disk may be formatted: anything we do not recognise could
 * be the user's data, so it is left strictly alone. */
static enum disk_kind probe_disk(const char *dev)
{
	unsigned char sb[4096];
	enum disk_kind kind = DISK_UNREADABLE;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		say("cannot open %s: %s", dev, strerror(errno));
		return DISK_UNREADABLE;
	}
	ssize_t n = pread_full(fd, sb, sizeof sb, 1024); /* ext2/3/4 superblock */
	unsigned char magic[8];
	ssize_t m = pread_full(fd, magic, sizeof magic, BTRFS_SUPER_OFFSET + 0x40);
	if (n >= 58 && sb[56] == 0x53 && sb[57] == 0xEF) { /* s_magic 0xEF53, LE */
		kind = DISK_EXT4;
	} else if (m == (ssize_t)sizeof magic && memcmp(magic, BTRFS_MAGIC, 8) == 0) {
		kind = DISK_BTRFS;
	} else if (n >= 0) {
		int zero = starts_with_zeros(fd, ZERO_CHECK_BYTES);
		kind = zero < 0 ? DISK_UNREADABLE : zero ? DISK_BLANK : DISK_FOREIGN;
	}
	if (kind == DISK_UNREADABLE)
		say("cannot read %s: %s", dev, strerror(errno));
	close(fd);
	return kind;
}

static void mount_var_tmpfs(void)
{
	say("using a tmpfs on /var: nothing will persist across reboots");
	if (mount("tmpfs", "/var", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		say("cannot mount tmpfs on /var: %s", strerror(errno));
}

static void mount_var_disk(const char *type)
{
	if (mount(DATA_DISK, "/var", type, MS_NOATIME, NULL) == 0)
		return;
	say("cannot mount %s on /var: %s", DATA_DISK, strerror(errno));
	mount_var_tmpfs();
}

static char *const resize_argv[] = { "/sbin/resize2fs", DATA_DISK, NULL };

static uint64_t le32_at(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static uint64_t le64_at(const unsigned char *p)
{
	return le32_at(p) | le32_at(p + 4) << 32;
}

static char *const btrfs_resize_argv[] = {
	"/usr/bin/btrfs", "-q", "filesystem", "resize", "max", "/var", NULL,
};

/* As grow_var_if_disk_grew, for a btrfs /var (it grows online too). */
static void grow_btrfs_if_disk_grew(void)
{
	unsigned char sb[8];
	uint64_t device_bytes = 0;
	int fd = open(DATA_DISK, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	ssize_t n = pread_full(fd, sb, sizeof sb, BTRFS_SUPER_OFFSET + BTRFS_TOTAL_BYTES);
	int sized = ioctl(fd, BLKGETSIZE64, &device_bytes) == 0;
	close(fd);
	if (n < (ssize_t)sizeof sb || !sized || device_bytes < le64_at(sb) + (1ULL << 20))
		return;
	say("growing /var from %llu to %llu MiB", (unsigned long long)(le64_at(sb) >> 20),
	    (unsigned long long)(device_bytes >> 20));
	if (run(btrfs_resize_argv, 1) != 0)
		say("could not grow /var; it keeps its old size");
}

/* The host grows the disk file when the disk setting grows; the filesystem
 * follows here, online (ext4 grows while mounted), only when the device is
 * larger than the filesystem, so an ordinary boot pays one superblock read. */
static void grow_var_if_disk_grew(void)
{
	unsigned char sb[1024];
	uint64_t device_bytes = 0;
	int fd = open(DATA_DISK, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	ssize_t n = pread_full(fd, sb, sizeof sb, 1024);
	int sized = ioctl(fd, BLKGETSIZE64, &device_bytes) == 0;
	close(fd);
	if (n < (ssize_t)sizeof sb || !sized)
		return;
	uint64_t blocks = le32_at(sb + 4);
	if (le32_at(sb + 96) & 0x80) /* INCOMPAT_64BIT: s_blocks_count_hi */
		blocks |= le32_at(sb + 0x150) << 32;
	uint64_t block_size = 1024ULL << le32_at(sb + 24);
	if (device_bytes < blocks * block_size + (1ULL << 20))
		return;
	say("growing /var from %llu to %llu MiB",
	    (unsigned long long)(blocks * block_size >> 20),
	    (unsigned long long)(device_bytes >> 20));
	/* resize2fs must see that the disk is mounted, to grow it online rather
	 * than offline under the mounted filesystem's feet. */
	if (symlink("/proc/self/mounts", "/etc/mtab") < 0 && errno != EEXIST)
		say("cannot link /etc/mtab: %s", strerror(errno));
	if (run(resize_argv, 1) != 0)
		say("could not grow /var; it keeps its old size");
}

static void setup_data_disk(void)
{
	if (mkdir("/var", 0755) < 0 && errno != EEXIST)
		say("cannot create /var: %s", strerror(errno));

	if (!wait_for_path(DATA_DISK, DISK_WAIT_MS)) {
		say("warning: %s did not appear within %d s", DATA_DISK, DISK_WAIT_MS / 1000);
		mount_system_image();
		mount_var_tmpfs();
	} else {
		mount_system_image(); /* mkfs.btrfs and btrfs live there */
		switch (probe_disk(DATA_DISK)) {
		case DISK_EXT4:
			mount_var_disk("ext4");
			grow_var_if_disk_grew();
			break;
		case DISK_BTRFS:
			load_btrfs();
			mount_var_disk("btrfs");
			grow_btrfs_if_disk_grew();
			break;
		case DISK_BLANK: {
			int btrfs = wants_btrfs() && system_image_mounted;
			if (btrfs)
				load_btrfs();
			if (run(btrfs ? mkfs_btrfs_argv : mkfs_argv, 0) == 0) {
				say("formatted %s as %s (first boot)", DATA_DISK,
				    btrfs ? "btrfs" : "ext4");
				mount_var_disk(btrfs ? "btrfs" : "ext4");
			} else {
				mount_var_tmpfs();
			}
			break;
		}
		case DISK_FOREIGN:
			say("%s holds data that is neither ext4 nor btrfs; not formatting it "
			    "(reset to factory to recreate the data disk)", DATA_DISK);
			mount_var_tmpfs();
			break;
		case DISK_UNREADABLE:
			mount_var_tmpfs();
			break;
		}
	}
	mkdir_p("/var/lib/berth", 0755);
	mkdir_p("/var/log", 0755);
	mkdir_p("/var/lib/dropbear", 0700);
	/* /var/run/docker.sock is where every docker tool looks: keep it in /run. */
	if (symlink("/run", "/var/run") < 0 && errno != EEXIST)
		say("cannot link /var/run: %s", strerror(errno));
}

/* ---- step 5: SSH keys ------------------------------------------------- */

static char *const keygen_argv[] = {
	"/usr/bin/dropbearkey", "-t", "ed25519", "-f", HOST_KEY, NULL,
};

static void ensure_host_key(void)
{
	if (access(HOST_KEY, F_OK) == 0)
		return;
	if (run(keygen_argv, 1) < 0)
		say("no SSH host key: SSH logins will fail");
}

/* Finds NAME=VALUE among the space-separated words of the command line. */
static int find_param(const char *cmdline, const char *name,
		      const char **value, size_t *len)
{
	size_t name_len = strlen(name);
	const char *p = cmdline;

	while (*p != '\0') {
		while (is_space(*p))
			p++;
		const char *word = p;
		while (*p != '\0' && !is_space(*p))
			p++;
		size_t word_len = (size_t)(p - word);
		if (word_len > name_len && strncmp(word, name, name_len) == 0 &&
		    word[name_len] == '=') {
			*value = word + name_len + 1;
			*len = word_len - name_len - 1;
			return 1;
		}
	}
	return 0;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* e.g. ssh-ed25519, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com */
static int valid_key_type(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '@' && s[i] != '_')
			return 0;
	return 1;
}

/* Base64 alphabet with at most two '=' of padding at the end. This also
 * guarantees no spaces or newlines, so nothing can be smuggled into
 * authorized_keys as options or extra keys. */
static int valid_base64(const char *s, size_t len)
{
	size_t pad = 0;

	while (pad < len && s[len - 1 - pad] == '=')
		pad++;
	if (len == pad || pad > 2)
		return 0;
	for (size_t i = 0; i < len - pad; i++)
		if (!is_alnum(s[i]) && s[i] != '+' && s[i] != '/')
			return 0;
	return 1;
}

static void make_private_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		say("cannot create %s: %s", path, strerror(errno));
	/* dropbear refuses keys when these are group/world writable */
	if (chmod(path, 0700) < 0)
		say("cannot chmod %s: %s", path, strerror(errno));
}

static void write_authorized_key(const char *type, int type_len,
				 const char *b64, int b64_len)
{
	const char *path = "/root/.ssh/authorized_keys";
	char line[8300];
	int n = snprintf(line, sizeof line, "%.*s %.*s berth-host\n",
			 type_len, type, b64_len, b64);

	if (n < 0 || (size_t)n >= sizeof line) {
		say("ignoring %s=: key too long", AUTH_KEY_PARAM);
		return;
	}
	make_private_dir("/root");
	make_private_dir("/root/.ssh");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		say("cannot write %s: %s", path, strerror(errno));
		return;
	}
	if (fchmod(fd, 0600) < 0 || write(fd, line, (size_t)n) != n)
		say("cannot write %s: %s", path, strerror(errno));
	if (close(fd) < 0)
		say("cannot write %s: %s", path, strerror(errno));
}

/* berth.authorized_key=TYPE:BASE64 -> /root/.ssh/authorized_keys */
static void install_authorized_key(void)
{
	char cmdline[8192];
	const char *value, *colon;
	size_t len;

	if (read_text("/proc/cmdline", cmdline, sizeof cmdline) < 0) {
		say("cannot read /proc/cmdline: %s", strerror(errno));
		return;
	}
	if (!find_param(cmdline, AUTH_KEY_PARAM, &value, &len)) {
		say("no %s= on the kernel command line: SSH logins will be refused",
		    AUTH_KEY_PARAM);
		return;
	}
	colon = memchr(value, ':', len);
	if (colon == NULL || !valid_key_type(value, (size_t)(colon - value)) ||
	    !valid_base64(colon + 1, len - (size_t)(colon - value) - 1)) {
		say("ignoring malformed %s= (expected TYPE:BASE64)", AUTH_KEY_PARAM);
		return;
	}
	write_authorized_key(value, (int)(colon - value),
			     colon + 1, (int)(len - (size_t)(colon - value) - 1));
}

/* ---- step 4b: the container engine's configuration ------------------- */

static int is_storage_driver(const char *s, size_t len)
{
	static const char *const drivers[] = { "overlay2", "btrfs", "vfs" };

	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
		if (strlen(drivers[i]) == len && strncmp(drivers[i], s, len) == 0)
			return 1;
	return 0;
}

static void read_storage_driver(void)
{
	char cmdline[8192];
	const char *value;
	size_t len;

	if (read_text("/proc/cmdline", cmdline, sizeof cmdline) < 0 ||
	    !find_param(cmdline, STORAGE_DRIVER_PARAM, &value, &len))
		return;
	if (!is_storage_driver(value, len)) {
		say("unknown " STORAGE_DRIVER_PARAM " '%.*s'; using %s", (int)len, value,
		    storage_driver);
		return;
	}
	memcpy(storage_driver, value, len);
	storage_driver[len] = '\0';
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	write_all(fd, text, strlen(text));
	return close(fd);
}

#define DOCKER_BTRFS_HOME "/var/lib/docker/btrfs"
#define DOCKER_BTRFS_FILE "/var/lib/berth/docker-btrfs.img"

static char *const mkfs_btrfs_file_argv[] = {
	"/usr/sbin/mkfs.btrfs", "-q", "-f", "-L", "berth-docker", DOCKER_BTRFS_FILE, NULL,
};
static char *const mount_btrfs_file_argv[] = {
	"/bin/mount", "-t", "btrfs", "-o", "loop,noatime", DOCKER_BTRFS_FILE, DOCKER_BTRFS_HOME, NULL,
};

/* The btrfs driver needs its home (/var/lib/docker/btrfs) on btrfs. A data
 * disk formatted ext4 (the driver was changed after the first boot) gets a
 * sparse btrfs file, as large as the disk, mounted there: switching drivers
 * never reformats the disk, and volumes (/var/lib/docker/volumes) stay. */
static int prepare_btrfs_home(void)
{
	struct statvfs vfs;
	struct stat st;

	mkdir_p(DOCKER_BTRFS_HOME, 0711);
	/* dockerd bind-mounts its data root onto itself when it is not a mount
	 * point yet, non-recursively, which would hide the btrfs mount below
	 * it: make it one first. */
	if (mount("/var/lib/docker", "/var/lib/docker", NULL, MS_BIND | MS_REC, NULL) < 0)
		say("cannot bind /var/lib/docker: %s", strerror(errno));
	if (statvfs("/var", &vfs) < 0)
		return -1;
	if (stat(DOCKER_BTRFS_FILE, &st) < 0) {
		int fd = open(DOCKER_BTRFS_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)vfs.f_blocks * (off_t)vfs.f_frsize) < 0) {
			say("cannot create %s: %s", DOCKER_BTRFS_FILE, strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(DOCKER_BTRFS_FILE);
			return -1;
		}
		close(fd);
		if (run(mkfs_btrfs_file_argv, 1) != 0) {
			unlink(DOCKER_BTRFS_FILE);
			return -1;
		}
	}
	return run(mount_btrfs_file_argv, 1);
}

/* /etc/docker/daemon.json from the settings. The engine's state lives on
 * the data disk; its socket in /run.
 *
 * "iptables": false. dockerd's own rules cost about 80 iptables processes
 * at every start, 50-70 ms each under emulation: 5-6 s before its API
 * answers, against under 1 s without them. What they gave is covered
 * otherwise: published ports reach containers through docker-proxy (the
 * host forwards to it on the guest's loopback), and outbound NAT is the
 * one MASQUERADE rule below. Left out: the isolation rules between
 * user-defined networks. */
static void configure_engine(void)
{
	char json[512];

	mkdir_p("/etc/docker", 0755);
	snprintf(json, sizeof json,
		 "{\n"
		 "  \"data-root\": \"/var/lib/docker\",\n"
		 "  \"exec-root\": \"/run/docker\",\n"
		 "  \"storage-driver\": \"%s\",\n"
		 "  \"hosts\": [\"unix://" DOCKER_SOCKET "\"],\n"
		 "  \"containerd\": \"/run/containerd/containerd.sock\",\n"
		 "  \"shutdown-timeout\": 5,\n"
		 "  \"iptables\": false,\n"
		 "  \"ip-forward\": true,\n"
		 "  \"log-level\": \"warn\"\n"
		 "}\n",
		 storage_driver);
	if (write_text("/etc/docker/daemon.json", json) < 0)
		say("cannot write /etc/docker/daemon.json: %s", strerror(errno));
}

/* Containers reach the outside through the guest's uplink, as the guest. */
static char *const masquerade_argv[] = {
	"/usr/sbin/iptables", "-w", "-t", "nat", "-A", "POSTROUTING",
	"-o", "eth0", "-j", "MASQUERADE", NULL,
};

static int engine_available(void)
{
	return system_image_mounted && access("/usr/sbin/dockerd", X_OK) == 0;
}

static int var_is_btrfs(void)
{
	char buf[256];
	FILE *f = fopen("/proc/self/mounts", "re");
	int btrfs = 0;

	if (f == NULL)
		return 0;
	while (fgets(buf, sizeof buf, f) != NULL) {
		char dev[128], dir[128], type[32];
		if (sscanf(buf, "%127s %127s %31s", dev, dir, type) == 3 &&
		    strcmp(dir, "/var") == 0)
			btrfs = strcmp(type, "btrfs") == 0;
	}
	fclose(f);
	return btrfs;
}

static void setup_engine(void)
{
	if (!engine_available())
		return;
	if (wants_btrfs())
		load_btrfs();
	if (wants_btrfs() && !var_is_btrfs() && prepare_btrfs_home() != 0) {
		say("the btrfs storage driver needs btrfs under /var/lib/docker; using overlay2");
		strcpy(storage_driver, "overlay2");
	}
	configure_engine();
}

/* A daemon in its own session, stdin from /dev/null, output to `log` (a
 * file on /var, or /dev/null). */
static pid_t spawn_daemon(char *const argv[], char *const envp[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		setsid();
		int in = open("/dev/null", O_RDONLY);
		int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0640);
		if (in >= 0)
			dup2(in, STDIN_FILENO);
		if (out >= 0) {
			dup2(out, STDOUT_FILENO);
			dup2(out, STDERR_FILENO);
		}
		exec_child(argv, envp);
	}
	if (pid < 0) {
		say("cannot fork for %s: %s", argv[0], strerror(errno));
		return -1;
	}
	return pid;
}

/* ---- network: eth0 by DHCP, in the background ------------------------ */

#define NET_IFACE "eth0"

/* udhcpc keeps trying until the host's stack answers and renews the lease;
 * its script (in the image) sets the address, the default route, the MTU
 * and /etc/resolv.conf, and prints one line when the lease is bound. */
static char *const udhcpc_argv[] = {
	"/sbin/udhcpc", "-f", "-i", NET_IFACE,
	"-s", "/usr/share/udhcpc/default.script", "-O", "mtu", NULL,
};

/* The network card is optional: without eth0 this says nothing. udhcpc is
 * not waited for, so BERTH-READY never waits for DHCP. */
static void start_network(void)
{
	if (access("/sys/class/net/" NET_IFACE, F_OK) != 0)
		return;
	if (access(udhcpc_argv[0], X_OK) != 0) {
		say("%s has no address: cannot run %s: %s", NET_IFACE,
		    udhcpc_argv[0], strerror(errno));
		return;
	}
	spawn_daemon(udhcpc_argv, base_env, "/dev/null"); /* its chatter is dropped */
}

/* ---- steps 6, 7, 9: supervised services ----------------------------- */

#define STR_(x) #x
#define STR(x) STR_(x)

/* The one place the SSH-over-vsock command line is defined. */
static char *const listener_argv[] = {
	"/usr/libexec/berth/berth-vsockd", "--port", "22",
	"--ready-fd", STR(READY_FD), "--unix-relay", "--",
	"/usr/sbin/dropbear", "-i", "-s", "-r", HOST_KEY, NULL,
};

static char *const shell_argv[] = { "/bin/sh", "-l", NULL };

static char *const containerd_argv[] = { "/usr/bin/containerd", NULL };
static char *const dockerd_argv[] = {
	"/usr/sbin/dockerd", "--config-file", "/etc/docker/daemon.json", NULL,
};
static char *const docker_relay_argv[] = {
	"/usr/libexec/berth/berth-vsockd", "--port", DOCKER_VSOCK_PORT,
	"--to-unix", DOCKER_SOCKET, NULL,
};

struct service {
	const char *name;
	pid_t (*start)(void);   /* returns the pid, or -1 if it is not running */
	pid_t pid;              /* 0 when not running */
	long long started_ms;
	long long next_start_ms;
	long delay_ms;          /* current restart back-off */
	int log_exits;
	int disabled;           /* not started (the engine without a system image) */
};

enum ready_result { READY_OK, READY_CLOSED, READY_TIMEOUT, READY_ERROR };

/* Waits for the listener's readiness byte (or EOF if it gave up). */
static enum ready_result wait_ready(int fd, long timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char byte;

		if (left <= 0)
			return READY_TIMEOUT;
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return READY_ERROR;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, &byte, 1);
		if (n == 1)
			return READY_OK;
		if (n == 0)
			return READY_CLOSED;
		if (errno != EINTR && errno != EAGAIN)
			return READY_ERROR;
	}
}

/* Makes `from` available as exactly `to` across exec. */
static int move_fd(int from, int to)
{
	if (from == to) /* dup2 would be a no-op and leave FD_CLOEXEC set */
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

static pid_t start_listener(void)
{
	int pipefd[2], status;
	char why[96];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		say("vsock listener failed: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		setsid(); /* its own session: no console signals */
		if (move_fd(pipefd[1], READY_FD) < 0)
			_exit(127);
		exec_child(listener_argv, base_env);
	}
	close(pipefd[1]);
	if (pid < 0) {
		say("vsock listener failed: fork: %s", strerror(errno));
		close(pipefd[0]);
		return -1;
	}
	enum ready_result r = wait_ready(pipefd[0], READY_TIMEOUT_MS);
	int err = errno;
	close(pipefd[0]);

	switch (r) {
	case READY_OK:
		return pid;
	case READY_TIMEOUT: /* leave it running: it may still come up */
		say("vsock listener failed: not listening after %d s", READY_TIMEOUT_MS / 1000);
		return pid;
	case READY_ERROR:
		say("vsock listener failed: reading its ready pipe: %s", strerror(err));
		return pid;
	case READY_CLOSED:
		break;
	}
	/* EOF without the byte: it normally exited; say how. */
	if (reap_within(pid, 1000, &status)) {
		say("vsock listener failed: %s", describe_status(status, why, sizeof why));
		return -1;
	}
	say("vsock listener failed: it closed its ready pipe without listening");
	return pid;
}

/* Child side: make the serial line our controlling terminal so the shell
 * gets job control and ^C. */
static void attach_serial_console(void)
{
	int fd;

	setsid();
	fd = open_tty("/dev/ttyS0", 0);
	if (fd < 0)
		fd = open_tty("/dev/console", 0);
	if (fd < 0) {
		say("serial shell: cannot open /dev/ttyS0 or /dev/console: %s", strerror(errno));
		_exit(127);
	}
	/* Steal (arg 1) only if a stale session still claims the tty. */
	if (ioctl(fd, TIOCSCTTY, 0) < 0 && ioctl(fd, TIOCSCTTY, 1) < 0)
		say("serial shell: TIOCSCTTY: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
	if (chdir("/root") < 0 && chdir("/") < 0)
		say("serial shell: chdir: %s", strerror(errno));
}

static pid_t start_containerd(void)
{
	return spawn_daemon(containerd_argv, engine_env, "/var/log/containerd.log");
}

static pid_t start_dockerd(void)
{
	return spawn_daemon(dockerd_argv, engine_env, "/var/log/docker.log");
}

static pid_t start_docker_relay(void)
{
	return spawn_daemon(docker_relay_argv, base_env, "/var/log/docker-relay.log");
}

static pid_t start_shell(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		attach_serial_console();
		exec_child(shell_argv, shell_env);
	}
	if (pid < 0) {
		say("cannot fork the serial shell: %s", strerror(errno));
		return -1;
	}
	return pid;
}

static struct service listener = {
	.name = "vsock listener", .start = start_listener,
	.delay_ms = RESTART_MIN_MS, .log_exits = 1,
};
static struct service shell = {
	.name = "serial shell", .start = start_shell,
	.delay_ms = RESTART_MIN_MS, .log_exits = 0, /* exiting is normal use */
};
static struct service containerd = {
	.name = "containerd", .start = start_containerd,
	.delay_ms = RESTART_MIN_MS, .log_exits = 1, .disabled = 1,
};
static struct service dockerd = {
	.name = "dockerd", .start = start_dockerd,
	.delay_ms = RESTART_MIN_MS, .log_exits = 1, .disabled = 1,
};
static struct service docker_relay = {
	.name = "docker.sock relay", .start = start_docker_relay,
	.delay_ms = RESTART_MIN_MS, .log_exits = 1, .disabled = 1,
};
static struct service *const services[] = {
	&listener, &shell, &containerd, &dockerd, &docker_relay,
};
#define NSERVICES (sizeof services / sizeof services[0])

/* Schedules the next start: at most one start per delay, and the delay
 * doubles while the service keeps dying quickly (a missing binary or an
 * absent vsock device must not flood the console every second). */
static void service_stopped(struct service *s)
{
	long long now = now_ms();
	long long ran = now - s->started_ms;

	s->pid = 0;
	if (ran >= HEALTHY_RUN_MS)
		s->delay_ms = RESTART_MIN_MS;
	s->next_start_ms = s->started_ms + s->delay_ms;
	if (s->next_start_ms < now)
		s->next_start_ms = now;
	if (ran < HEALTHY_RUN_MS && s->delay_ms < RESTART_MAX_MS)
		s->delay_ms = s->delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->delay_ms * 2;
}

static void service_start(struct service *s)
{
	s->started_ms = now_ms();
	s->pid = s->start();
	if (s->pid <= 0)
		service_stopped(s);
}

static int engine_modules_done(pid_t pid);

static void child_exited(pid_t pid, int status)
{
	char why[96];

	if (engine_modules_done(pid))
		return;

	for (size_t i = 0; i < NSERVICES; i++) {
		struct service *s = services[i];

		if (s->pid != pid)
			continue;
		service_stopped(s);
		if (s->log_exits)
			say("%s %s; restarting it in %lld s", s->name,
			    describe_status(status, why, sizeof why),
			    (s->next_start_ms - now_ms() + 500) / 1000);
		return;
	}
	/* anything else is an orphan we adopted: just reaped */
}

static void reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		child_exited(pid, status);
}

static void start_due_services(void)
{
	for (size_t i = 0; i < NSERVICES; i++)
		if (!services[i]->disabled && services[i]->pid == 0 &&
		    now_ms() >= services[i]->next_start_ms)
			service_start(services[i]);
}

/* Milliseconds until the next scheduled restart, or -1 for none. */
static int next_timeout(void)
{
	long long best = -1, now = now_ms();

	for (size_t i = 0; i < NSERVICES; i++) {
		if (services[i]->pid != 0 || services[i]->disabled)
			continue;
		long long wait = services[i]->next_start_ms - now;
		if (wait < 0)
			wait = 0;
		if (best < 0 || wait < best)
			best = wait;
	}
	return best > INT_MAX ? INT_MAX : (int)best;
}

static pid_t engine_modules_pid; /* the background loader of the engine's modules */

/* Child: the engine's networking modules, then the NAT rule (exec'd, so
 * the child's exit means both are done). Runs beside the rest of the boot. */
static void load_engine_modules(void)
{
	load_module_list(MODULES_LIST "-engine");
	int out = open("/var/log/berth-engine-net.log", O_WRONLY | O_CREAT | O_APPEND, 0640);
	if (out >= 0) {
		dup2(out, STDOUT_FILENO);
		dup2(out, STDERR_FILENO);
	}
	exec_child(masquerade_argv, base_env);
}

/* Early, before SSH: the engine's start-up overlaps the rest of the boot.
 * containerd needs nothing more; dockerd creates its bridge as it starts,
 * so it waits for the module loader (engine_modules_done). */
static void start_engine(void)
{
	if (!engine_available())
		return;
	engine_modules_pid = fork();
	if (engine_modules_pid == 0) {
		setsid();
		load_engine_modules();
	}
	if (engine_modules_pid < 0) {
		say("cannot fork to load the engine's modules: %s", strerror(errno));
		load_module_list(MODULES_LIST "-engine");
		engine_modules_pid = 0;
	}
	containerd.disabled = 0;
	docker_relay.disabled = 0;
	service_start(&containerd);
	service_start(&docker_relay);
	if (engine_modules_pid == 0) {
		dockerd.disabled = 0;
		service_start(&dockerd);
	}
}

/* The loader exited: dockerd can start. */
static int engine_modules_done(pid_t pid)
{
	if (pid != engine_modules_pid || pid == 0)
		return 0;
	engine_modules_pid = 0;
	start_network();
	dockerd.disabled = 0;
	service_start(&dockerd);
	return 1;
}

/* ---- step 8 ------------------------------------------------------------ */

/* A single write() so the line cannot be torn by other console writers;
 * the leading newline puts it at the start of a line even if a shell
 * prompt or a partial kernel message came first. */
static void announce_ready(void)
{
	struct timespec ts;
	char line[64];

	clock_gettime(CLOCK_BOOTTIME, &ts);
	int n = snprintf(line, sizeof line, "\nBERTH-READY %lld.%03ld\n",
			 (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	write_all(STDOUT_FILENO, line, (size_t)n);
	tcdrain(STDOUT_FILENO);
}

/* ---- step 9: signals and the main loop ------------------------------ */

enum action { ACT_NONE, ACT_POWEROFF, ACT_REBOOT };

static void block_signals(void)
{
	sigemptyset(&handled_signals);
	sigaddset(&handled_signals, SIGCHLD);
	sigaddset(&handled_signals, SIGUSR1); /* busybox halt */
	sigaddset(&handled_signals, SIGUSR2); /* busybox poweroff */
	sigaddset(&handled_signals, SIGPWR);
	sigaddset(&handled_signals, SIGTERM); /* busybox reboot */
	sigaddset(&handled_signals, SIGINT);  /* Ctrl-Alt-Del */
	sigprocmask(SIG_BLOCK, &handled_signals, NULL);
}

/* Waits up to timeout_ms (-1: forever) for a signal; returns it or 0.
 * Without a signalfd, sigtimedwait does the same job synchronously. */
static int wait_signal(int sfd, int timeout_ms)
{
	if (sfd >= 0) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return 0;
		if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
			return 0;
		return (int)si.ssi_signo;
	}
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	int sig = sigtimedwait(&handled_signals, NULL, timeout_ms < 0 ? NULL : &ts);
	return sig < 0 ? 0 : sig;
}

static enum action action_for(int sig)
{
	switch (sig) {
	case SIGUSR1: /* halt: there is nobody to press a button, so power off */
	case SIGUSR2:
	case SIGPWR:
		return ACT_POWEROFF;
	case SIGTERM:
	case SIGINT:
		return ACT_REBOOT;
	default:
		return ACT_NONE;
	}
}

static enum action supervise(int sfd)
{
	for (;;) {
		reap_children();
		start_due_services();
		enum action act = action_for(wait_signal(sfd, next_timeout()));
		if (act != ACT_NONE)
			return act;
	}
}

/* ---- step 10: shutdown ------------------------------------------------ */

/* Reaps everything; returns 1 once no children remain, 0 on timeout. */
static int reap_all_within(long ms)
{
	long long deadline = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);

		if (r > 0)
			continue;
		if (r < 0 && errno == ECHILD)
			return 1;
		if (now_ms() >= deadline)
			return 0;
		sleep_ms(10);
	}
}

static void stop_all_processes(void)
{
	int status;

	/* dockerd first, alone: it stops the containers and unmounts their
	 * layers, which it cannot do once containerd has gone. */
	if (dockerd.pid > 0) {
		kill(dockerd.pid, SIGTERM);
		if (!reap_within(dockerd.pid, DOCKER_STOP_GRACE_MS, &status))
			say("dockerd did not stop within %d s", DOCKER_STOP_GRACE_MS / 1000);
	}
	/* An interactive ash ignores SIGTERM; a hangup is what ends it. */
	if (shell.pid > 0)
		kill(shell.pid, SIGHUP);
	kill(-1, SIGTERM);
	kill(-1, SIGCONT); /* stopped processes must run to act on SIGTERM */
	if (reap_all_within(TERM_GRACE_MS))
		return;
	kill(-1, SIGKILL);
	if (!reap_all_within(KILL_GRACE_MS))
		say("some processes did not exit");
}

/* Whatever is mounted below /var (container layers, the btrfs file) goes
 * first, deepest first, or /var stays busy. */
static void unmount_below_var(void)
{
	char *points[256];
	size_t n = 0;
	char line[512];
	FILE *f = fopen("/proc/self/mounts", "re");

	if (f == NULL)
		return;
	while (n < sizeof points / sizeof points[0] && fgets(line, sizeof line, f) != NULL) {
		char dev[256], dir[256];
		if (sscanf(line, "%255s %255s", dev, dir) == 2 && strncmp(dir, "/var/", 5) == 0)
			points[n++] = strdup(dir);
	}
	fclose(f);
	while (n > 0) {
		char *dir = points[--n];
		if (dir != NULL && umount2(dir, 0) < 0 && umount2(dir, MNT_DETACH) < 0)
			say("cannot unmount %s: %s", dir, strerror(errno));
		free(dir);
	}
}

static void unmount_var(void)
{
	unmount_below_var();
	for (int tries = 0; tries < 10; tries++) {
		if (umount2("/var", 0) == 0) {
			say("/var unmounted");
			return;
		}
		if (errno != EBUSY) {
			say("cannot unmount /var: %s", strerror(errno));
			return;
		}
		sleep_ms(100);
	}
	/* Still busy: make the filesystem consistent read-only first (not
	 * possible once detached), then detach it from the tree. */
	int ro = mount(NULL, "/var", NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0;
	int ro_err = errno;
	int detached = umount2("/var", MNT_DETACH) == 0;
	say("cannot unmount /var: %s; %s%s%s", strerror(EBUSY),
	    ro ? "remounted it read-only" : "read-only remount failed: ",
	    ro ? "" : strerror(ro_err), detached ? "; detached it" : "");
}

static void shut_down(enum action act)
{
	say("shutting down");
	stop_all_processes();
	sync();
	unmount_var();
	sync();
	reboot(act == ACT_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
	say("reboot() failed: %s", strerror(errno));
	for (;;)
		pause();
}

int main(void)
{
	block_signals();
	open_console(); /* may fail before /dev is mounted; retried below */

	/* 1 */
	mount_base_filesystems();
	open_console();
	if (reboot(RB_DISABLE_CAD) < 0) /* Ctrl-Alt-Del becomes SIGINT */
		say("cannot disable Ctrl-Alt-Del: %s", strerror(errno));
	int sfd = signalfd(-1, &handled_signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		say("signalfd: %s; using sigtimedwait", strerror(errno));

	load_modules();            /* 2 */
	set_hostname();            /* 3 */
	bring_up_loopback();
	read_storage_driver();
	setup_data_disk();         /* 4 (mounts the system image too) */
	setup_engine();
	start_engine();
	ensure_host_key();         /* 5 */
	install_authorized_key();
	/* eth0 by DHCP, in the background; with the engine, once its netfilter
	 * modules are in (engine_modules_done): no packet crosses the hooks
	 * while they are being set up. */
	if (engine_modules_pid == 0)
		start_network();
	service_start(&listener);  /* 6 */
	service_start(&shell);     /* 7 */
	announce_ready();          /* 8 */

	shut_down(supervise(sfd)); /* 9, 10: never returns */
	return 0;
}
