/*
 * berth-vsock-connect CID PORT
 *
 * Connects to a vsock port (CID 2 is the host) and copies stdin to the connection and the
 * connection to stdout until both directions end: the guest-side twin of `socat - VSOCK:2:PORT`,
 * used by the device tests and for guest-initiated connections. When stdin ends, the write side
 * is shut down (so the peer sees EOF) and the copy from the connection goes on until it ends.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int parse_u32(const char *s, unsigned int *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v > UINT_MAX)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int cid, port;
	if (argc != 3 || parse_u32(argv[1], &cid) || parse_u32(argv[2], &port)) {
		fprintf(stderr, "usage: berth-vsock-connect CID PORT\n");
		return 2;
	}
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		fprintf(stderr, "berth-vsock-connect: socket: %s\n", strerror(errno));
		return 1;
	}
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
		fprintf(stderr, "berth-vsock-connect: connect %u:%u: %s\n", cid, port, strerror(errno));
		return 1;
	}
	static char buf[65536];
	struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	int in_open = 1, sock_open = 1;
	while (sock_open) {
		fds[0].fd = in_open ? 0 : -1;
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (in_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n > 0) {
				if (write_all(s, buf, (size_t)n))
					return 1;
			} else if (n == 0 || errno != EINTR) {
				in_open = 0;
				shutdown(s, SHUT_WR);
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s, buf, sizeof buf);
			if (n > 0) {
				if (write_all(1, buf, (size_t)n))
					return 1;
			} else if (n == 0 || errno != EINTR) {
				sock_open = 0;
			}
		}
	}
	return 0;
}
