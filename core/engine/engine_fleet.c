/**
 * @file engine_fleet.c  The same policy everywhere: hashes in heartbeats, cluster-wide reload
 *
 * Every node publishes the SHA-256 of the policy it runs as the
 * "policy_hash" info of its heartbeats (cluster_info.c), so that any
 * node's GET /v1/status shows each node's hash and lists, in
 * "policy_drift", the live nodes whose policy differs from its own.
 *
 * POST /v1/policy/reload {"cluster": true} reloads the policy here, then
 * asks every live node to reload its own policy file with a signed
 * message on "<cluster>:policy" ("reload": id, from), and gathers their
 * answers ("reloaded": id, to, node, ok, hash, error) for at most
 * WAIT_MS. The reply lists each node's outcome; a node that did not
 * answer in time is reported as such (it may still have reloaded). A
 * node whose file does not load keeps its policy, as any reload does,
 * and says why.
 *
 * Each node reloads the file its own config names: the cluster-wide
 * reload does not carry policies, it makes every node take up what was
 * deployed to it, e.g. after a symbolic link was switched to a new
 * release, which no file watch sees.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "json.h"
#include "ctl.h"
#include "redis.h"
#include "cluster.h"
#include "policy.h"
#include "engine.h"

enum {
	WAIT_MS    = 3000,   /* answers to a cluster-wide reload */
	JSON_DEPTH = 4,
	CHAN_SZ    = 128,    /* "<cluster>:policy" */
	ID_SZ      = 17,     /* 64 bits in hex */
	ERR_SZ     = 256,
};

/** A cluster-wide reload this node asked for, waiting for answers */
struct ask {
	struct le le;
	char id[ID_SZ];
	struct http_conn *conn;
	struct odict *results;   /* array of result_alloc() objects */
	uint32_t n;              /* entries in results */
	struct odict *waiting;   /* node id -> true, until it answers */
	struct tmr tmr;
};

static struct {
	char chan[CHAN_SZ];      /* "" without a cluster */
	struct list asks;
} fl;


static void ask_destructor(void *arg)
{
	struct ask *ask = arg;

	tmr_cancel(&ask->tmr);
	list_unlink(&ask->le);
	mem_deref(ask->conn);
	mem_deref(ask->results);
	mem_deref(ask->waiting);
}


/* ---- node to node ---------------------------------------------------- */


static int msg_send(const struct odict *od)
{
	struct mbuf *mb = NULL;
	int err;

	err = cluster_msg_alloc(&mb);
	if (err)
		return err;

	err = mbuf_printf(mb, "%H", json_encode_odict, od);
	if (!err)
		err = cluster_msg_seal(mb);
	if (!err)
		err = redis_publish(fl.chan, mb->buf, mb->end, NULL,
				    NULL);

	mem_deref(mb);
	return err;
}


/** One node's outcome: {"node", "ok", "hash", "error" (null if ok)} */
static int result_alloc(struct odict **odp, const char *node, bool ok,
			const char *hash, const char *error)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= json_str_add(od, "node", node);
	err |= json_bool_add(od, "ok", ok);
	err |= json_str_add(od, "hash", hash ? hash : "");
	err |= json_str_null_add(od, "error", ok ? NULL : error ? error : "");

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/** Reload here; `od` gets this node's outcome */
static int reload_here(struct odict **odp)
{
	char msg[ERR_SZ];
	int err;

	err = policy_reload(msg, sizeof(msg));

	return result_alloc(odp, cluster_enabled() ? cluster_node_id()
				 : engine_conf()->node_id, !err,
			    policy_hash(), err ? msg : NULL);
}


static void reload_recv(const struct odict *req)
{
	struct odict *od = NULL;
	const char *from = odict_string(req, "from");
	const char *id = odict_string(req, "id");
	int err;

	if (!from || !id || !str_cmp(from, cluster_node_id()))
		return;

	log_info("policy", "cluster-wide reload asked by %s", from);
	err = reload_here(&od);
	err |= json_str_add(od, "kind", "reloaded");
	err |= json_str_add(od, "id", id);
	err |= json_str_add(od, "to", from);
	if (!err)
		err = msg_send(od);
	if (err)
		log_warn("policy", "cluster-wide reload: no answer to %s: %m",
			 from, err);

	mem_deref(od);
}


