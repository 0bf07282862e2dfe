/*
 * berth-vsockd: a tiny inetd-style listener for AF_VSOCK.
 *
 *   berth-vsockd --port N [--ready-fd FD] -- CMD [ARGS...]
 *   berth-vsockd --port N [--ready-fd FD] --to-unix PATH
 *
 * Listens on vsock port N (any local CID). Every accepted connection is
 * handed to a new CMD process as its stdin, stdout and stderr, the way
 * inetd does it (dropbear -i expects exactly that).
 *
 * With --to-unix, every connection is instead relayed to a new connection
 * to the Unix socket PATH (the docker engine's API socket), with half-close
 * passed through both ways (docker's attach and build streams need it).
 *
 * If --ready-fd is given, one byte is written to FD once the socket is
 * listening and FD is closed, so the parent (init) can tell "listening"
 * (a byte) from "failed" (EOF without a byte).
 *
 * Exit status: 2 for bad arguments, 1 when the socket cannot be set up
 * (or accept() fails in a way that retrying cannot fix).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#define PROG "berth-vsockd"
#define BACKLOG 64

struct options {
	unsigned int port;
	int ready_fd;   /* -1 when not given */
	int unix_relay; /* give CMD an AF_UNIX socket and relay it to the vsock connection */
	char **cmd;     /* NULL-terminated, at least one element */
	const char *to_unix; /* relay every connection to this Unix socket instead of CMD */
};

static void usage(FILE *to)
{
	fprintf(to, "usage: " PROG " --port N [--ready-fd FD] [--unix-relay] -- CMD [ARGS...]\n"
		    "       " PROG " --port N [--ready-fd FD] --to-unix PATH\n");
}

/* Strict decimal parse: digits only (strtoul alone would accept "-1", " 7", "7x"). */
static int parse_number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Returns 0 on success, 1 for --help, -1 for bad arguments (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
	unsigned long v;
	int have_port = 0;

	o->port = 0;
	o->ready_fd = -1;
	o->unix_relay = 0;
	o->cmd = NULL;
	o->to_unix = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			o->cmd = &argv[i + 1];
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return 1;
		if (strcmp(a, "--unix-relay") == 0) {
			o->unix_relay = 1;
			continue;
		}
		if (strcmp(a, "--to-unix") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] != '/' ||
			    strlen(argv[i + 1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
				fprintf(stderr, PROG ": --to-unix needs an absolute socket path\n");
				return -1;
			}
			o->to_unix = argv[++i];
			continue;
		}
		if (strcmp(a, "--port") != 0 && strcmp(a, "--ready-fd") != 0) {
			fprintf(stderr, PROG ": unknown argument '%s'\n", a);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, PROG ": %s needs a value\n", a);
			return -1;
		}
		if (strcmp(a, "--port") == 0) {
			/* VMADDR_PORT_ANY (0xffffffff) means "pick one": not a fixed port. */
			if (parse_number(argv[++i], VMADDR_PORT_ANY - 1, &v) < 0 || v == 0) {
				fprintf(stderr, PROG ": bad port '%s'\n", argv[i]);
				return -1;
			}
			o->port = (unsigned int)v;
			have_port = 1;
		} else {
			if (parse_number(argv[++i], 0x7fffffff, &v) < 0) {
				fprintf(stderr, PROG ": bad descriptor '%s'\n", argv[i]);
				return -1;
			}
			o->ready_fd = (int)v;
		}
	}
	if (!have_port || (o->to_unix == NULL && (o->cmd == NULL || o->cmd[0] == NULL))) {
		fprintf(stderr, PROG ": --port and a command after -- (or --to-unix) are required\n");
		return -1;
	}
	if (o->to_unix != NULL && o->cmd != NULL) {
		fprintf(stderr, PROG ": --to-unix and a command after -- exclude each other\n");
		return -1;
	}
	return 0;
}

