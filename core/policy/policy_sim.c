/**
 * @file policy_sim.c  Dry run of a policy on the live state (POST /v1/policy/simulate)
 *
 * A dry run loads a policy file (a candidate, or the running one) into a
 * second state beside the running policy, exactly as a reload would, and
 * feeds it one event: a node down, a node up, a tick, or an initial
 * INVITE made from a From, To and Request-URI. The state is built on its
 * own struct policy_ops, which is the whole trick: the `rehome` module
 * (policy_bindings.c) and the hook calls (policy_hooks.c) are the very
 * ones the running policy uses, but behind this ops table the views
 * (nodes, tags, dialogs, stats) are the engine's own, read live, with the
 * event's node shown in the state the event gives it, while the actions
 * (take, release, rehome, move, move_media) and the INVITE's decision are
 * recorded instead of done, each with the number of dialogs it would touch, and
 * the policy's log lines are kept for the report. Nothing reaches the
 * engine's actions, so nothing is sent and nothing changes in Redis; the
 * running policy is not called at all (so its on_unload is not either:
 * the candidate starts with on_load(nil)). The second state is dropped at
 * the end of the request, with whatever timers or done functions it
 * registered: those never run.
 *
 * The dialogs an action would touch are counted from the dialog views
 * the policy itself sees (one walk per tag, kept for the run): take, the
 * tag's dialogs; release, those of it this node owns; rehome, its
 * confirmed dialogs owned elsewhere; move, up to count (or percent) of
 * the confirmed ones owned here. The engine decides the same from its own
 * bookkeeping, which may differ by the calls in flight.
 *
 * Trade-off: the run is synchronous on the event loop, like any hook, and
 * costs a load (the budget bounds it); the report is capped at
 * SIM_ACTIONS_MAX actions and SIM_LOG_MAX log lines.
 */
#include <string.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include "log.h"
#include "json.h"
#include "ctl.h"
#include "policy.h"
#include "policy_int.h"

enum {
	SIM_ACTIONS_MAX = 1000,  /* actions kept in a report */
	SIM_LOG_MAX     = 100,   /* log lines kept in a report */
	URI_MAX         = 256,   /* From, To, Request-URI of a sample INVITE */
	INVITE_SZ       = 1024 + 3 * URI_MAX,
};

static const char *const event_names[] = {
	"node_down", "node_up", "tick", "invite"
};

/** Dialog counts of one tag, as the actions would find them */
struct tally {
	struct le le;
	char *tag;
	uint32_t total;          /* not ended                          */
	uint32_t mine;           /* not ended, owned here              */
	uint32_t conf_mine;      /* confirmed, owned here              */
	uint32_t conf_other;     /* confirmed, owned by another node   */
};

/** One dry run: what the candidate sees and what it would do */
struct sim {
	struct policy_ops ops;   /* the candidate's engine: this file */
	const struct policy_ops *engine;  /* the real one, for the views */
	const struct policy_sim_req *req;
	const char *me;
	struct odict *actions;
	struct odict *log;
	uint32_t nactions, nlog;
	bool truncated;
	struct list tallies;
};


static void tally_destructor(void *arg)
{
	struct tally *t = arg;

	list_unlink(&t->le);
	mem_deref(t->tag);
}


/* ---- the views: the engine's, with the event's node ---- */

static const char *sim_node_id(void *arg)
{
	const struct sim *sim = arg;

	return sim->me;
}


/** The state the event shows its node in; NULL: nothing to show */
static const char *shown_state(const struct sim *sim)
{
	switch (sim->req->event) {

	case POLICY_SIM_NODE_DOWN: return "down";
	case POLICY_SIM_NODE_UP:   return "up";
	default:                   return NULL;
	}
}


static int str_set(struct odict *od, const char *key, const char *val)
{
	odict_entry_del(od, key);
	return odict_entry_add(od, key, ODICT_STRING, val);
}


