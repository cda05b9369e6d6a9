/**
 * @file udpbuf.c  The kernel receive buffers of the UDP listeners: sized, and their drops counted
 *
 * One thread drains each UDP socket. Through a burst (a fail-over brings
 * thousands of re-INVITE answers at once, a trunk recovers and retries)
 * datagrams wait in the kernel's receive buffer, and what does not fit is
 * dropped before the engine ever sees it: each drop costs a
 * retransmission at best, a call at worst. So the buffer is sized from
 * `udp_rcvbuf` at start, and the kernel's own drop counter of each socket
 * is exported as a metric.
 *
 * libre opens the sockets inside sip_transp_add and hands out no handle,
 * so the listener's socket is found among the process's descriptors by
 * its bound address. The kernel caps SO_RCVBUF at net.core.rmem_max;
 * SO_RCVBUFFORCE passes the cap only with CAP_NET_ADMIN, so a smaller
 * result is logged with the sysctl to raise. The drop counter is the last
 * column of /proc/net/udp (udp6), found by the socket's inode; it is read
 * at each scrape, never on the SIP path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <re.h>
#include "log.h"
#include "metrics.h"
#include "listener.h"
#include "udpbuf.h"
#include "udpbatch.h"

enum {
	LINE_SIZE = 512,
	NAME_SIZE = 64,
};

/** One family of samples being printed, one listener at a time */
struct udpbuf_print {
	struct re_printf *pf;
	int err;
	bool drops;     /* drops, else buffer sizes */
};


static bool fd_bound_to(int fd, const struct sa *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type;
	socklen_t tlen = sizeof(type);
	struct sa sa;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) ||
	    type != SOCK_DGRAM)
		return false;
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return false;
	if (sa_set_sa(&sa, (struct sockaddr *)&ss))
		return false;

	return sa_cmp(&sa, addr, SA_ALL);
}


/** The descriptor libre opened for a UDP listener, by its address */
static int fd_find(const struct sa *addr, int *fdp)
{
	struct dirent *de;
	int err = ENOENT;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return errno;

	while (err && (de = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || fd == dirfd(d))
			continue;
		if (fd_bound_to((int)fd, addr)) {
			*fdp = (int)fd;
			err = 0;
		}
	}

	closedir(d);
	return err;
}


static int rcvbuf_set(int fd, const struct sa *addr, int size, int *gotp)
{
	int got = 0;
	socklen_t len = sizeof(got);

	/* FORCE needs CAP_NET_ADMIN; without it the capped request remains */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size))
	    && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)))
		return errno;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len))
		return errno;

	/* the kernel reports twice what it counts against the request */
	*gotp = got;
	if (got / 2 < size)
		log_warn("listen", "udp:%J: receive buffer %d bytes, asked %d:"
			 " raise sysctl net.core.rmem_max", addr, got / 2,
			 size);
	else
		log_debug("listen", "udp:%J: receive buffer %d bytes",
			  addr, got / 2);
	return 0;
}


/* One socket of a listener: found, its inode noted, its buffer sized */
static int sock_setup(const struct sa *addr, int size, int *fdp,
		      unsigned long *inodep, int *rcvbufp)
{
	struct stat st;
	int err;

	err = fd_find(addr, fdp);
	if (err) {
		log_warn("listen", "udp:%J: socket not found (%m):"
			 " no buffer sizing, no drop count", addr, err);
		return 0;
	}

	if (!fstat(*fdp, &st))
		*inodep = st.st_ino;

	return size ? rcvbuf_set(*fdp, addr, size, rcvbufp) : 0;
}


/**
 * Size a UDP listener's receive buffer; size 0 leaves the kernel's. A
 * worker's own socket (workers N) gets the same size: the answers and
 * in-dialog requests of its calls arrive there.
 */
int udpbuf_setup(struct listener *l, int size)
{
	int fd, got = 0;
	int err;

	l->fd = -1;
	err = sock_setup(&l->addr, size, &l->fd, &l->inode, &l->rcvbuf);
	if (err || sa_cmp(&l->own, &l->addr, SA_ALL))
		return err;

	return sock_setup(&l->own, size, &fd, &l->own_inode, &got);
}