/** Every live node answered or the time is up: answer the HTTP request */
static void ask_finish(struct ask *ask, const char *why)
{
	struct odict *od = NULL;
	const char *hash = NULL;
	bool ok = true, same = true;
	struct le *le;
	int err;

	LIST_FOREACH(&ask->waiting->lst, le) {
		const struct odict_entry *e = le->data;
		struct odict *r = NULL;

		err = result_alloc(&r, e->key, false, "", why);
		if (!err)
			err = json_array_add(ask->results, ask->n++,
					     ODICT_OBJECT, r);
	}

	LIST_FOREACH(&ask->results->lst, le) {
		const struct odict_entry *e = le->data;
		const char *h = odict_string(e->u.odict, "hash");
		bool rok = false;

		(void)odict_get_boolean(e->u.odict, &rok, "ok");
		ok &= rok;
		same &= !hash || !str_cmp(hash, h);
		hash = hash ? hash : h;
	}

	err  = odict_alloc(&od, 8);
	if (!err) {
		err |= json_bool_add(od, "cluster", true);
		err |= json_bool_add(od, "reloaded", ok);
		err |= json_bool_add(od, "same", same);
		err |= odict_entry_add(od, "nodes", ODICT_ARRAY,
				       ask->results);
	}

	if (err)
		(void)ctl_reply_error(ask->conn, 500, "%m", err);
	else
		(void)ctl_reply_json(ask->conn, 200, od);

	mem_deref(od);
	mem_deref(ask);
}


static bool ask_id_cmp(struct le *le, void *arg)
{
	const struct ask *ask = le->data;

	return !str_cmp(ask->id, arg);
}


static void reloaded_recv(const struct odict *od)
{
	const char *id = odict_string(od, "id");
	const char *node = odict_string(od, "node");
	struct odict *r = NULL;
	struct ask *ask;
	bool ok = false;

	if (!id || !node ||
	    str_cmp(odict_string(od, "to"), cluster_node_id()))
		return;

	ask = list_ledata(list_apply(&fl.asks, true, ask_id_cmp,
				     (void *)id));
	if (!ask || !odict_lookup(ask->waiting, node))
		return;

	odict_entry_del(ask->waiting, node);
	(void)odict_get_boolean(od, &ok, "ok");
	if (!result_alloc(&r, node, ok, odict_string(od, "hash"),
			  odict_string(od, "error")))
		(void)json_array_add(ask->results, ask->n++, ODICT_OBJECT, r);

	if (!odict_count(ask->waiting, false))
		ask_finish(ask, NULL);
}


static void msg_handler(const struct pl *chan, const struct pl *msg,
			void *arg)
{
	struct odict *od = NULL;
	const char *kind;
	struct pl body;
	(void)chan;
	(void)arg;

	if (cluster_msg_open(&body, msg))
		return;   /* counted */

	if (json_decode_odict(&od, 16, body.p, body.l, JSON_DEPTH))
		return;

	kind = odict_string(od, "kind");
	if (!str_cmp(kind, "reload"))
		reload_recv(od);
	else if (!str_cmp(kind, "reloaded"))
		reloaded_recv(od);

	mem_deref(od);
}


/* ---- the cluster-wide reload ----------------------------------------- */


static void ask_timeout(void *arg)
{
	ask_finish(arg, "no answer");
}


static bool live_peer_add(const struct cluster_node *node, void *arg)
{
	struct ask *ask = arg;

	if (node->self || node->state == CLUSTER_NODE_DOWN)
		return false;

	return 0 != json_bool_add(ask->waiting, node->id, true);
}


/** The live peers are asked: `ask` is done when they all answered */
static int ask_peers(struct ask *ask)
{
	struct odict *od = NULL;
	int err;

	(void)cluster_node_apply(live_peer_add, ask);
	if (!odict_count(ask->waiting, false))
		return 0;

	err = odict_alloc(&od, 4);
	if (err)
		return err;

	err |= json_str_add(od, "kind", "reload");
	err |= json_str_add(od, "id", ask->id);
	err |= json_str_add(od, "from", cluster_node_id());
	if (!err)
		err = msg_send(od);

	mem_deref(od);
	return err;
}


