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
 * Per-node and per-tag call counts come from one walk of the dialog table
 * per request; at 10 000 dialogs that is well under a millisecond, once a
 * second for on_tick.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "ctl.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "proxy.h"
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
} ep;


/* ---- views -------------------------------------------------------- */


struct count_ctx {
	const char *owner;       /* count only dialogs of this owner, or all */
	const char *tag;         /* count only this tag, or all */
	uint32_t n;
};


static bool count_handler(struct dialog *dlg, void *arg)
{
	struct count_ctx *ctx = arg;

	if (ctx->owner && str_cmp(dlg->owner, ctx->owner))
		return false;
	if (ctx->tag && str_cmp(dlg->shtag, ctx->tag))
		return false;

	ctx->n++;
	return false;
}


static uint32_t count_dialogs(const char *owner, const char *tag)
{
	struct count_ctx ctx = {owner, tag, 0};

	(void)dialog_apply(count_handler, &ctx);
	return ctx.n;
}


static const char *node_id(void *arg)
{
	(void)arg;
	return ep.cfg->node_id;
}


static int node_odict(struct odict **odp, const char *id, const char *state,
		      bool self)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "id", ODICT_STRING, id);
	err |= odict_entry_add(od, "state", ODICT_STRING, state);
	err |= odict_entry_add(od, "self", ODICT_BOOL, self);
	err |= odict_entry_add(od, "calls", ODICT_INT,
			       (int64_t)count_dialogs(id, NULL));
	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


struct list_ctx {
	struct odict *list;
	unsigned i;
	int err;
};


static int list_add(struct list_ctx *ctx, struct odict *item)
{
	char key[CTL_INDEX_SZ];

	(void)re_snprintf(key, sizeof(key), "%u", ctx->i++);
	ctx->err |= odict_entry_add(ctx->list, key, ODICT_OBJECT, item);
	mem_deref(item);
	return ctx->err;
}


/** Hand the list over, or drop it on error */
static int list_end(struct list_ctx *ctx, struct odict **odp)
{
	if (ctx->err)
		mem_deref(ctx->list);
	else
		*odp = ctx->list;

	return ctx->err;
}


static bool node_handler(const struct cluster_node *node, void *arg)
{
	struct list_ctx *ctx = arg;
	struct odict *item = NULL;

	ctx->err |= node_odict(&item, node->id,
			       cluster_node_state_name(node->state),
			       node->self);
	return item ? list_add(ctx, item) != 0 : true;
}


static int nodes(struct odict **odp, void *arg)
{
	struct list_ctx ctx = {NULL, 0, 0};
	struct odict *self = NULL;
	(void)arg;

	ctx.err = odict_alloc(&ctx.list, 16);
	if (ctx.err)
		return ctx.err;

	if (cluster_enabled()) {
		(void)cluster_node_apply(node_handler, &ctx);
	}
	else {
		ctx.err = node_odict(&self, ep.cfg->node_id, "up", true);
		if (!ctx.err)
			(void)list_add(&ctx, self);
	}

	return list_end(&ctx, odp);
}


/** Configured backups of a tag are not known cluster-wide; left out. */
static int shtag_odict(struct odict **odp, const char *name, bool mine,
		       uint64_t epoch, const char *holder)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "name", ODICT_STRING, name);
	err |= odict_entry_add(od, "mine", ODICT_BOOL, mine);
	err |= odict_entry_add(od, "epoch", ODICT_INT, (int64_t)epoch);
	if (holder && holder[0])
		err |= odict_entry_add(od, "active", ODICT_STRING, holder);
	err |= odict_entry_add(od, "calls", ODICT_INT,
			       (int64_t)count_dialogs(ep.cfg->node_id, name));
	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static bool shtag_handler(const char *name, bool active, uint64_t epoch,
			  const char *holder, void *arg)
{
	struct list_ctx *ctx = arg;
	struct odict *item = NULL;

	ctx->err |= shtag_odict(&item, name, active, epoch, holder);
	return item ? list_add(ctx, item) != 0 : true;
}