/** In a nodes() list: the node in its shown state, added if unknown */
static int nodes_patch(struct odict *list, const char *id, const char *state,
		       bool self)
{
	struct odict *od;
	struct le *le;
	int err;

	LIST_FOREACH(&list->lst, le) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_OBJECT &&
		    !str_cmp(odict_string(e->u.odict, "id"), id))
			return str_set(e->u.odict, "state", state);
	}

	err = odict_alloc(&od, 4);
	if (err)
		return err;

	err  = json_str_add(od, "id", id);
	err |= json_str_add(od, "state", state);
	err |= json_bool_add(od, "self", self);
	err |= json_int_add(od, "calls", 0);
	if (err) {
		mem_deref(od);
		return err;
	}

	return json_array_add(list, (uint32_t)odict_count(list, false),
			      ODICT_OBJECT, od);
}


static int sim_nodes(struct odict **odp, void *arg)
{
	const struct sim *sim = arg;
	const struct policy_ops *e = sim->engine;
	const char *state = shown_state(sim);
	int err;

	if (!e->nodes)
		return ENOSYS;

	err = e->nodes(odp, e->arg);
	if (err || !state)
		return err;

	err = nodes_patch(*odp, sim->req->node, state,
			  !str_cmp(sim->req->node, sim->me));
	if (err)
		*odp = mem_deref(*odp);

	return err;
}


static int sim_shtags(struct odict **odp, void *arg)
{
	const struct sim *sim = arg;
	const struct policy_ops *e = sim->engine;

	/* a tag shows its holder, up or down: nothing to change */
	return e->shtags ? e->shtags(odp, e->arg) : ENOSYS;
}


static int sim_dialogs(struct odict **odp, const char *tag, uint32_t limit,
		       void *arg)
{
	const struct sim *sim = arg;
	const struct policy_ops *e = sim->engine;

	return e->dialogs ? e->dialogs(odp, tag, limit, e->arg) : ENOSYS;
}


/** In on_tick's stats: stats.nodes[id].state, the node added if unknown */
static int stats_patch(struct odict *stats, const char *id, const char *state)
{
	const struct odict_entry *nodes = odict_lookup(stats, "nodes");
	const struct odict_entry *node;
	struct odict *od;
	int err;

	if (!nodes || nodes->type != ODICT_OBJECT)
		return 0;

	node = odict_lookup(nodes->u.odict, id);
	if (node && node->type == ODICT_OBJECT)
		return str_set(node->u.odict, "state", state);

	err = odict_alloc(&od, 4);
	if (err)
		return err;

	err  = json_str_add(od, "state", state);
	err |= json_int_add(od, "calls", 0);
	if (err) {
		mem_deref(od);
		return err;
	}

	odict_entry_del(nodes->u.odict, id);
	return json_child_add(nodes->u.odict, id, ODICT_OBJECT, od);
}


static int sim_stats(struct odict **odp, void *arg)
{
	const struct sim *sim = arg;
	const struct policy_ops *e = sim->engine;
	const char *state = shown_state(sim);
	int err;

	if (!e->stats)
		return ENOSYS;

	err = e->stats(odp, e->arg);
	if (err || !state)
		return err;

	err = stats_patch(*odp, sim->req->node, state);
	if (err)
		*odp = mem_deref(*odp);

	return err;
}


static void sim_log(enum log_level level, const char *msg, void *arg)
{
	struct sim *sim = arg;
	struct odict *od = NULL;
	int err;

	if (sim->nlog >= SIM_LOG_MAX) {
		sim->truncated = true;
		return;
	}

	err  = odict_alloc(&od, 2);
	err |= json_str_add(od, "level", log_level_name(level));
	err |= json_str_add(od, "msg", msg);
	if (err)
		mem_deref(od);
	else
		(void)json_array_add(sim->log, sim->nlog++, ODICT_OBJECT, od);
}


/* ---- the actions: recorded, with the dialogs they would touch ---- */

static void tally_count(struct tally *t, const struct odict *d,
			const char *me)
{
	const char *state = odict_string(d, "state");
	const bool mine = !str_cmp(odict_string(d, "owner"), me);

	if (!str_cmp(state, "ended"))
		return;

	t->total++;
	if (mine)
		t->mine++;
	if (!str_cmp(state, "confirmed")) {
		if (mine)
			t->conf_mine++;
		else
			t->conf_other++;
	}
}


