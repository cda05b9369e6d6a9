/**
 * @file udpbatch.c  UDP listeners read a batch of datagrams per wake-up (recvmmsg)
 *
 * libre 1.1.0 reads a UDP socket with one recvfrom(2) per poll wake-up,
 * into an 8 KB mbuf allocated for each datagram: at a few thousand calls
 * a second that is one epoll_wait and one recvfrom per datagram, and a
 * socket that fills during a burst is drained one wake-up per datagram.
 * Here each wake-up of a SIP UDP listener reads up to BATCH datagrams
 * with one recvmmsg(2) into buffers that are reused, and then hands them
 * to libre one by one, in order, through libre's own read path: its
 * helpers (udp_register_helper) and then the SIP stack see every
 * datagram exactly as before, in the same order.
 *
 * libre opens the sockets inside sip_transp_add() and keeps its read
 * handler to itself, so this file interposes on three symbols (as
 * sipmend.c does for libre's decoders; libre.so calls them through its
 * PLT, `objdump -R`):
 *  - fd_listen(): while listener.c adds a UDP listener (udpbatch_set()),
 *    the read handler libre registers for a datagram socket is kept, and
 *    read_handler() below is registered in its place; its argument is
 *    libre's struct udp_sock;
 *  - fd_close(): forgets the socket (libre closes it, or a handler does
 *    while a batch is delivered: the rest of the batch is dropped, as the
 *    kernel would with the socket);
 *  - recvfrom(): while libre's handler reads a batched socket, it gets the
 *    next datagram of the batch instead of a system call. Every other
 *    recvfrom of the process goes to the kernel.
 * Before each datagram is handed over, udp_rxsz_set() (public API) sizes
 * libre's receive mbuf to the datagram, so libre allocates its length
 * instead of 8 KB and its mbuf_resize() keeps it: the SIP stack gets the
 * same mbuf as before (it may hold it for a transaction's life, so the
 * bytes are copied out of the reused batch buffers). Datagrams longer
 * than RXSZ are truncated as libre truncates them.
 *
 * A read error is handed to libre's handler as its recvfrom's error, so
 * libre reports it as it would. One batch per wake-up: libre's poll is
 * level-triggered, so a socket with more waiting wakes the loop again
 * at once, and timers and other sockets get their turn in between.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <re.h>
#include "udpbatch.h"

enum {
	BATCH = 32,     /* datagrams per recvmmsg */
	RXSZ  = 8192,   /* libre's UDP_RXSZ_DEFAULT: its truncation, kept */
};

typedef int (fd_listen_h)(int fd, int flags, fd_h *fh, void *arg);
typedef void (fd_close_h)(int fd);

/** A UDP listener's socket, read here for libre */
struct sock {
	struct le le;
	int fd;
	fd_h *fh;       /* libre's read handler; NULL once closed */
	void *arg;      /* its struct udp_sock */
};

static struct {
	fd_listen_h *listen;
	fd_close_h *close;
	struct list socks;
	bool armed;                /* a UDP listener is being added */
	bool busy;                 /* a batch is being delivered */
	const struct sock *cur;    /* whose datagram libre is reading */
	unsigned next;             /* that datagram, in the batch */
	int err;                   /* or the read error to hand libre */
	uint64_t reads;
	uint64_t datagrams;
	struct mmsghdr hdr[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage name[BATCH];
	uint8_t buf[BATCH][RXSZ];
} ub;


static void sock_destructor(void *arg)
{
	struct sock *s = arg;

	list_unlink(&s->le);
}


/** Each header points at its buffer and address for good (once) */
static void batch_init(void)
{
	for (unsigned i = 0; i < BATCH; i++) {
		struct msghdr *mh = &ub.hdr[i].msg_hdr;

		ub.iov[i].iov_base = ub.buf[i];
		ub.iov[i].iov_len = RXSZ;
		mh->msg_name = &ub.name[i];
		mh->msg_iov = &ub.iov[i];
		mh->msg_iovlen = 1;
	}
}


/** libre's own fd_listen and fd_close (once) */
static int init(void)
{
	if (ub.close)
		return 0;

	ub.listen = (fd_listen_h *)dlsym(RTLD_NEXT, "fd_listen");
	if (ub.listen)
		ub.close = (fd_close_h *)dlsym(RTLD_NEXT, "fd_close");
	if (!ub.close)
		return ENOSYS;

	batch_init();
	return 0;
}


static struct sock *sock_find(int fd)
{
	struct le *le;

