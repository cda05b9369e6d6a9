/**
 * @file engine_policy.c  What the engine lends to Lua policies, and what it tells them
 *
 * The policy host (policy.c) knows nothing of the cluster or of
 * re-homing; this file is the only place that connects them. It fills
 * struct policy_ops with views of the node list, the sharing tags and the
 * dialog table (built as odicts on demand: policies ask rarely, and a
 * snapshot cannot go stale under a running hook), turns the asynchronous
 * cluster and re-home operations into policy_done_h callbacks, and
 * forwards events: node state changes, finished re-homing jobs, and each
 * new INVITE (a policy decision composed with draining).
 *
 * Dialogs are shown as the control API shows them (dialog_view.c), and
 * per-node and per-tag call counts are sums over one walk of the dialog
 * table per request (dialog_tally); at 10 000 dialogs that is well under
 * a millisecond, once a second for on_tick.
 */
#include <string.h>
#include <sys/resource.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "json.h"
#include "cseq.h"
#include "dialog.h"
#include "proxy.h"
#include "anchor.h"
#include "cluster.h"
#include "shtag.h"
#include "rehome.h"
#include "policy.h"
#include "engine.h"

enum { CPS_WINDOW_MS = 1000 };

static struct {
	const struct rh_conf *cfg;
	uint64_t invites;        /* new INVITEs seen, for cps */
	uint64_t invites_prev;
	uint64_t cps_at;         /* jiffies of the last cps sample */
	uint64_t cpu_us;         /* CPU time used at cpu_at, microseconds */
	uint64_t cpu_at;         /* jiffies of the last cpu sample */
} ep;


/* ---- views -------------------------------------------------------- */


/**
 * Dialogs of `owner` and `tag` (NULL: any) in the counts of one walk of
 * the table, replicas included: a node's calls are the dialogs it owns.
 */
static uint32_t calls(const struct list *tallies, const char *owner,
		      const char *tag)
{
	struct dialog_counts n;

	dialog_tally_sum(&n, tallies, tag, owner);
	return dialog_counts_total(&n);
}


static const char *node_id(void *arg)
{
	(void)arg;
	return ep.cfg->node_id;
}


/** A list view being built, with the dialog counts it shows */
struct list_ctx {
	struct odict *list;
	struct list tallies;
	uint32_t i;
	int err;
};


static int list_begin(struct list_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->err = dialog_tally(&ctx->tallies);
	if (!ctx->err)
		ctx->err = odict_alloc(&ctx->list, 16);

	return ctx->err;
}


static int list_add(struct list_ctx *ctx, int err, struct odict *item)
{
	if (err) {
		mem_deref(item);
		ctx->err |= err;
	}
	else {
		ctx->err |= json_array_add(ctx->list, ctx->i++, ODICT_OBJECT,
					   item);
	}

	return ctx->err;
}


/** Hand the list over, or drop it on error */
static int list_end(struct list_ctx *ctx, struct odict **odp)
{
	list_flush(&ctx->tallies);

	if (ctx->err)
		mem_deref(ctx->list);
	else
		*odp = ctx->list;

	return ctx->err;
}


static int node_odict(struct odict **odp, const struct list_ctx *ctx,
		      const char *id, const char *state, bool self,
		      bool synced)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= json_str_add(od, "id", id);
	err |= json_str_add(od, "state", state);
	err |= json_bool_add(od, "self", self);
	err |= json_bool_add(od, "synced", synced);
	err |= json_int_add(od, "calls", calls(&ctx->tallies, id, NULL));

	*odp = od;
	return err;
}


static bool node_handler(const struct cluster_node *node, void *arg)
{
	struct list_ctx *ctx = arg;
	struct odict *item = NULL;
	int err;

	err = node_odict(&item, ctx, node->id,
			 cluster_node_state_name(node->state), node->self,
			 node->synced);
	if (!err && node->meta)
		err = odict_entry_add(item, "meta", ODICT_OBJECT, node->meta);

	return list_add(ctx, err, item) != 0;
}