/** The counts of a tag, one walk of its dialogs per run; NULL: no memory */
static const struct tally *tally_get(struct sim *sim, const char *tag)
{
	const struct policy_ops *e = sim->engine;
	struct odict *list = NULL;
	struct tally *t;
	struct le *le;

	LIST_FOREACH(&sim->tallies, le) {
		t = le->data;
		if (!str_cmp(t->tag, tag))
			return t;
	}

	t = mem_zalloc(sizeof(*t), tally_destructor);
	if (!t || str_dup(&t->tag, tag))
		return mem_deref(t);

	list_append(&sim->tallies, &t->le, t);
	if (!e->dialogs || e->dialogs(&list, tag, 0, e->arg))
		return t;  /* no view of the dialogs: none counted */

	LIST_FOREACH(&list->lst, le) {
		const struct odict_entry *d = le->data;

		if (d->type == ODICT_OBJECT)
			tally_count(t, d->u.odict, sim->me);
	}

	mem_deref(list);
	return t;
}


/** A new action {"action": name, "tag": tag}; NULL: no memory */
static struct odict *action_new(const char *name, const char *tag)
{
	struct odict *od;
	int err;

	if (odict_alloc(&od, 8))
		return NULL;

	err  = json_str_add(od, "action", name);
	err |= json_str_add(od, "tag", tag);

	return err ? mem_deref(od) : od;
}


/** Add the action with its "dialogs" count; the reference is taken over */
static int action_add(struct sim *sim, struct odict *od, int err,
		      uint32_t dialogs)
{
	if (!od)
		return ENOMEM;

	err |= json_int_add(od, "dialogs", dialogs);
	if (err) {
		mem_deref(od);
		return err;
	}

	if (sim->nactions >= SIM_ACTIONS_MAX) {
		sim->truncated = true;
		mem_deref(od);
		return 0;
	}

	return json_array_add(sim->actions, sim->nactions++, ODICT_OBJECT, od);
}


static int sim_take(const char *tag, policy_done_h *doneh, void *done_arg,
		    void *arg)
{
	struct sim *sim = arg;
	const struct tally *t = tally_get(sim, tag);
	(void)doneh;
	(void)done_arg;

	if (!t)
		return ENOMEM;

	return action_add(sim, action_new("take", tag), 0, t->total);
}


static int sim_release(const char *tag, void *arg)
{
	struct sim *sim = arg;
	const struct tally *t = tally_get(sim, tag);

	if (!t)
		return ENOMEM;

	return action_add(sim, action_new("release", tag), 0, t->mine);
}


static int sim_rehome(const struct policy_rehome *req, policy_done_h *doneh,
		      void *done_arg, void *arg)
{
	struct sim *sim = arg;
	const struct tally *t = tally_get(sim, req->tag);
	struct odict *od = action_new("rehome", req->tag);
	int err = 0;
	(void)doneh;
	(void)done_arg;

	if (!t) {
		mem_deref(od);
		return ENOMEM;
	}

	if (od) {
		err |= json_str_add(od, "mode", req->mode);
		err |= json_str_add(od, "body", req->body);
		if (req->rate)
			err |= json_int_add(od, "rate", req->rate);
	}

	return action_add(sim, od, err, t->conf_other);
}


static int sim_move(const struct policy_move *req, policy_done_h *doneh,
		    void *done_arg, void *arg)
{
	struct sim *sim = arg;
	const struct tally *t = tally_get(sim, req->tag);
	struct odict *od = action_new("move", req->tag);
	uint32_t n;
	int err = 0;
	(void)doneh;
	(void)done_arg;

	if (!t) {
		mem_deref(od);
		return ENOMEM;
	}

	n = req->count ? min(req->count, t->conf_mine)
		       : (uint32_t)((uint64_t)t->conf_mine * req->percent / 100);
	if (od) {
		err |= json_str_add(od, "to", req->to);
		if (req->count)
			err |= json_int_add(od, "count", req->count);
		else
			err |= json_int_add(od, "percent", req->percent);
	}

	return action_add(sim, od, err, n);
}


