/*
 * berth-blkbench DEVICE MODE BLOCK_SIZE QUEUE_DEPTH SECONDS
 *
 * Reads or writes a block device with O_DIRECT through Linux native AIO (io_submit), keeping
 * QUEUE_DEPTH requests in flight, and prints one line:
 *   blkbench mode=<mode> bs=<bytes> qd=<n> ios=<count> bytes=<total> seconds=<s> iops=<x> mbps=<y>
 * MODE is seqread, seqwrite or randread. Static and dependency-free (raw syscalls), so it runs in
 * the factory image; the device benchmark runs it against our virtio-blk and QEMU's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_QD 256

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: berth-blkbench DEVICE seqread|seqwrite|randread BLOCK_SIZE QUEUE_DEPTH SECONDS\n");
		return 2;
	}
	const char *mode = argv[2];
	long bs = atol(argv[3]), qd = atol(argv[4]);
	double seconds = atof(argv[5]);
	int write_mode = strcmp(mode, "seqwrite") == 0;
	int random_mode = strcmp(mode, "randread") == 0;
	if ((!write_mode && !random_mode && strcmp(mode, "seqread") != 0) || bs < 512 || bs % 512 ||
	    qd < 1 || qd > MAX_QD || seconds <= 0) {
		fprintf(stderr, "berth-blkbench: bad arguments\n");
		return 2;
	}
	int fd = open(argv[1], (write_mode ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "berth-blkbench: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint64_t size;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0 || size < (uint64_t)bs) {
		fprintf(stderr, "berth-blkbench: cannot size %s\n", argv[1]);
		return 1;
	}
	uint64_t blocks = size / (uint64_t)bs;
	char *buffers;
	if (posix_memalign((void **)&buffers, 4096, (size_t)(bs * qd))) return 1;
	memset(buffers, 0xa5, (size_t)(bs * qd));

	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, qd, &ctx) < 0) {
		fprintf(stderr, "berth-blkbench: io_setup: %s\n", strerror(errno));
		return 1;
	}
	struct iocb iocbs[MAX_QD];
	struct iocb *ptrs[1];
	struct io_event events[MAX_QD];
	uint64_t next_block = 0, ios = 0;
	long inflight = 0;
	double start = now(), deadline = start + seconds;

	for (;;) {
		int stop = now() >= deadline;
		while (!stop && inflight < qd) {
			/* Slot numbers: iocbs[i] stays with buffer i; find a free slot by its data field. */
			long slot = -1;
			for (long i = 0; i < qd; i++)
				if (iocbs[i].aio_data == 0) { slot = i; break; }
			if (slot < 0) break;
			uint64_t block = random_mode ? next_random() % blocks : next_block++ % blocks;
			struct iocb *cb = &iocbs[slot];
			memset(cb, 0, sizeof *cb);
			cb->aio_data = (uint64_t)slot + 1;
			cb->aio_fildes = (uint32_t)fd;
			cb->aio_lio_opcode = write_mode ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
			cb->aio_buf = (uint64_t)(uintptr_t)(buffers + slot * bs);
			cb->aio_nbytes = (uint64_t)bs;
			cb->aio_offset = (int64_t)(block * (uint64_t)bs);
			ptrs[0] = cb;
			if (syscall(SYS_io_submit, ctx, 1, ptrs) != 1) {
				fprintf(stderr, "berth-blkbench: io_submit: %s\n", strerror(errno));
				return 1;
			}
			inflight++;
		}
		if (inflight == 0) break;
		long n = syscall(SYS_io_getevents, ctx, 1, inflight, events, NULL);
		if (n < 0) {
			if (errno == EINTR) continue;
			fprintf(stderr, "berth-blkbench: io_getevents: %s\n", strerror(errno));
			return 1;
		}
		for (long i = 0; i < n; i++) {
			if ((long)events[i].res != bs) {
				fprintf(stderr, "berth-blkbench: I/O returned %lld\n", (long long)events[i].res);
				return 1;
			}
			iocbs[events[i].data - 1].aio_data = 0;
			inflight--;
			ios++;
		}
	}
	double elapsed = now() - start;
	printf("blkbench mode=%s bs=%ld qd=%ld ios=%llu bytes=%llu seconds=%.3f iops=%.0f mbps=%.1f\n", mode, bs,
	       qd, (unsigned long long)ios, (unsigned long long)(ios * (uint64_t)bs), elapsed, (double)ios / elapsed,
	       (double)(ios * (uint64_t)bs) / elapsed / 1e6);
	return 0;
}