/** A single node's node_meta, as a cluster node's heartbeats carry it */
static int meta_add(struct odict *od)
{
	struct odict *meta = NULL;
	int err;

	err = odict_alloc(&meta, 8);
	if (err)
		return err;

	for (size_t i = 0; i < ep.cfg->node_metac; i++)
		err |= json_str_add(meta, ep.cfg->node_meta[i].key,
				    ep.cfg->node_meta[i].value);

	return err | json_child_add(od, "meta", ODICT_OBJECT, meta);
}


static int nodes(struct odict **odp, void *arg)
{
	struct list_ctx ctx;
	struct odict *self = NULL;
	int err;
	(void)arg;

	if (list_begin(&ctx))
		return list_end(&ctx, odp);

	if (cluster_enabled()) {
		(void)cluster_node_apply(node_handler, &ctx);
	}
	else {
		err = node_odict(&self, &ctx, ep.cfg->node_id, "up", true,
				 true);
		if (!err)
			err = meta_add(self);
		(void)list_add(&ctx, err, self);
	}

	return list_end(&ctx, odp);
}


/** Configured backups of a tag are not known cluster-wide; left out. */
/** This node's config wants the tag active here (`shtag T active`) */
static bool preferred(const char *name)
{
	for (size_t i = 0; i < ep.cfg->shtagc; i++) {
		if (!str_cmp(ep.cfg->shtag[i].name, name))
			return ep.cfg->shtag[i].active;
	}

	return false;
}


static int shtag_odict(struct odict **odp, const struct list_ctx *ctx,
		       const char *name, bool mine, uint64_t epoch,
		       const char *holder)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= json_str_add(od, "name", name);
	err |= json_bool_add(od, "mine", mine);
	err |= json_bool_add(od, "preferred", preferred(name));
	err |= json_int_add(od, "epoch", epoch);
	if (holder && holder[0])
		err |= json_str_add(od, "active", holder);
	err |= json_int_add(od, "calls",
			    calls(&ctx->tallies, ep.cfg->node_id, name));

	*odp = od;
	return err;
}


static bool shtag_handler(const char *name, bool active, uint64_t epoch,
			  const char *holder, void *arg)
{
	struct list_ctx *ctx = arg;
	struct odict *item = NULL;
	int err;

	err = shtag_odict(&item, ctx, name, active, epoch, holder);

	return list_add(ctx, err, item) != 0;
}


static int shtags(struct odict **odp, void *arg)
{
	struct list_ctx ctx;
	(void)arg;

	if (list_begin(&ctx))
		return list_end(&ctx, odp);

	if (cluster_enabled()) {
		shtag_apply(shtag_handler, &ctx);
	}
	else {
		/* single node: every configured tag is ours */
		for (size_t i = 0; i < ep.cfg->shtagc && !ctx.err; i++) {
			struct odict *item = NULL;
			int err;

			err = shtag_odict(&item, &ctx, ep.cfg->shtag[i].name,
					  true, 0, ep.cfg->node_id);
			(void)list_add(&ctx, err, item);
		}
	}

	return list_end(&ctx, odp);
}


/** The dialogs as GET /v1/dialogs shows them (limit 0: all) */
static int dialogs(struct odict **odp, const char *tag, uint32_t limit,
		   void *arg)
{
	(void)arg;

	return dialog_view_list(odp, NULL, tag, limit);
}


/* ---- stats for on_tick ------------------------------------------- */


/** An object of stats being built, with the dialog counts it shows */
struct stats_ctx {
	struct odict *od;
	const struct list *tallies;
	int err;
};