/** The calls anchored in `relay` on this node, as the relays list says */
static uint32_t relay_calls(const struct sim *sim, const char *relay)
{
	const struct policy_ops *eng = sim->engine;
	struct odict *arr = NULL;
	uint64_t calls = 0;
	struct le *le;

	if (!eng->relays || eng->relays(&arr, eng->arg))
		return 0;

	for (le = arr->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_OBJECT &&
		    !str_cmp(odict_string(e->u.odict, "relay"), relay))
			(void)odict_get_number(e->u.odict, &calls, "calls");
	}

	mem_deref(arr);
	return (uint32_t)calls;
}


static int sim_relays(struct odict **odp, void *arg)
{
	const struct sim *sim = arg;

	return sim->engine->relays ?
		sim->engine->relays(odp, sim->engine->arg) : ENOSYS;
}


static int sim_move_media(const struct policy_move_media *req,
			  policy_done_h *doneh, void *done_arg, void *arg)
{
	struct sim *sim = arg;
	struct odict *od = action_new("move_media", req->tag);
	uint32_t n = relay_calls(sim, req->from);
	int err = 0;
	(void)doneh;
	(void)done_arg;

	if (od) {
		err |= json_str_add(od, "from", req->from);
		err |= json_str_add(od, "to", req->to);
		if (req->count) {
			err |= json_int_add(od, "count", req->count);
			n = min(n, req->count);
		}
	}

	return action_add(sim, od, err, n);
}


/** The INVITE's decision as an action: what the engine would do with it */
static int decision_add(struct sim *sim, const struct policy_decision *d)
{
	struct odict *od = action_new("invite", NULL);
	int err = 0;

	if (!od)
		return ENOMEM;

	if (d->scode) {
		err |= json_int_add(od, "reject", d->scode);
		err |= json_str_add(od, "reason", d->reason);
	}
	if (d->shtag[0])
		err |= json_str_add(od, "shtag", d->shtag);
	if (d->target[0])
		err |= json_str_add(od, "target", d->target);
	if (d->no_media)
		err |= json_bool_add(od, "media", false);
	if (!d->scode && !d->shtag[0] && !d->target[0] && !d->no_media)
		err |= json_bool_add(od, "default", true);

	return action_add(sim, od, err, d->scode ? 0 : 1);
}


/* ---- the event ---- */

/** A URI or name-addr for a header of the sample INVITE */
static int uri_check(const char *what, const char *uri, bool spaces,
		     char *errbuf, size_t errsz)
{
	if (!str_isset(uri) || strlen(uri) > URI_MAX) {
		(void)re_snprintf(errbuf, errsz, "invite: %s must have 1 to %d "
				  "characters", what, URI_MAX);
		return EBADMSG;
	}

	for (const char *p = uri; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f ||
		    (*p == ' ' && !spaces)) {
			(void)re_snprintf(errbuf, errsz, "invite: %s holds a "
					  "forbidden character", what);
			return EBADMSG;
		}
	}

	return 0;
}


/** A name-addr as given, or the bare URI put in <> */
static int addr_print(struct re_printf *pf, void *arg)
{
	const char *addr = arg;

	return re_hprintf(pf, strchr(addr, '<') ? "%s" : "<%s>", addr);
}