	LIST_FOREACH(&ub.socks, le) {
		struct sock *s = le->data;

		if (s->fd == fd)
			return s;
	}

	return NULL;
}


static void sock_forget(struct sock *s)
{
	if (!s)
		return;

	s->fh = NULL;
	list_unlink(&s->le);
	mem_deref(s);
}


static bool is_dgram(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) &&
		type == SOCK_DGRAM;
}


/** One recvmmsg into the batch buffers; the datagrams read, or -1 */
static int batch_read(int fd)
{
	/* the kernel wrote the address lengths of the last batch there */
	for (unsigned i = 0; i < BATCH; i++)
		ub.hdr[i].msg_hdr.msg_namelen = sizeof(ub.name[i]);

	return recvmmsg(fd, ub.hdr, BATCH, MSG_DONTWAIT, NULL);
}


/* libre's handler reads what ub.next / ub.err say, through recvfrom() */
static void hand_over(struct sock *s, int flags, size_t rxsz)
{
	udp_rxsz_set(s->arg, rxsz);
	ub.cur = s;
	s->fh(flags, s->arg);
	ub.cur = NULL;
}


static void read_handler(int flags, void *arg)
{
	struct sock *s = arg;
	int n;

	/* a handler cannot poll, but if it did, the buffers are in use */
	if (ub.busy) {
		s->fh(flags, s->arg);
		return;
	}

	n = batch_read(s->fd);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;

	ub.busy = true;
	mem_ref(s);

	if (n < 0) {
		ub.err = errno;
		hand_over(s, flags, RXSZ);
		ub.err = 0;
	}
	else {
		++ub.reads;
		ub.datagrams += (unsigned)n;
	}

	for (int i = 0; i < n && s->fh; i++) {
		ub.next = (unsigned)i;
		/* libre cannot allocate an empty mbuf */
		hand_over(s, flags, ub.hdr[i].msg_len ? ub.hdr[i].msg_len : 1);
	}

	if (s->fh)
		udp_rxsz_set(s->arg, RXSZ);

	mem_deref(s);
	ub.busy = false;
}


int fd_listen(int fd, int flags, fd_h *fh, void *arg)
{
	struct sock *s;
	int err;

	if (init())
		return ENOSYS;

	s = sock_find(fd);
	if (!s && ub.armed && flags == FD_READ && fh && is_dgram(fd)) {
		s = mem_zalloc(sizeof(*s), sock_destructor);
		if (!s)
			return ENOMEM;

		s->fd = fd;
		list_append(&ub.socks, &s->le, s);
	}

	if (!s)
		return ub.listen(fd, flags, fh, arg);

	/* anything but reading the socket is libre's own again */
	if (flags != FD_READ || !fh) {
		sock_forget(s);
		return ub.listen(fd, flags, fh, arg);
	}

	s->fh = fh;
	s->arg = arg;
	err = ub.listen(fd, flags, read_handler, s);
	if (err)
		sock_forget(s);

	return err;
}


void fd_close(int fd)
{
	if (init())
		return;

	sock_forget(sock_find(fd));
	ub.close(fd);
}


/* glibc's prototype: with _GNU_SOURCE the address is a transparent union */
ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
		 __SOCKADDR_ARG src, socklen_t *srclen)
{
	struct sockaddr *sa = src.__sockaddr__;
	const struct msghdr *mh;
	size_t n;

	if (!ub.cur || ub.cur->fd != fd)
		return syscall(SYS_recvfrom, fd, buf, len, flags, sa, srclen);

	/* one datagram (or the error) per hand-over */
	ub.cur = NULL;
	if (ub.err) {
		errno = ub.err;
		return -1;
	}

	mh = &ub.hdr[ub.next].msg_hdr;
	n = min(ub.hdr[ub.next].msg_len, len);
	memcpy(buf, mh->msg_iov->iov_base, n);
	if (sa && srclen) {
		memcpy(sa, mh->msg_name, min(*srclen, mh->msg_namelen));
		*srclen = mh->msg_namelen;
	}

	return (ssize_t)n;
}


/**
 * While on, the datagram sockets libre starts reading are read in
 * batches: on around sip_transp_add() of a UDP listener, off right after.
 */
void udpbatch_set(bool on)
{
	ub.armed = on;
}


/** recvmmsg calls that read something, and the datagrams they read */
void udpbatch_stats(uint64_t *readsp, uint64_t *datagramsp)
{
	if (readsp)
		*readsp = ub.reads;
	if (datagramsp)
		*datagramsp = ub.datagrams;
}