static int stats_entry(struct stats_ctx *ctx, const char *key,
		       const char *field, const char *value, uint32_t n)
{
	struct odict *od = NULL;
	int err;

	err = odict_alloc(&od, 4);
	if (!err && field)
		err = json_str_add(od, field, value);
	if (!err)
		err = json_int_add(od, "calls", n);

	ctx->err |= err | json_child_add(ctx->od, key, ODICT_OBJECT, od);
	return ctx->err;
}


static bool stats_node_handler(const struct cluster_node *node, void *arg)
{
	struct stats_ctx *ctx = arg;

	return 0 != stats_entry(ctx, node->id, "state",
				cluster_node_state_name(node->state),
				calls(ctx->tallies, node->id, NULL));
}


static bool stats_tag_handler(const char *name, bool active, uint64_t epoch,
			      const char *holder, void *arg)
{
	struct stats_ctx *ctx = arg;
	(void)active;
	(void)epoch;

	return 0 != stats_entry(ctx, name, "active", holder ? holder : "",
				calls(ctx->tallies, ep.cfg->node_id, name));
}


static double cps_sample(void)
{
	uint64_t now = tmr_jiffies();
	uint64_t dt = now - ep.cps_at;
	double cps;

	if (!ep.cps_at || dt == 0) {
		ep.cps_at = now;
		ep.invites_prev = ep.invites;
		return 0;
	}

	cps = (double)(ep.invites - ep.invites_prev) * 1000.0 / (double)dt;
	if (dt >= CPS_WINDOW_MS) {
		ep.cps_at = now;
		ep.invites_prev = ep.invites;
	}

	return cps;
}


static uint64_t cpu_used_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;

	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
		(uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}


/** This process's share of one CPU since the last sample (0..1 and up) */
static double cpu_sample(void)
{
	uint64_t now = tmr_jiffies(), used = cpu_used_us();
	uint64_t dt = now - ep.cpu_at;
	double share;

	if (!ep.cpu_at || dt == 0) {
		ep.cpu_at = now;
		ep.cpu_us = used;
		return 0;
	}

	share = (double)(used - ep.cpu_us) / 1000.0 / (double)dt;
	if (dt >= CPS_WINDOW_MS) {
		ep.cpu_at = now;
		ep.cpu_us = used;
	}

	return share;
}


