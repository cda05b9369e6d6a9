/**
 * @file engine.c  The running node: modules started in order, stopped in reverse
 *
 * The order follows the flow of a call: libuv inside libre's loop first
 * (everything asynchronous hangs off it), then the SIP stack and its
 * listeners, the dialog table and the proxy; then the cluster (Redis,
 * nodes, sharing tags), replication on top of it, the policy, and last the
 * control API, so that nothing is reachable from outside before it can be
 * answered.
 *
 * The engine owns the running configuration: every module is given it at
 * start and reads it through that pointer. A reload (engine_reload.c)
 * writes into it only the keys that may change live, and tells the
 * modules that derived something from them at start (engine_conf_apply).
 * Those that read a value where they use it (the proxy its upstream and
 * dialog_timeout, re-homing its rate) need no telling. The TLS
 * certificates are read again at every reload, changed or not.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "dnscache.h"
#include "cseq.h"
#include "dialog.h"
#include "listener.h"
#include "tlsctx.h"
#include "proxy.h"
#include "anchor.h"
#include "cluster.h"
#include "repl.h"
#include "rehome.h"
#include "policy.h"
#include "ctl.h"
#include "engine.h"

enum {
	ENGINE_SIP_HASH_SZ = 16384, /* buckets of libre's transaction tables */
	ENGINE_PATH_SZ     = 512,
};

enum { ENGINE_DNS_MAX = 8 };   /* servers taken from /etc/resolv.conf */

static struct {
	struct sip *sip;
	struct dnsc *dnsc;      /* libre's DNS client: RFC 3263 for SIP */
	struct dnscache *dnscache; /* what dnsc asks: answers kept per TTL */
	struct rh_conf cfg;     /* the running configuration */
} eng;


static void sip_exit_handler(void *arg)
{
	(void)arg;
}


/*
 * Who handles an in-dialog request for a dialog held here (docs/cluster.md):
 * its owner only. A live owner elsewhere gets the request forwarded to its
 * listener of the same tag, unless the request already comes from a node
 * of the cluster (no forwarding loops between nodes that disagree).
 */
static enum proxy_serve serve_rule(const struct dialog *dlg,
				   const struct sip_msg *msg,
				   enum dialog_leg_id from, struct sa *owner,
				   void *arg)
{
	const char *node = NULL;
	(void)arg;

	switch (repl_serve_rule(dlg, &node)) {

	case REPL_SERVE:
		return PROXY_SERVE;

	case REPL_RELAY:
		if (!node || cluster_node_by_addr(&msg->src) ||
		    cluster_node_lsnr(owner, node, dlg->leg[from].lsnr_tag,
				      msg->tp))
			return PROXY_HOLD;
		return PROXY_FORWARD;

	default:
		return PROXY_HOLD;
	}
}


/* Fencing: a node ends calls on its own only while its lease is fresh */
static bool act_rule(const struct dialog *dlg, void *arg)
{
	(void)dlg;
	(void)arg;

	return cluster_lease_valid();
}


/*
 * DELETE /v1/dialogs/DID: only the node serving a call may end it, by the
 * same rule as for the endpoints' own requests.
 */
static int hangup_rule(struct dialog *dlg, const char **nodep, void *arg)
{
	(void)arg;

	switch (repl_serve_rule(dlg, nodep)) {

	case REPL_SERVE:
		return proxy_hangup(dlg, "ended through the control API");

	case REPL_RELAY:
		return EXDEV;

	default:
		return EAGAIN;
	}
}


/*
 * Where require() finds the Lua library: $REHOME_LUADIR, else lua/ beside
 * the policy's own folder (the shipped layout, both in the source tree and
 * installed under <datadir>/rehome/), else the compiled-in default.
 */
static const char *lua_libdir(const struct rh_conf *cfg, char *buf, size_t sz)
{
	const char *env = getenv("REHOME_LUADIR");
	const char *slash;
	struct stat st;

	if (env && env[0])
		return env;

	slash = strrchr(cfg->policy, '/');
	if (!slash)
		return NULL;

	(void)re_snprintf(buf, sz, "%b/../lua", cfg->policy,
			  (size_t)(slash - cfg->policy));

	return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}