static int shtags(struct odict **odp, void *arg)
{
	struct list_ctx ctx = {NULL, 0, 0};
	struct odict *item;
	(void)arg;

	ctx.err = odict_alloc(&ctx.list, 16);
	if (ctx.err)
		return ctx.err;

	if (cluster_enabled()) {
		shtag_apply(shtag_handler, &ctx);
	}
	else {
		/* single node: every configured tag is ours */
		for (size_t i = 0; i < ep.cfg->shtagc && !ctx.err; i++) {
			item = NULL;
			ctx.err = shtag_odict(&item, ep.cfg->shtag[i].name,
					      true, 0, ep.cfg->node_id);
			if (!ctx.err)
				(void)list_add(&ctx, item);
		}
	}

	return list_end(&ctx, odp);
}


struct dialogs_ctx {
	struct list_ctx list;
	const char *tag;
	uint32_t limit;
};


static bool dialogs_handler(struct dialog *dlg, void *arg)
{
	struct dialogs_ctx *ctx = arg;
	struct odict *item;
	char did[DID_STRSZ];

	if (ctx->tag && str_cmp(dlg->shtag, ctx->tag))
		return false;

	if (odict_alloc(&item, 8)) {
		ctx->list.err = ENOMEM;
		return true;
	}

	(void)re_snprintf(did, sizeof(did), "%016llx",
			  (unsigned long long)dlg->did);
	ctx->list.err |= odict_entry_add(item, "did", ODICT_STRING, did);
	ctx->list.err |= odict_entry_add(item, "call_id", ODICT_STRING,
					 dlg->callid ? dlg->callid : "");
	ctx->list.err |= odict_entry_add(item, "tag", ODICT_STRING,
					 dlg->shtag ? dlg->shtag : "");
	ctx->list.err |= odict_entry_add(item, "state", ODICT_STRING,
					 dialog_state_name(dlg->state));
	ctx->list.err |= odict_entry_add(item, "owner", ODICT_STRING,
					 dlg->owner ? dlg->owner : "");

	return list_add(&ctx->list, item) != 0 ||
		(ctx->limit && ctx->list.i >= ctx->limit);
}


static int dialogs(struct odict **odp, const char *tag, uint32_t limit,
		   void *arg)
{
	struct dialogs_ctx ctx = {{NULL, 0, 0}, tag, limit};
	(void)arg;

	ctx.list.err = odict_alloc(&ctx.list.list, 64);
	if (ctx.list.err)
		return ctx.list.err;

	(void)dialog_apply(dialogs_handler, &ctx);

	return list_end(&ctx.list, odp);
}


/* ---- stats for on_tick ------------------------------------------- */


static int stats_entry(struct odict *parent, const char *key,
		       const char *field, const char *value, uint32_t calls)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 4);
	if (err)
		return err;

	if (field)
		err |= odict_entry_add(od, field, ODICT_STRING, value);
	err |= odict_entry_add(od, "calls", ODICT_INT, (int64_t)calls);
	if (!err)
		err = odict_entry_add(parent, key, ODICT_OBJECT, od);

	mem_deref(od);
	return err;
}


static bool stats_node_handler(const struct cluster_node *node, void *arg)
{
	return 0 != stats_entry(arg, node->id, "state",
				cluster_node_state_name(node->state),
				count_dialogs(node->id, NULL));
}


