/**
 * @file listener.c  SIP listeners and their tags
 *
 * Each `listen` line opens one libre SIP transport. The tag names the
 * purpose of an interface ("public", "carrier") and is the same on every
 * node, so that a dialog records "caller leg on tag public" and whichever
 * node serves it next picks its own listener of that tag. The list is
 * short (a handful of lines), so lookups walk it.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "listener.h"
#include "udpbuf.h"

static struct list listeners;


static void destructor(void *arg)
{
	struct listener *l = arg;

	list_unlink(&l->le);
	mem_deref(l->tag);
}


static int listener_add(struct sip *sip, const struct conf_listen *cl,
			int rcvbuf)
{
	struct listener *l;
	int err;

	err = sip_transp_add(sip, cl->tp, &cl->addr);
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
	l->fd = -1;
	err = str_dup(&l->tag, cl->tag);
	if (err) {
		mem_deref(l);
		return err;
	}

	list_append(&listeners, &l->le, l);
	if (l->tp == SIP_TRANSP_UDP) {
		err = udpbuf_setup(l, rcvbuf);
		if (err)
			return err;
	}
	log_info("listen", "%s:%J tag=%s", sip_transp_name(l->tp), &l->addr,
		 l->tag);
	return 0;
}


int listener_init(struct sip *sip, const struct rh_conf *cfg)
{
	int err = 0;

	for (size_t i = 0; i < cfg->listenc && !err; i++)
		err = listener_add(sip, &cfg->listen[i], (int)cfg->udp_rcvbuf);

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
		if (sa_cmp(&l->addr, laddr, SA_ALL))
			return l;
		/* a listener on 0.0.0.0 matches any local address */
		if (!sa_is_any(&l->addr) ? false :
		    sa_port(&l->addr) == sa_port(laddr))
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