/** policy_cluster_reload_h: here first, then every live node */
static void cluster_reload(struct http_conn *conn, void *arg)
{
	struct odict *self = NULL;
	struct ask *ask;
	int err;
	(void)arg;

	ask = mem_zalloc(sizeof(*ask), ask_destructor);
	if (!ask) {
		(void)ctl_reply_error(conn, 500, "%m", ENOMEM);
		return;
	}

	ask->conn = mem_ref(conn);
	tmr_init(&ask->tmr);
	(void)re_snprintf(ask->id, sizeof(ask->id), "%016llx",
			  (unsigned long long)rand_u64());
	list_append(&fl.asks, &ask->le, ask);

	err  = odict_alloc(&ask->results, 8);
	err |= odict_alloc(&ask->waiting, 8);
	if (!err)
		err = reload_here(&self);
	if (!err)
		err = json_array_add(ask->results, ask->n++, ODICT_OBJECT,
				     self);
	if (err) {
		(void)ctl_reply_error(conn, 500, "%m", err);
		mem_deref(ask);
		return;
	}

	err = fl.chan[0] ? ask_peers(ask) : 0;
	if (err) {
		char why[ERR_SZ];

		(void)re_snprintf(why, sizeof(why), "not asked: %m", err);
		ask_finish(ask, why);
	}
	else if (!odict_count(ask->waiting, false)) {
		ask_finish(ask, NULL);
	}
	else {
		tmr_start(&ask->tmr, WAIT_MS, ask_timeout, ask);
	}
}


/* ---- drift ------------------------------------------------------------ */


struct drift_ctx {
	struct odict *arr;
	uint32_t n;
	int err;
};


static bool drift_handler(const struct cluster_node *node, void *arg)
{
	struct drift_ctx *ctx = arg;
	const char *hash = node->info ? odict_string(node->info,
						      "policy_hash") : NULL;
	char key[JSON_INDEX_SZ];

	if (node->self || node->state == CLUSTER_NODE_DOWN ||
	    !str_cmp(hash ? hash : "", policy_hash()))
		return false;

	(void)re_snprintf(key, sizeof(key), "%u", ctx->n++);
	ctx->err = odict_entry_add(ctx->arr, key, ODICT_STRING, node->id);

	return ctx->err != 0;
}


/** GET /v1/status: "policy_drift", the live nodes running another policy */
static int drift_status(struct odict *od, void *arg)
{
	struct drift_ctx ctx = {NULL, 0, 0};
	(void)arg;

	if (!cluster_enabled())
		return 0;

	ctx.err = odict_alloc(&ctx.arr, 8);
	if (ctx.err)
		return ctx.err;

	(void)cluster_node_apply(drift_handler, &ctx);

	return ctx.err | json_child_add(od, "policy_drift", ODICT_ARRAY,
					ctx.arr);
}


/** policy_loaded_h: the hash goes out with the next heartbeat */
static void policy_loaded(const char *hash, void *arg)
{
	(void)arg;

	(void)cluster_info_set("policy_hash", hash);
}


int engine_fleet_init(void)
{
	int err;

	policy_set_cluster_reload_handler(cluster_reload, NULL);
	if (!cluster_enabled())
		return 0;

	policy_set_loaded_handler(policy_loaded, NULL);
	policy_loaded(policy_hash(), NULL);

	(void)re_snprintf(fl.chan, sizeof(fl.chan), "%s:policy",
			  cluster_name());
	err = redis_subscribe(fl.chan, msg_handler, NULL);
	if (!err)
		err = ctl_status_add(drift_status, NULL);

	return err;
}


void engine_fleet_close(void)
{
	policy_set_cluster_reload_handler(NULL, NULL);
	policy_set_loaded_handler(NULL, NULL);
	list_flush(&fl.asks);
	fl.chan[0] = '\0';
}