/** The kernel's drop count of the socket with this inode, from one table */
static int drops_in(const char *path, unsigned long inode, uint64_t *dropsp)
{
	char line[LINE_SIZE];
	int err = ENOENT;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return errno;

	while (err && fgets(line, sizeof(line), f)) {
		unsigned long ino;
		unsigned long long drops;

		/* sl local rem st tx:rx tr:when retr uid timeout inode ref
		 * pointer drops */
		if (2 != sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s"
				" %lu %*s %*s %llu", &ino, &drops))
			continue;
		if (ino == inode) {
			*dropsp = drops;
			err = 0;
		}
	}

	fclose(f);
	return err;
}


/* A worker's drops are those of the shared socket and of its own */
static int drops_read(const struct listener *l, uint64_t *dropsp)
{
	const char *path = sa_af(&l->addr) == AF_INET6 ? "/proc/net/udp6" :
		"/proc/net/udp";
	uint64_t own = 0;
	int err;

	err = l->inode ? drops_in(path, l->inode, dropsp) : ENOENT;
	if (!err && l->own_inode && !drops_in(path, l->own_inode, &own))
		*dropsp += own;

	return err;
}


static bool sample_print(const struct listener *l, void *arg)
{
	struct udpbuf_print *p = arg;
	char name[NAME_SIZE];
	const char *lv[] = {"listener", name, NULL};
	uint64_t drops = 0;

	if (l->tp != SIP_TRANSP_UDP)
		return false;

	(void)re_snprintf(name, sizeof(name), "udp:%J", &l->addr);
	if (p->drops && !drops_read(l, &drops))
		p->err = re_hprintf(p->pf, "rehome_sip_udp_drops_total%H"
				    " %llu\n", metrics_labels_print, lv,
				    (unsigned long long)drops);
	else if (!p->drops && l->rcvbuf)
		p->err = re_hprintf(p->pf, "rehome_sip_udp_rcvbuf_bytes%H"
				    " %d\n", metrics_labels_print, lv,
				    l->rcvbuf / 2);

	return p->err != 0;
}


/* The reads of the UDP listeners (udpbatch.c), all listeners together */
static int reads_print(struct re_printf *pf)
{
	uint64_t reads, datagrams;
	int err;

	udpbatch_stats(&reads, &datagrams);
	err = metrics_family_print(pf, "rehome_sip_udp_reads_total",
				   "counter", "Reads of the UDP listeners' "
				   "sockets that brought datagrams (one "
				   "recvmmsg each)");
	if (!err)
		err = re_hprintf(pf, "rehome_sip_udp_reads_total %llu\n",
				 (unsigned long long)reads);
	if (!err)
		err = metrics_family_print(pf, "rehome_sip_udp_datagrams_total",
					   "counter", "Datagrams read from the "
					   "UDP listeners' sockets");
	if (!err)
		err = re_hprintf(pf, "rehome_sip_udp_datagrams_total %llu\n",
				 (unsigned long long)datagrams);

	return err;
}


/**
 * rehome_sip_udp_drops_total{listener}, rehome_sip_udp_rcvbuf_bytes{listener},
 * rehome_sip_udp_reads_total and rehome_sip_udp_datagrams_total: a metrics
 * collector.
 */
int udpbuf_metrics_print(struct re_printf *pf, void *arg)
{
	struct udpbuf_print p = {pf, 0, true};
	(void)arg;

	p.err = metrics_family_print(pf, "rehome_sip_udp_drops_total",
				     "counter", "Datagrams the kernel dropped "
				     "because a UDP listener's receive buffer "
				     "was full");
	if (!p.err)
		listener_apply(sample_print, &p);

	p.drops = false;
	if (!p.err)
		p.err = metrics_family_print(pf, "rehome_sip_udp_rcvbuf_bytes",
					     "gauge", "Receive buffer size of "
					     "a UDP listener");
	if (!p.err)
		listener_apply(sample_print, &p);
	if (!p.err)
		p.err = reads_print(pf);

	return p.err;
}