/** The sample INVITE, as if it had come in on a listener */
static int invite_build(struct sip_msg **msgp, const struct policy_sim_req *req,
			char *errbuf, size_t errsz)
{
	const char *ruri = req->ruri ? req->ruri : req->to;
	struct pl pl;
	struct uri uri;
	struct mbuf *mb;
	int err;

	err  = uri_check("from", req->from, true, errbuf, errsz);
	err |= uri_check("to", req->to, true, errbuf, errsz);
	if (!err && req->ruri)
		err = uri_check("ruri", req->ruri, false, errbuf, errsz);
	if (err)
		return EBADMSG;

	/* a To name-addr is no Request-URI: take the URI inside it */
	pl_set_str(&pl, ruri);
	if (!req->ruri && strchr(ruri, '<'))
		(void)re_regex(ruri, strlen(ruri), "<[^>]+>", &pl);
	if (uri_decode(&uri, &pl)) {
		(void)re_snprintf(errbuf, errsz, "invite: '%r' is not a SIP "
				  "URI", &pl);
		return EBADMSG;
	}

	mb = mbuf_alloc(INVITE_SZ);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb,
			  "INVITE %r SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsim%x"
			  "\r\n"
			  "Max-Forwards: 70\r\n"
			  "From: %H;tag=simulate\r\n"
			  "To: %H\r\n"
			  "Call-ID: simulate-%x@rehome\r\n"
			  "CSeq: 1 INVITE\r\n"
			  "Content-Length: 0\r\n"
			  "\r\n",
			  &pl, rand_u32(), addr_print, req->from,
			  addr_print, req->to, rand_u32());
	mb->pos = 0;
	if (!err)
		err = sip_msg_decode(msgp, mb);
	mem_deref(mb);
	if (err) {
		(void)re_snprintf(errbuf, errsz, "invite: not a SIP request "
				  "with these URIs (%m)", err);
		return EBADMSG;
	}

	(*msgp)->tp = SIP_TRANSP_UDP;
	if (req->source ? sa_decode(&(*msgp)->src, req->source,
				    strlen(req->source))
			: sa_set_str(&(*msgp)->src, "127.0.0.1", 5060)) {
		(void)re_snprintf(errbuf, errsz, "invite: source must be "
				  "IP:PORT");
		*msgp = mem_deref(*msgp);
		return EBADMSG;
	}

	return 0;
}


/** Feed the event to the candidate; *hookp: the hook it calls */
static int event_run(struct sim *sim, struct policy_state *ps,
		     const struct sip_msg *msg, enum policy_hook *hookp)
{
	struct policy_hook_arg ha = {POLICY_HOOK_TICK, NULL, NULL};
	struct odict *stats = NULL;
	struct policy_decision d;
	struct policy_invite_ctx ic = {msg, sim->req->listener, &d};
	int err;

	switch (sim->req->event) {

	case POLICY_SIM_NODE_DOWN:
		ha.hook = POLICY_HOOK_NODE_DOWN;
		ha.str = sim->req->node;
		break;

	case POLICY_SIM_NODE_UP:
		ha.hook = POLICY_HOOK_NODE_UP;
		ha.str = sim->req->node;
		break;

	case POLICY_SIM_TICK:
		/* without stats the policy still gets its tick, as the host's */
		if (sim_stats(&stats, sim))
			stats = mem_deref(stats);
		ha.od = stats;
		break;

	case POLICY_SIM_INVITE:
		*hookp = POLICY_HOOK_INITIAL_INVITE;
		memset(&d, 0, sizeof(d));
		if (ps->hook[POLICY_HOOK_INITIAL_INVITE] == LUA_NOREF)
			return decision_add(sim, &d);

		err = policy_state_run(ps, policy_invite_call, &ic);
		if (err)
			return err;

		return decision_add(sim, &d);
	}

	*hookp = ha.hook;
	err = ps->hook[ha.hook] == LUA_NOREF ? 0
		: policy_state_run(ps, policy_hook_arg_call, &ha);
	mem_deref(stats);

	return err;
}


/* ---- the run and its report ---- */

static int report(struct odict **odp, struct sim *sim, const char *path,
		  struct policy_state *ps, enum policy_hook hook, int err)
{
	const struct policy_sim_req *req = sim->req;
	struct odict *od;
	int e;

	e = odict_alloc(&od, 16);
	if (e)
		return e;

