/**
 * @file engine.c  The running node: modules started in order, stopped in reverse
 *
 * The order follows the flow of a call: libuv inside libre's loop first
 * (everything asynchronous hangs off it), then the SIP stack and its
 * listeners, the dialog table and the proxy; then the cluster (Redis,
 * nodes, sharing tags, replication), the policy, and last the control API,
 * so that nothing is reachable from outside before it can be answered.
 */
#include <uv.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "cseq.h"
#include "dialog.h"
#include "listener.h"
#include "proxy.h"
#include "rehome.h"
#include "ctl.h"
#include "engine.h"

static struct {
	const struct rh_conf *cfg;
	struct sip *sip;
} eng;


static void sip_exit_handler(void *arg)
{
	(void)arg;
}


int engine_init(const struct rh_conf *cfg)
{
	int err;

	eng.cfg = cfg;

	err = uvre_init();
	if (err)
		goto out;

	err = sip_alloc(&eng.sip, NULL, 16384, 16384, 16384,
			"rehomed/" REHOME_VERSION, sip_exit_handler, NULL);
	if (err) {
		log_error("engine", "sip stack: %m", err);
		goto out;
	}

	err = listener_init(eng.sip, cfg);
	if (err)
		goto out;

	err = dialog_table_init(16);
	if (err)
		goto out;

	err = proxy_init(eng.sip, cfg);
	if (err)
		goto out;

	err = rehome_init(cfg);
	if (err)
		goto out;

	err = ctl_init(cfg);
	if (err)
		goto out;

 out:
	return err;
}


void engine_close(void)
{
	ctl_close();
	rehome_close();
	proxy_close();
	dialog_table_close();
	listener_close();
	if (eng.sip) {
		sip_close(eng.sip, true);
		eng.sip = mem_deref(eng.sip);
	}
	uvre_close();
	eng.cfg = NULL;
}


struct sip *engine_sip(void)
{
	return eng.sip;
}


const struct rh_conf *engine_conf(void)
{
	return eng.cfg;
}