/* POST /v1/log_level {"level": NAME}: at once, until a restart or reload */
static void log_level_route(struct http_conn *conn,
			    const struct ctl_req *req, void *arg)
{
	const char *name = odict_string(req->body, "level");
	enum log_level level;
	struct odict *od = NULL;
	int err;
	(void)arg;

	if (pl_isset(&req->rest) || log_level_decode(&level, name)) {
		(void)ctl_reply_error(conn, 400, "level: one of debug, info, "
				      "warn, error");
		return;
	}

	log_set_level(level);
	log_info("engine", "log level %s", log_level_name(level));

	err  = odict_alloc(&od, 4);
	err |= odict_entry_add(od, "level", ODICT_STRING,
			       log_level_name(level));
	if (err)
		(void)ctl_reply_error(conn, 500, "%m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/*
 * The DNS servers to ask: the dns_server lines, else those of
 * /etc/resolv.conf. libre resolves every SIP URI with a host name
 * (NAPTR, SRV, A/AAAA) and tries the next SRV target on a 503, a timeout
 * or a transport error; its client asks the cache (dnscache.c), which
 * asks these servers. An IP-only config never asks.
 */
static int dns_servers(struct sa *srvv, uint32_t *srvc,
		       const struct rh_conf *cfg)
{
	char domain[64];

	if (!cfg->dns_serverc)
		return dns_srv_get(domain, sizeof(domain), srvv, srvc);

	for (size_t i = 0; i < cfg->dns_serverc; i++)
		srvv[i] = cfg->dns_server[i];
	*srvc = (uint32_t)cfg->dns_serverc;

	return 0;
}


static int dns_apply(const struct rh_conf *cfg)
{
	struct sa srvv[ENGINE_DNS_MAX], cache;
	uint32_t srvc = ARRAY_SIZE(srvv);
	int err;

	err = dns_servers(srvv, &srvc, cfg);
	if (err || !srvc) {
		log_warn("engine", "no DNS server (dns_server, "
			 "/etc/resolv.conf): only IP addresses can be "
			 "reached");
		return 0;
	}

	if (eng.dnscache)
		return dnscache_servers(eng.dnscache, srvv, srvc);

	err = dnscache_alloc(&eng.dnscache, &cache, srvv, srvc);
	if (err)
		return err;

	return dnsc_alloc(&eng.dnsc, NULL, &cache, 1);
}


/* GET /v1/status on a single node: it holds everything there is */
static int single_node_status(struct odict *od, void *arg)
{
	(void)arg;
	return odict_entry_add(od, "synced", ODICT_BOOL, true);
}


/** The running configuration */
const struct rh_conf *engine_conf(void)
{
	return &eng.cfg;
}


/**
 * Run with `cfg` from now on: the policy first, the one step that can
 * fail (a policy that does not load leaves everything as it was), then
 * the running configuration and what the modules derived from it.
 */
int engine_conf_apply(const struct rh_conf *cfg, char *errbuf, size_t errsz)
{
	char libdir[ENGINE_PATH_SZ];
	int err;

	if (!cfg || cfg == &eng.cfg)
		return EINVAL;

	err = tlsctx_apply(cfg, errbuf, errsz);
	if (err)
		return err;

	err = policy_set_file(cfg->policy, lua_libdir(cfg, libdir,
						      sizeof(libdir)),
			      errbuf, errsz);
	if (err)
		return err;

	if (eng.dnscache)
		(void)dns_apply(cfg);

	eng.cfg = *cfg;
	log_set_level(eng.cfg.log_level);
	log_set_target(eng.cfg.log_target);
	repl_conf_apply(&eng.cfg);

	err = ctl_conf_apply(&eng.cfg);
	if (err)
		(void)re_snprintf(errbuf, errsz, "ctl_token: %m", err);

	return err;
}


/** rehomed -t: besides the file itself, the certificates and the policy
 * it names must load */
int engine_check(const struct rh_conf *cfg, char *errbuf, size_t errsz)
{
	char libdir[ENGINE_PATH_SZ];
	int err;

	err = tlsctx_check(cfg, errbuf, errsz);
	if (err || !str_isset(cfg->policy))
		return err;

	return policy_check(cfg->policy, lua_libdir(cfg, libdir,
						    sizeof(libdir)),
			    errbuf, errsz);
}


int engine_init(const struct rh_conf *conf)
{
	const struct rh_conf *cfg = &eng.cfg;
	char libdir[ENGINE_PATH_SZ];
	int err;

	if (!conf)
		return EINVAL;

	eng.cfg = *conf;

	err = uvre_init();
	if (err)
		goto out;

	err = engine_reload_init();
	if (err)
		goto out;

	err = dns_apply(cfg);
	if (err) {
		log_error("engine", "dns client: %m", err);
		goto out;
	}

	err = sip_alloc(&eng.sip, eng.dnsc, ENGINE_SIP_HASH_SZ, ENGINE_SIP_HASH_SZ,
			ENGINE_SIP_HASH_SZ,
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

	err = dialog_ctl_init();
	if (err)
		goto out;

	err = proxy_init(eng.sip, cfg);
	if (err)
		goto out;

	err = anchor_init(cfg);
	if (err)
		goto out;

	err = cluster_init(cfg);
	if (err)
		goto out;

	err = repl_init(cfg);
	if (err)
		goto out;
	if (cfg->has_redis) {
		proxy_set_serve_handler(serve_rule, NULL);
		proxy_set_act_handler(act_rule, NULL);
	}
	else
		err = ctl_status_add(single_node_status, NULL);
	if (err)
		goto out;
	dialog_ctl_set_hangup_handler(hangup_rule, NULL);

	err = rehome_init(cfg);
	if (err)
		goto out;

	err = engine_policy_init(cfg, lua_libdir(cfg, libdir, sizeof(libdir)));
	if (err)
		goto out;

	err = engine_fleet_init();
	if (err)
		goto out;

	err = ctl_route_add("POST", "/v1/log_level", log_level_route, NULL);
	if (err)
		goto out;

	err = ctl_init(cfg);
	if (err)
		goto out;

	engine_trim_init();

 out:
	return err;
}


void engine_close(void)
{
	engine_trim_close();
	ctl_close();
	engine_reload_close();
	engine_fleet_close();
	engine_policy_close();
	rehome_close();
	repl_close();
	cluster_close();
	anchor_close();
	proxy_close();
	dialog_table_close();
	listener_close();
	if (eng.sip) {
		sip_close(eng.sip, true);
		eng.sip = mem_deref(eng.sip);
	}
	eng.dnsc = mem_deref(eng.dnsc);
	eng.dnscache = mem_deref(eng.dnscache);
	uvre_close();
}