	e |= json_str_add(od, "policy", path);
	e |= json_str_add(od, "node_id", sim->me);
	e |= json_str_add(od, "event", event_names[req->event]);
	if (req->event == POLICY_SIM_NODE_DOWN ||
	    req->event == POLICY_SIM_NODE_UP)
		e |= json_str_add(od, "node", req->node);
	e |= json_str_add(od, "hook", policy_hook_name(hook));
	e |= json_bool_add(od, "called", ps->hook[hook] != LUA_NOREF);
	e |= json_child_add(od, "actions", ODICT_ARRAY,
			    mem_ref(sim->actions));
	e |= json_child_add(od, "log", ODICT_ARRAY, mem_ref(sim->log));
	e |= json_bool_add(od, "truncated", sim->truncated);
	if (err)
		e |= json_str_add(od, "error", ps->err);

	if (e)
		mem_deref(od);
	else
		*odp = od;

	return e;
}


static int req_check(const struct policy_sim_req *req, char *errbuf,
		     size_t errsz)
{
	if ((unsigned)req->event >= ARRAY_SIZE(event_names)) {
		str_ncpy(errbuf, "unknown event", errsz);
		return EBADMSG;
	}

	if ((req->event == POLICY_SIM_NODE_DOWN ||
	     req->event == POLICY_SIM_NODE_UP) && !str_isset(req->node)) {
		(void)re_snprintf(errbuf, errsz, "node: the node of %s",
				  event_names[req->event]);
		return EBADMSG;
	}

	return 0;
}


int policy_simulate(struct odict **odp, const struct policy_sim_req *req,
		    char *errbuf, size_t errsz)
{
	const struct policy_ops *engine;
	const char *path, *libdir;
	struct policy_state *ps = NULL;
	struct sip_msg *msg = NULL;
	enum policy_hook hook = POLICY_HOOK_TICK;
	struct sim sim;
	int err;

	if (!odp || !req || !errbuf || !errsz)
		return EINVAL;

	policy_host(&engine, &path, &libdir);
	path = req->file ? req->file : path;
	if (!libdir || !path) {
		str_ncpy(errbuf, "no policy configured", errsz);
		return ENOENT;
	}

	err = req_check(req, errbuf, errsz);
	if (!err && req->event == POLICY_SIM_INVITE)
		err = invite_build(&msg, req, errbuf, errsz);
	if (err)
		return err;

	memset(&sim, 0, sizeof(sim));
	sim.ops = (struct policy_ops){
		.node_id = sim_node_id,
		.nodes   = sim_nodes,
		.shtags  = sim_shtags,
		.dialogs = sim_dialogs,
		.stats   = sim_stats,
		.take    = sim_take,
		.release = sim_release,
		.rehome  = sim_rehome,
		.move    = sim_move,
		.relays  = sim_relays,
		.move_media = sim_move_media,
		.log     = sim_log,
		.arg     = &sim,
	};
	sim.engine = engine;
	sim.req = req;
	sim.me = engine->node_id ? engine->node_id(engine->arg) : "";
	err  = odict_alloc(&sim.actions, 16);
	err |= odict_alloc(&sim.log, 16);
	if (err)
		goto out;

	/* loaded and started as a reload would, errors reported the same */
	err = policy_state_load(&ps, path, libdir, &sim.ops, errbuf, errsz);
	if (!err)
		err = policy_handover(ps, NULL, errbuf, errsz);
	if (err)
		goto out;

	err = event_run(&sim, ps, msg, &hook);
	log_info("policy", "dry run of %s: %s%s%s, %u action(s)%s", path,
		 event_names[req->event], req->node ? " " : "",
		 req->node ? req->node : "", sim.nactions,
		 err ? " before an error" : "");
	err = report(odp, &sim, path, ps, hook, err);

 out:
	mem_deref(ps);
	mem_deref(msg);
	mem_deref(sim.actions);
	mem_deref(sim.log);
	list_flush(&sim.tallies);

	return err;
}


/** An event by its API name (node_down, node_up, tick, invite) */
int policy_sim_event_decode(enum policy_sim_event *evp, const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(event_names); i++) {
		if (!strcmp(name, event_names[i])) {
			*evp = (enum policy_sim_event)i;
			return 0;
		}
	}

	return EINVAL;
}
