/**
 * @file listener.c  SIP listeners and their tags
 *
 * Each `listen` line opens one libre SIP transport. The tag names the
 * purpose of an interface ("public", "carrier") and is the same on every
 * node, so that a dialog records "caller leg on tag public" and whichever
 * node serves it next picks its own listener of that tag. The list is
 * short (a handful of lines), so lookups walk it.
 *
 * TLS listeners share the node's TLS context (tlsctx.c). WebSocket
 * listeners are libre's HTTP servers that upgrade to SIP over WebSocket
 * (RFC 7118); a wss one reads tls_cert into a TLS context of its own,
 * which libre keeps to itself: a reload does not renew it.
 *
 * A worker of `workers N` shares each listener's address with its
 * siblings (reuseport.c) and has an own socket beside it, on a port the
 * kernel picks (own_add()).
 */
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "listener.h"
#include "tlsctx.h"
#include "udpbuf.h"
#include "udpbatch.h"
#include "reuseport.h"

enum { LISTENER_PROBES = 4 };  /* tries at a worker's own port */

static struct list listeners;


static void destructor(void *arg)
{
	struct listener *l = arg;

	list_unlink(&l->le);
	mem_deref(l->tag);
}


static int transp_add(struct sip *sip, enum sip_transp tp,
		      const struct sa *addr, const struct rh_conf *cfg)
{
	int err;

	switch (tp) {

	case SIP_TRANSP_UDP:
		/* read a batch per wake-up (udpbatch.c) */
		udpbatch_set(true);
		err = sip_transp_add(sip, tp, addr);
		udpbatch_set(false);
		return err;

	case SIP_TRANSP_TLS:
		return sip_transp_add(sip, tp, addr, tlsctx_get());

	case SIP_TRANSP_WS:
	case SIP_TRANSP_WSS:
		return sip_transp_add_websock(sip, tp, addr, true,
					      cfg->tls_cert);

	default:
		return sip_transp_add(sip, tp, addr);
	}
}


/* A port the kernel has free on addr's IP, for a worker's own socket */
static int port_probe(struct sa *own, enum sip_transp tp,
		      const struct sa *addr)
{
	int type = tp == SIP_TRANSP_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd, err = 0;

	*own = *addr;
	sa_set_port(own, 0);

	fd = socket(sa_af(own), type, 0);
	if (fd < 0)
		return errno;

	if (bind(fd, &own->u.sa, own->len) ||
	    getsockname(fd, &own->u.sa, &own->len))
		err = errno;

	(void)close(fd);
	return err;
}


/*
 * A worker's own socket on a listener's IP (workers N): the address of
 * its Via and Contact, so that responses and in-dialog requests come back
 * to the worker that holds the dialog instead of the shared port's hash.
 * Added before the shared sockets, since libre sends from the first
 * transport of a protocol. The port is one the kernel had free: another
 * program may take it between the probe and libre's bind, hence retries.
 */
static int own_add(struct sip *sip, struct sa *own,
		   const struct conf_listen *cl, const struct rh_conf *cfg)
{
	int err = EADDRINUSE;

	for (int i = 0; i < LISTENER_PROBES && err == EADDRINUSE; i++) {
		err = port_probe(own, cl->tp, &cl->addr);
		if (!err)
			err = transp_add(sip, cl->tp, own, cfg);
	}
	if (err)
		log_error("listen", "%s:%J: own socket of worker %u: %m",
			  sip_transp_name(cl->tp), &cl->addr, cfg->worker,
			  err);

	return err;
}


static int listener_add(struct sip *sip, const struct conf_listen *cl,
			const struct sa *own, const struct rh_conf *cfg)
{
	struct listener *l;
	int err;

	/* the siblings bind the same address (reuseport.c) */
	reuseport_set(cfg->worker > 0);
	err = transp_add(sip, cl->tp, &cl->addr, cfg);
	reuseport_set(false);
	if (err) {
		log_error("listen", "%s:%J: %m", sip_transp_name(cl->tp),
			  &cl->addr, err);
		return err;
	}

	l = mem_zalloc(sizeof(*l), destructor);
	if (!l)
		return ENOMEM;

	l->tp = cl->tp;
	l->addr = cl->addr;
	l->own = *own;
	l->fd = -1;
	err = str_dup(&l->tag, cl->tag);
	if (err) {
		mem_deref(l);
		return err;
	}

	list_append(&listeners, &l->le, l);
	if (l->tp == SIP_TRANSP_UDP) {
		err = udpbuf_setup(l, (int)cfg->udp_rcvbuf);
		if (err)
			return err;
	}
	if (cfg->worker)
		log_info("listen", "%s:%J tag=%s own %J", sip_transp_name(l->tp),
			 &l->addr, l->tag, &l->own);
	else
		log_info("listen", "%s:%J tag=%s", sip_transp_name(l->tp),
			 &l->addr, l->tag);
	return 0;
}


int listener_init(struct sip *sip, const struct rh_conf *cfg)
{

	struct sa own[CONF_MAX_LISTENERS];
	int err;

	err = tlsctx_init(cfg);
	for (size_t i = 0; i < cfg->listenc && !err; i++) {
		own[i] = cfg->listen[i].addr;
		if (cfg->worker)
			err = own_add(sip, &own[i], &cfg->listen[i], cfg);
	}
	for (size_t i = 0; i < cfg->listenc && !err; i++)
		err = listener_add(sip, &cfg->listen[i], &own[i], cfg);

	if (!err && list_isempty(&listeners)) {
		log_error("listen", "no listener configured");
		err = EINVAL;
	}

	if (!err)
		err = metrics_collector_add(udpbuf_metrics_print, NULL);

	return err;
}


void listener_close(void)
{
	list_flush(&listeners);
	tlsctx_close();
}


const struct listener *listener_by_tag(const char *tag, enum sip_transp tp)
{
	struct le *le;

	LIST_FOREACH(&listeners, le) {
		const struct listener *l = le->data;

		if (l->tp == tp && 0 == str_cmp(l->tag, tag))
			return l;
	}

	return NULL;
}


/** The listener a message arrived on, by its local address. */
const struct listener *listener_by_addr(const struct sa *laddr,
					enum sip_transp tp)
{
	struct le *le;

	LIST_FOREACH(&listeners, le) {
		const struct listener *l = le->data;

		if (l->tp != tp)
			continue;
		if (sa_cmp(&l->addr, laddr, SA_ALL) ||
		    sa_cmp(&l->own, laddr, SA_ALL))
			return l;
		/* a listener on 0.0.0.0 matches any local address */
		if (!sa_is_any(&l->addr) ? false :
		    sa_port(&l->addr) == sa_port(laddr) ||
		    sa_port(&l->own) == sa_port(laddr))
			return l;
	}

	return NULL;
}


const struct listener *listener_first(void)
{
	return list_ledata(list_head(&listeners));
}


void listener_apply(listener_apply_h *h, void *arg)
{
	struct le *le;

	LIST_FOREACH(&listeners, le) {
		if (h(le->data, arg))
			break;
	}
}