/* accept() hands out the lowest free descriptor; if 0-2 were closed, a
 * connection could land there and dup2() onto itself would go wrong. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int null = open("/dev/null", O_RDWR);
		if (null >= 0 && null != fd) {
			dup2(null, fd);
			close(null);
		}
	}
}

/* Returns the listening socket, or -1 after printing why. */
static int open_listener(unsigned int port)
{
	struct sockaddr_vm addr;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(stderr, PROG ": cannot create a vsock socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&addr, 0, sizeof addr);
	addr.svm_family = AF_VSOCK;
	addr.svm_cid = VMADDR_CID_ANY;
	addr.svm_port = port;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		fprintf(stderr, PROG ": cannot bind vsock port %u: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, BACKLOG) < 0) {
		fprintf(stderr, PROG ": cannot listen on vsock port %u: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Tell the parent we are listening. If it stopped waiting and closed its
 * end, the write would raise SIGPIPE and kill us: ignore SIGPIPE just for
 * this write (a signal raised while ignored is discarded), then restore
 * the default so CMD does not inherit an ignored SIGPIPE. */
static void signal_ready(int fd)
{
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	do
		n = write(fd, "R", 1);
	while (n < 0 && errno == EINTR);
	signal(SIGPIPE, SIG_DFL);
	close(fd);
}

static void on_sigchld(int sig)
{
	(void)sig; /* Only here so SA_NOCLDWAIT applies; children reap themselves. */
}

/* Children are reaped by the kernel (SA_NOCLDWAIT). A real handler rather
 * than SIG_IGN because handlers are reset by exec, so CMD starts with a
 * normal SIGCHLD disposition. */
static void auto_reap_children(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_NOCLDWAIT | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
}

/* Child side of a connection: never returns. */
static void run_command(int conn, char **cmd)
{
	/* Keep a private copy of our stderr (the console) so an exec failure
	 * is reported there instead of into the client's byte stream. */
	int log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);

	if (dup2(conn, 0) < 0 || dup2(conn, 1) < 0 || dup2(conn, 2) < 0)
		_exit(1);
	close(conn);
	/* Nothing else we hold may reach CMD. Marking close-on-exec rather
	 * than closing keeps log_fd usable until exec succeeds. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != log_fd)
				close(fd);
	}
	execvp(cmd[0], cmd);
	if (log_fd >= 0)
		dprintf(log_fd, PROG ": cannot run %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
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

/*
 * Copies bytes both ways between the vsock connection and CMD's socket until CMD's side ends.
 * Some programs look up their peer's address (dropbear in inetd mode calls getnameinfo, which
 * glibc cannot do for AF_VSOCK); they get an AF_UNIX socket instead, and this relay in between.
 */
static void relay(int conn, int local, int half_close_both)
{
	static char buf[65536];
	struct pollfd fds[2] = { { .fd = conn, .events = POLLIN }, { .fd = local, .events = POLLIN } };

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int to = i == 0 ? local : conn;
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0 && write_all(to, buf, (size_t)n) == 0)
				continue;
			if (i == 1 && !half_close_both)
				return; /* CMD finished (or failed): the session is over */
			shutdown(to, SHUT_WR); /* this side finished: the other sees EOF */
			fds[i].fd = -1;
			if (fds[0].fd < 0 && fds[1].fd < 0)
				return;
		}
	}
}

/* --to-unix: one new connection to PATH per vsock connection. */
static void run_to_unix(int conn, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		/* The client just sees the connection close; the engine may be starting. */
		fprintf(stderr, PROG ": cannot connect to %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	relay(conn, fd, 1);
	_exit(0);
}

static void run_relayed(int conn, char **cmd)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, PROG ": socketpair: %s\n", strerror(errno));
		_exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, PROG ": cannot fork: %s\n", strerror(errno));
		_exit(1);
	}
	if (pid == 0) {
		close(conn);
		close(sv[0]);
		run_command(sv[1], cmd);
	}
	close(sv[1]);
	relay(conn, sv[0], 0);
	_exit(0);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Errors that mean the listening socket itself is unusable. */
static int accept_error_is_fatal(int err)
{
	return err == EBADF || err == EINVAL || err == ENOTSOCK ||
	       err == EOPNOTSUPP || err == EFAULT;
}

static void accept_loop(int lfd, const struct options *o)
{
	for (;;) {
		int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (conn < 0) {
			int err = errno;

			if (err == EINTR || err == ECONNABORTED)
				continue;
			fprintf(stderr, PROG ": accept failed: %s\n", strerror(err));
			if (accept_error_is_fatal(err))
				exit(1);
			sleep_ms(100); /* e.g. EMFILE: do not spin */
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			if (o->to_unix)
				run_to_unix(conn, o->to_unix);
			if (o->unix_relay)
				run_relayed(conn, o->cmd);
			run_command(conn, o->cmd);
		}
		if (pid < 0)
			fprintf(stderr, PROG ": cannot fork: %s\n", strerror(errno));
		close(conn); /* the child owns the connection now */
	}
}

int main(int argc, char **argv)
{
	struct options o;
	int lfd;

	switch (parse_args(argc, argv, &o)) {
	case 1:
		usage(stdout);
		return 0;
	case -1:
		usage(stderr);
		return 2;
	}
	/* Make sure the ready descriptor is real and never leaks into CMD. */
	if (o.ready_fd >= 0 && fcntl(o.ready_fd, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, PROG ": --ready-fd %d: %s\n", o.ready_fd, strerror(errno));
		usage(stderr);
		return 2;
	}
	ensure_std_fds();

	lfd = open_listener(o.port);
	if (lfd < 0)
		return 1; /* the ready fd closes on exit: the parent sees EOF */
	if (o.ready_fd >= 0)
		signal_ready(o.ready_fd);

	auto_reap_children();
	accept_loop(lfd, &o);
	return 1;
}