static int stats(struct odict **odp, void *arg)
{
	struct list tallies = LIST_INIT;
	struct stats_ctx nodes_ctx = {NULL, &tallies, 0};
	struct stats_ctx tags_ctx = {NULL, &tallies, 0};
	struct odict *od = NULL;
	int err;
	(void)arg;

	err  = dialog_tally(&tallies);
	err |= odict_alloc(&od, 8);
	err |= odict_alloc(&nodes_ctx.od, 16);
	err |= odict_alloc(&tags_ctx.od, 16);
	if (err)
		goto out;

	if (cluster_enabled()) {
		(void)cluster_node_apply(stats_node_handler, &nodes_ctx);
		shtag_apply(stats_tag_handler, &tags_ctx);
	}
	else {
		(void)stats_entry(&nodes_ctx, ep.cfg->node_id, "state", "up",
				  calls(&tallies, NULL, NULL));
		for (size_t i = 0; i < ep.cfg->shtagc; i++)
			(void)stats_entry(&tags_ctx, ep.cfg->shtag[i].name,
					  "active", ep.cfg->node_id,
					  calls(&tallies, NULL,
						ep.cfg->shtag[i].name));
	}

	err |= nodes_ctx.err | tags_ctx.err;
	err |= json_str_add(od, "node", ep.cfg->node_id);
	err |= odict_entry_add(od, "cps", ODICT_DOUBLE, cps_sample());
	err |= odict_entry_add(od, "cpu", ODICT_DOUBLE, cpu_sample());
	err |= json_int_add(od, "calls",
			    calls(&tallies, ep.cfg->node_id, NULL));
	err |= json_child_add(od, "nodes", ODICT_OBJECT, mem_ref(nodes_ctx.od));
	err |= json_child_add(od, "tags", ODICT_OBJECT, mem_ref(tags_ctx.od));

 out:
	list_flush(&tallies);
	mem_deref(nodes_ctx.od);
	mem_deref(tags_ctx.od);
	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/* ---- actions ------------------------------------------------------ */


/** A pending policy callback: the token policy.c gave us */
struct pending {
	policy_done_h *doneh;
	void *done_arg;
};


static int pending_alloc(struct pending **pp, policy_done_h *doneh,
			 void *done_arg)
{
	struct pending *p = mem_zalloc(sizeof(*p), NULL);

	if (!p)
		return ENOMEM;

	p->doneh = doneh;
	p->done_arg = done_arg;
	*pp = p;
	return 0;
}


static void take_result(int err, const char *name, bool active,
			uint64_t epoch, const char *holder, void *arg)
{
	struct pending *p = arg;
	struct odict *od = NULL;

	if (!err && !odict_alloc(&od, 4)) {
		(void)json_str_add(od, "tag", name);
		(void)json_bool_add(od, "active", active);
		(void)json_int_add(od, "epoch", epoch);
		(void)json_str_add(od, "holder", holder);
	}

	p->doneh(err ? err : (active ? 0 : EBUSY), od, p->done_arg);
	mem_deref(od);
	mem_deref(p);
}


static int take(const char *tag, policy_done_h *doneh, void *done_arg,
		void *arg)
{
	struct pending *p;
	int err;
	(void)arg;

	if (!cluster_enabled())
		return ENOTSUP;

	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = shtag_activate(tag, take_result, p);
	if (err)
		mem_deref(p);

	return err;
}


static int release(const char *tag, void *arg)
{
	(void)arg;

	if (!cluster_enabled())
		return ENOTSUP;

	return shtag_release(tag, NULL, NULL);
}


static void job_done(int err, const struct rehome_job *job, void *arg)
{
	struct pending *p = arg;
	struct odict *od = NULL;

	if (job)
		(void)rehome_job_odict(&od, job);

	p->doneh(err, od, p->done_arg);
	mem_deref(od);
	mem_deref(p);
}


static int opts_decode(struct rehome_opts *opts, const char *mode,
		       const char *body, uint32_t rate)
{
	memset(opts, 0, sizeof(*opts));
	opts->rate = rate;

	if (mode && rehome_mode_decode(&opts->mode, mode))
		return EINVAL;
	if (body && rehome_body_decode(&opts->body, body))
		return EINVAL;

	return 0;
}


static int rehome(const struct policy_rehome *req, policy_done_h *doneh,
		  void *done_arg, void *arg)
{
	struct rehome_opts opts;
	struct pending *p;
	int err;
	(void)arg;

	err = opts_decode(&opts, req->mode, req->body, req->rate);
	if (err)
		return err;

	opts.force = req->force;
	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = rehome_tag(req->tag, &opts, NULL, job_done, p);
	if (err)
		mem_deref(p);

	return err;
}


static int move(const struct policy_move *req, policy_done_h *doneh,
		void *done_arg, void *arg)
{
	struct rehome_opts opts;
	struct pending *p;
	int err;
	(void)arg;

	err = opts_decode(&opts, NULL, NULL, 0);
	if (err)
		return err;

	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = rehome_move(req->tag, req->to, req->count, req->percent,
			  &opts, NULL, job_done, p);
	if (err)
		mem_deref(p);

	return err;
}


/** The media relays as GET /v1/media/relays lists them; [] without */
static int relays(struct odict **odp, void *arg)
{
	const struct odict_entry *e;
	struct odict *od = NULL;
	int err;
	(void)arg;

	err = anchor_relays_odict(&od);
	if (err)
		return err;

	e = odict_lookup(od, "relays");
	*odp = e ? mem_ref(e->u.odict) : NULL;
	mem_deref(od);

	return *odp ? 0 : ENOENT;
}


static int move_media(const struct policy_move_media *req,
		      policy_done_h *doneh, void *done_arg, void *arg)
{
	struct rehome_opts opts;
	struct pending *p;
	int err;
	(void)arg;

	err = opts_decode(&opts, NULL, NULL, req->rate);
	if (err)
		return err;

	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = rehome_media(req->from, req->to, req->count, req->tag, &opts,
			   NULL, job_done, p);
	if (err)
		mem_deref(p);

	return err;
}


/* ---- events --------------------------------------------------------- */


static void relay_changed(const char *relay, bool up, void *arg)
{
	(void)arg;

	(void)policy_relay_event(relay, up);
}


static void node_changed(const struct cluster_node *node,
			 enum cluster_node_state prev, void *arg)
{
	(void)prev;
	(void)arg;

	switch (node->state) {

	case CLUSTER_NODE_UP:
		(void)policy_node_event(node->id, POLICY_NODE_UP);
		break;

	case CLUSTER_NODE_DOWN:
		(void)policy_node_event(node->id, POLICY_NODE_DOWN);
		break;

	case CLUSTER_NODE_DRAINING:
		(void)policy_node_event(node->id, POLICY_NODE_DRAINING);
		break;
	}
}


static void rehome_finished(int err, const struct rehome_job *job, void *arg)
{
	struct odict *od = NULL;
	(void)err;
	(void)arg;

	if (!job || rehome_job_odict(&od, job))
		return;

	(void)policy_rehome_done(od);
	mem_deref(od);
}


/*
 * Every new INVITE: a draining node refuses it first (503 + Retry-After,
 * so the sender retries elsewhere, RFC 3261 21.5.4); otherwise the
 * policy may choose the sharing tag, the next hop, or reject; last, a
 * call this node could not protect is refused (engine_guard.c).
 */
static void route_invite(const struct sip_msg *msg, const char *lsnr_tag,
			 struct proxy_route *rt, void *arg)
{
	struct policy_decision d;
	(void)arg;

	ep.invites++;

	if (rehome_draining(&rt->retry_after)) {
		rt->reject = 503;
		str_ncpy(rt->reason, "Service Unavailable", sizeof(rt->reason));
		return;
	}

	/* on a policy error d is empty: the defaults apply */
	(void)policy_initial_invite(msg, lsnr_tag, &d);
	str_ncpy(rt->shtag, d.shtag, sizeof(rt->shtag));
	str_ncpy(rt->target, d.target, sizeof(rt->target));
	rt->reject = d.scode;
	str_ncpy(rt->reason, d.reason, sizeof(rt->reason));
	rt->no_media = d.no_media;
	engine_guard_route(rt, ep.cfg);
}


int engine_policy_init(const struct rh_conf *cfg, const char *libdir)
{
	static const struct policy_ops ops = {
		.node_id = node_id,
		.nodes   = nodes,
		.shtags  = shtags,
		.dialogs = dialogs,
		.stats   = stats,
		.relays  = relays,
		.take    = take,
		.release = release,
		.rehome  = rehome,
		.move    = move,
		.move_media = move_media,
	};
	int err;

	ep.cfg = cfg;

	err = policy_init(cfg->policy, libdir, &ops);
	if (err)
		return err;

	cluster_set_node_handler(node_changed, NULL);
	rehome_set_done_handler(rehome_finished, NULL);
	proxy_set_route_handler(route_invite, NULL);
	anchor_set_relay_handler(relay_changed, NULL);

	/* this node starts up: no state change of the cluster's will say so */
	(void)policy_node_event(cfg->node_id, POLICY_NODE_UP);

	return 0;
}


void engine_policy_close(void)
{
	anchor_set_relay_handler(NULL, NULL);
	proxy_set_route_handler(NULL, NULL);
	rehome_set_done_handler(NULL, NULL);
	cluster_set_node_handler(NULL, NULL);
	policy_close();
	memset(&ep, 0, sizeof(ep));
}