static bool stats_tag_handler(const char *name, bool active, uint64_t epoch,
			      const char *holder, void *arg)
{
	(void)active;
	(void)epoch;

	return 0 != stats_entry(arg, name, "active", holder ? holder : "",
				count_dialogs(ep.cfg->node_id, name));
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


static int stats(struct odict **odp, void *arg)
{
	struct odict *od, *nodes_od = NULL, *tags_od = NULL;
	int err;
	(void)arg;

	err  = odict_alloc(&od, 8);
	err |= odict_alloc(&nodes_od, 16);
	err |= odict_alloc(&tags_od, 16);
	if (err)
		goto out;

	if (cluster_enabled()) {
		(void)cluster_node_apply(stats_node_handler, nodes_od);
		shtag_apply(stats_tag_handler, tags_od);
	}
	else {
		err |= stats_entry(nodes_od, ep.cfg->node_id, "state", "up",
				   count_dialogs(NULL, NULL));
		for (size_t i = 0; i < ep.cfg->shtagc; i++)
			err |= stats_entry(tags_od, ep.cfg->shtag[i].name,
					   "active", ep.cfg->node_id,
					   count_dialogs(NULL,
							 ep.cfg->shtag[i].name));
	}

	err |= odict_entry_add(od, "node", ODICT_STRING, ep.cfg->node_id);
	err |= odict_entry_add(od, "cps", ODICT_DOUBLE, cps_sample());
	err |= odict_entry_add(od, "calls", ODICT_INT,
			       (int64_t)count_dialogs(ep.cfg->node_id, NULL));
	err |= odict_entry_add(od, "nodes", ODICT_OBJECT, nodes_od);
	err |= odict_entry_add(od, "tags", ODICT_OBJECT, tags_od);

 out:
	mem_deref(nodes_od);
	mem_deref(tags_od);
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
		(void)odict_entry_add(od, "tag", ODICT_STRING, name);
		(void)odict_entry_add(od, "active", ODICT_BOOL, active);
		(void)odict_entry_add(od, "epoch", ODICT_INT, (int64_t)epoch);
		if (holder)
			(void)odict_entry_add(od, "holder", ODICT_STRING,
					      holder);
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
	struct rehome_job *job = NULL;
	struct pending *p;
	int err;
	(void)arg;

	err = opts_decode(&opts, req->mode, req->body, req->rate);
	if (err)
		return err;

	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = rehome_tag(&job, req->tag, &opts, job_done, p);
	if (err)
		mem_deref(p);

	return err;
}


static int move(const struct policy_move *req, policy_done_h *doneh,
		void *done_arg, void *arg)
{
	struct rehome_opts opts;
	struct rehome_job *job = NULL;
	struct pending *p;
	int err;
	(void)arg;

	err = opts_decode(&opts, NULL, NULL, 0);
	if (err)
		return err;

	err = pending_alloc(&p, doneh, done_arg);
	if (err)
		return err;

	err = rehome_move(&job, req->tag, req->to, req->count, req->percent,
			  &opts, job_done, p);
	if (err)
		mem_deref(p);

	return err;
}


/* ---- events --------------------------------------------------------- */


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
 * policy may choose the sharing tag, the next hop, or reject.
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

	memset(&d, 0, sizeof(d));
	if (policy_initial_invite(msg, lsnr_tag, &d))
		return;

	str_ncpy(rt->shtag, d.shtag, sizeof(rt->shtag));
	str_ncpy(rt->target, d.target, sizeof(rt->target));
	rt->reject = d.scode;
	str_ncpy(rt->reason, d.reason, sizeof(rt->reason));
}


int engine_policy_init(const struct rh_conf *cfg, const char *libdir)
{
	static const struct policy_ops ops = {
		.node_id = node_id,
		.nodes   = nodes,
		.shtags  = shtags,
		.dialogs = dialogs,
		.stats   = stats,
		.take    = take,
		.release = release,
		.rehome  = rehome,
		.move    = move,
	};
	int err;

	ep.cfg = cfg;

	err = policy_init(cfg->policy, libdir, &ops);
	if (err)
		return err;

	cluster_set_node_handler(node_changed, NULL);
	rehome_set_done_handler(rehome_finished, NULL);
	proxy_set_route_handler(route_invite, NULL);

	/* this node starts up: no state change of the cluster's will say so */
	(void)policy_node_event(cfg->node_id, POLICY_NODE_UP);

	return 0;
}


void engine_policy_close(void)
{
	proxy_set_route_handler(NULL, NULL);
	rehome_set_done_handler(NULL, NULL);
	cluster_set_node_handler(NULL, NULL);
	policy_close();
	memset(&ep, 0, sizeof(ep));
}
