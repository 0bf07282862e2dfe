/*
 * berth-vsock-connect CID PORT
 *
 * Connects to a vsock port (CID 2 is the host) and copies stdin to the connection and the
 * connection to stdout until both directions end: the guest-side twin of `socat - VSOCK:2:PORT`,
 * used by the device tests and for guest-initiated connections. When stdin ends, the write side
 * is shut down (so the peer sees EOF) and the copy from the connection goes on until it ends.
 */
#include <errno.h>
#include <fcntl.h>
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
	/*
	 * Both directions run independently: the socket is non-blocking and stdin is read only when
	 * the previous chunk has gone out. A blocking write would stop us reading the connection,
	 * and a peer that echoes (waiting for us to read before it reads more) would deadlock.
	 */
	if (fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0)
		return 1;
	static char out[65536], in[65536];
	size_t out_len = 0, out_off = 0;
	int in_open = 1, sock_open = 1;
	while (sock_open) {
		struct pollfd fds[2] = {
			{ .fd = (in_open && out_len == 0) ? 0 : -1, .events = POLLIN },
			{ .fd = s, .events = POLLIN | (out_len ? POLLOUT : 0) },
		};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(0, out, sizeof out);
			if (n > 0) {
				out_len = (size_t)n;
				out_off = 0;
			} else if (n == 0 || errno != EINTR) {
				in_open = 0;
				shutdown(s, SHUT_WR);
			}
		}
		if (out_len && (fds[1].revents & (POLLOUT | POLLERR))) {
			ssize_t n = write(s, out + out_off, out_len);
			if (n > 0) {
				out_off += (size_t)n;
				out_len -= (size_t)n;
				if (out_len == 0 && !in_open)
					shutdown(s, SHUT_WR);
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "berth-vsock-connect: write: %s\n", strerror(errno));
				return 1;
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s, in, sizeof in);
			if (n > 0) {
				if (write_all(1, in, (size_t)n))
					return 1;
			} else if (n == 0) {
				sock_open = 0;
			} else if (errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "berth-vsock-connect: read: %s\n", strerror(errno));
				return 1;
			}
		}
	}
	return 0;
}
