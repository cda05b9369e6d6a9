/**
 * @file reuseport.c  Listening sockets shared by the worker processes (SO_REUSEPORT)
 *
 * With `workers N` every worker opens each listener's address itself,
 * and the kernel spreads what arrives over those sockets: UDP datagrams by
 * a hash of their 4-tuple (all of one source IP:port reach the same
 * worker), TCP connections at accept. That needs SO_REUSEPORT set on each
 * socket before bind(2), but libre 1.1.0 opens and binds its listening
 * sockets inside sip_transp_add() (udp_listen, tcp_listen) with no hook
 * in between, and adopting a socket of our own would mean swapping the
 * descriptor under libre's poll set. So this file defines bind(2) itself
 * (interposition, as sipmend.c does for libre's decoders): the
 * executable's definition is the one libre's calls resolve to, and it
 * sets SO_REUSEPORT on the socket first, but only while listener.c adds
 * a shared listener (reuseport_set()); every other bind of the process
 * passes straight to the kernel.
 *
 * A worker's own sockets (listener.c) are bound with it off: they are its
 * alone.
 */
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <re.h>
#include "reuseport.h"

static bool armed;


int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int on = 1;

	if (armed &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)))
		return -1;

	return (int)syscall(SYS_bind, fd, addr, len);
}


/**
 * While on, the sockets bound are shared with the sibling workers: on
 * around sip_transp_add() of a shared listener, off right after.
 */
void reuseport_set(bool on)
{
	armed = on;
}
