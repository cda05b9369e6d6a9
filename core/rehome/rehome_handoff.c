/**
 * @file rehome_handoff.c  Re-homing between nodes: move, drain and take
 *
 * move and drain hand dialogs to another node, one owner per dialog. The
 * replication fences every write with the dialog's sharing tag, so a
 * subset of a tag cannot change owner by itself: the node taking calls
 * relabels each one, as it moves it, to a tag it holds: the base tag if it
 * holds that, else the sub-tag "<base>.<node>" (the base being the tag
 * without a ".<sender>" suffix), taken with a compare-and-set first. Its
 * first replicated write with the new tag and owner replaces the sender's
 * copy everywhere; the sender stops serving the dialog then. Until then
 * the dialog is marked busy (locked: no other job of this node takes it),
 * and the sender keeps relaying, the endpoints' own re-INVITEs included:
 * nothing is pending here, so nothing is glare (dialog_state.c); if one
 * crosses the taker's re-INVITE, the endpoint answers one of them 491.
 * Requests travel as signed messages on "<cluster>:rehome": "take" (the
 * dids, mode, body, rate) and "results" (outcomes by index, every
 * RESULTS_MS), so the asking node's job shows progress and per-dialog
 * outcomes; the receiver paces, with a job of its own (kind "take"). A
 * BYE the sender relays while the taker's copy replaces its own would end
 * the call on a copy nobody announces: "bye" tells the taker instead.
 * The three kinds are defined here as tables of operations (struct
 * rehome_job_ops) that the job code in rehome.c runs.
 *
 * drain(to) refuses new INVITEs with 503 and Retry-After (a 3xx would
 * replace the Request-URI with the other node's address, which an
 * R-URI-routed proxy cannot use and which tells every caller about the
 * cluster's insides; a 503 is what RFC 3263 clients and upstream proxies
 * already treat as "try the next server"), then hands over every confirmed
 * call, again as early ones get answered, until none is left. The node
 * refuses new calls until undrain (or a restart: the flag is not kept);
 * undrain also stops the drains still running from handing over more
 * calls: each ends once the calls already handed over have an outcome.
 *
 * Trade-offs: sub-tags are real tags, shown in the status, and a fail-over
 * must take them too; a node that took dialogs and then says nothing for
 * QUIET_MS fails them on the asking side, although it may still move them.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "json.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "rehome.h"
#include "rehome_int.h"

enum {
	QUIET_MS        = 60000,  /* move: no results this long = lost */
	DRAIN_SCAN_MS   = 500,    /* drain: look for newly answered calls */
	DRAIN_RETRY_S   = 30,     /* Retry-After of a draining node's 503 */
	RESULTS_MS      = 100,    /* take: results sent at most this often */
	JSON_DEPTH      = 4,
	CHAN_SZ         = 128,    /* "<cluster>:rehome" */
};

/** A did a drain handed over already */
struct sent {
	struct le he;
	uint64_t did;
};

static char chan[CHAN_SZ];        /* "<cluster>:rehome"; "" without one */
static bool draining;             /* new INVITEs get 503 */


/** Served by this node: neither a replica nor owned by another node */
static bool served_here(const struct dialog *dlg)
{
	return !dlg->replica && !str_cmp(dlg->owner, rehome_node_id());
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
		err = redis_publish(chan, mb->buf, mb->end, NULL,
				    NULL);

	mem_deref(mb);
	return err;
}


static int msg_alloc(struct odict **odp, const char *op, const char *to,
		     uint32_t job)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 16);
	if (err)
		return err;

	err |= json_str_add(od, "op", op);
	err |= json_str_add(od, "from", rehome_node_id());
	err |= json_str_add(od, "to", to);
	err |= json_int_add(od, "job", job);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static void handoff_mark(struct rehome_job *job, uint32_t idx)
{
	struct rehome_item *it = &job->itemv[idx];
	struct dialog *dlg = dialog_lookup(it->did);

	if (!dialog_lock(dlg, DIALOG_LOCK_HANDOFF, job))
		it->dlg = mem_ref(dlg);
}


/**
 * The dialog is no longer on its way out (if it is still ours); kept
 * when a BYE broke the lock, for byes_send().
 */
static void handoff_clear(struct rehome_job *job, uint32_t idx)
{
	struct rehome_item *it = &job->itemv[idx];

	if (!dialog_unlock(it->dlg, job))
		it->dlg = mem_deref(it->dlg);
}


/* A BYE relayed here, and our copy replaced or gone since */
static bool bye_passed(const struct rehome_job *job,
		       const struct rehome_item *it)
{
	return it->dlg && !dialog_locked_by(it->dlg, DIALOG_LOCK_HANDOFF, job)
		&& dialog_lookup(it->did) != it->dlg;
}


/*
 * A BYE relayed here broke the lock of a dialog on its way out (proxy.c).
 * If the taker's copy replaced ours before the BYE's answer came, our end
 * of the call is not announced (ours is a replica then), and the taker
 * would go on moving a call that is over, and keep it: tell it, once per
 * dialog, after the replacement (before it, the taker does not serve the
 * dialog yet).
 */
static void byes_send(struct rehome_job *job)
{
	struct odict *od = NULL, *dids = NULL;
	uint32_t i, n = 0;
	int err;

	for (i = 0; i < job->itemc && !bye_passed(job, &job->itemv[i]); i++)
		;
	if (i == job->itemc)
		return;

	err  = msg_alloc(&od, "bye", job->node, job->id);
	err |= odict_alloc(&dids, 8);

	for (; i < job->itemc && !err; i++) {
		struct rehome_item *it = &job->itemv[i];
		char key[JSON_INDEX_SZ], did[DID_STRSZ];

		if (!bye_passed(job, it))
			continue;

		it->dlg = mem_deref(it->dlg);
		(void)re_snprintf(key, sizeof(key), "%u", n++);
		err  = did_encode(did, sizeof(did), it->did);
		err |= json_str_add(dids, key, did);
	}

	if (!err)
		err = odict_entry_add(od, "dids", ODICT_ARRAY, dids);
	if (!err)
		err = msg_send(od);
	if (err)
		log_warn("rehome", "job %u: BYEs to tell %s lost: %m", job->id,
			 job->node, err);

	mem_deref(dids);
	mem_deref(od);
}


/**
 * Ask job->node to take items [off, itemc). Until its copy replaces ours,
 * each dialog is marked busy, for this node's other jobs; its requests
 * are relayed as usual.
 */
static void handoff_send(struct rehome_job *job, uint32_t off)
{
	struct odict *od = NULL, *dids = NULL;
	int err;

	err  = msg_alloc(&od, "take", job->node, job->id);
	err |= odict_alloc(&dids, 64);
	err |= json_int_add(od, "off", off);
	err |= json_str_add(od, "mode", rehome_mode_name(job->opts.mode));
	err |= json_str_add(od, "body", rehome_body_name(job->opts.body));
	err |= json_int_add(od, "rate", job->opts.rate);

	for (uint32_t i = off; i < job->itemc && !err; i++) {
		char key[JSON_INDEX_SZ], did[DID_STRSZ];

		(void)re_snprintf(key, sizeof(key), "%u", i - off);
		err = did_encode(did, sizeof(did), job->itemv[i].did);
		err |= json_str_add(dids, key, did);
	}

	if (!err)
		err = odict_entry_add(od, "dids", ODICT_ARRAY, dids);
	if (!err)
		err = msg_send(od);

	if (err) {
		log_warn("rehome", "job %u: cannot ask %s to take %u dialogs: "
			 "%m", job->id, job->node, job->itemc - off, err);
		for (uint32_t i = off; i < job->itemc; i++)
			rehome_item_done(job, i, REHOME_FAILED, "redis");
	}
	else {
		for (uint32_t i = off; i < job->itemc; i++)
			handoff_mark(job, i);
		job->heard = tmr_jiffies();
	}

	mem_deref(dids);
	mem_deref(od);
}


/** A node that took dialogs has gone quiet or down: give up on them. */
static void remote_check(struct rehome_job *job, uint64_t now)
{
	const char *why;

	if (rehome_job_done_count(job) == job->itemc)
		return;

	if (!cluster_node_alive(job->node))
		why = "node_down";
	else if (rehome_since(now, job->heard) > QUIET_MS)
		why = "no_answer";
	else
		return;

	log_warn("rehome", "job %u: %s is %s: %u dialogs not moved", job->id,
		 job->node, why, job->itemc - rehome_job_done_count(job));
	rehome_items_fail(job, why);
}


/** take: send the outcomes not reported yet to the asking node. */
static void results_flush(struct rehome_job *job)
{
	struct odict *od = NULL, *res = NULL;
	uint32_t n = 0;
	int err;

	job->flushed = tmr_jiffies();

	err  = msg_alloc(&od, "results", job->node, job->peer_job);
	err |= odict_alloc(&res, 64);

	for (uint32_t i = 0; i < job->itemc && !err; i++) {
		struct rehome_item *it = &job->itemv[i];
		struct odict *r = NULL;

		if (it->reported || it->outcome == REHOME_PENDING)
			continue;

		err  = odict_alloc(&r, 4);
		err |= json_int_add(r, "0", job->peer_off + i);
		err |= json_str_add(r, "1", rehome_outcome_name(it->outcome));
		err |= json_str_add(r, "2", it->reason);
		err |= json_array_add(res, n++, ODICT_ARRAY, r);
		it->reported = true;
	}

	if (!err && n)
		err = odict_entry_add(od, "r", ODICT_ARRAY, res);
	if (!err && n)
		err = msg_send(od);
	if (err)
		log_warn("rehome", "job %u: results to %s lost: %m", job->id,
			 job->node, err);

	mem_deref(res);
	mem_deref(od);
}


static const struct rehome_job_ops move_ops, drain_ops, take_ops;


/** move, drain: outcomes from the node that took the dialogs */
static void results_recv(const struct odict *od, const char *from)
{
	const struct odict_entry *r;
	struct rehome_job *job;
	uint64_t id = 0;
	struct le *le;

	(void)odict_get_number(od, &id, "job");
	job = (struct rehome_job *)rehome_job_find((uint32_t)id);
	r = odict_get_type(od, ODICT_ARRAY, "r");
	if (!job || !r || job->phase != REHOME_JOB_RUNNING ||
	    (job->ops != &move_ops && job->ops != &drain_ops) ||
	    str_cmp(job->node, from))
		return;

	job->heard = tmr_jiffies();

	LIST_FOREACH(&r->u.odict->lst, le) {
		const struct odict_entry *e = le->data;
		const struct odict_entry *v[3] = {NULL, NULL, NULL};
		enum rehome_outcome outcome;
		unsigned i = 0;
		struct le *l;

		if (e->type != ODICT_ARRAY)
			continue;

		LIST_FOREACH(&e->u.odict->lst, l) {
			if (i < ARRAY_SIZE(v))
				v[i++] = l->data;
		}

		if (i != 3 || v[0]->type != ODICT_INT ||
		    v[1]->type != ODICT_STRING ||
		    v[2]->type != ODICT_STRING ||
		    v[0]->u.integer < 0 ||
		    (uint64_t)v[0]->u.integer >= job->itemc ||
		    rehome_outcome_decode(&outcome, v[1]->u.str) ||
		    outcome == REHOME_PENDING)
			continue;

		rehome_item_done(job, (uint32_t)v[0]->u.integer, outcome,
				 v[2]->u.str);
	}

	rehome_tick_soon();
}


/**
 * The tag a dialog handed over by `from` gets here: its own if this node
 * holds it, else its base (without ".<from>") if held here, else the
 * sub-tag "<base>.<this node>".
 */
static int handover_tag(char **tagp, const char *tag, const char *from)
{
	struct pl base;
	size_t fl = str_len(from);
	char *b = NULL;
	int err;

	if (shtag_is_active(tag))
		return str_dup(tagp, tag);

	pl_set_str(&base, tag);
	if (base.l > fl + 1 && base.p[base.l - fl - 1] == '.' &&
	    !memcmp(base.p + base.l - fl, from, fl))
		base.l -= fl + 1;

	err = pl_strdup(&b, &base);
	if (err)
		return err;

	if (shtag_is_active(b)) {
		*tagp = b;
		return 0;
	}

	err = re_sdprintf(tagp, "%s.%s", b, rehome_node_id());
	mem_deref(b);
	return err;
}


static void take_opts(struct rehome_opts *opts, const struct odict *od)
{
	const char *s;
	uint64_t n = 0;

	memset(opts, 0, sizeof(*opts));

	s = odict_string(od, "mode");
	if (s)
		(void)rehome_mode_decode(&opts->mode, s);

	s = odict_string(od, "body");
	if (s)
		(void)rehome_body_decode(&opts->body, s);

	if (odict_get_number(od, &n, "rate"))
		opts->rate = (uint32_t)MIN(n, (uint64_t)REHOME_RATE_MAX);
}


/** Add one handed-over did; unknown here = failed at once. */
static int take_item(struct rehome_job *job, const char *hex)
{
	struct dialog *dlg;
	struct rehome_item *it;
	struct pl pl;
	uint64_t did;
	int err;

	pl_set_str(&pl, hex);
	if (did_decode(&did, &pl))
		return EBADMSG;

	err = rehome_job_add(job, did);
	if (err)
		return err;

	it = &job->itemv[job->itemc - 1];
	dlg = dialog_lookup(did);
	if (!dlg) {
		rehome_item_done(job, job->itemc - 1, REHOME_FAILED, "unknown");
		return 0;
	}

	err = handover_tag(&it->tag, dlg->shtag, job->node);
	if (!err)
		err = rehome_job_tag_add(job, it->tag);

	return err;
}


/** take: another node hands dialogs over; move them here. */
static void take_recv(const struct odict *od, const char *from)
{
	const struct odict_entry *dids;
	struct rehome_opts opts;
	struct rehome_job *job;
	uint64_t id = 0, off = 0;
	struct le *le;
	int err;

	dids = odict_get_type(od, ODICT_ARRAY, "dids");
	if (!dids || !odict_get_number(od, &id, "job"))
		return;

	(void)odict_get_number(od, &off, "off");
	take_opts(&opts, od);
	opts.force = true;    /* the tags are this node's own, or handed over */

	err = rehome_job_alloc(&job, &take_ops, &opts, NULL, NULL, NULL);
	if (err)
		return;

	job->peer_job = (uint32_t)id;
	job->peer_off = (uint32_t)off;
	err = str_dup(&job->node, from);

	LIST_FOREACH(&dids->u.odict->lst, le) {
		const struct odict_entry *e = le->data;

		if (!err && e->type == ODICT_STRING)
			err = take_item(job, e->u.str);
	}

	if (err) {
		log_warn("rehome", "take from %s: %m", from, err);
		rehome_job_abort(job, err, "error");
		return;
	}

	rehome_job_take_tags(job);
}


/**
 * bye: the node that handed dialogs over relayed their BYE: the calls are
 * over. Those served here now (our copy replaced the sender's) end here,
 * and their end is replicated; a call being moved learns it (call_aborted).
 */
static void bye_recv(const struct odict *od, const char *from)
{
	const struct odict_entry *dids;
	struct le *le;

	dids = odict_get_type(od, ODICT_ARRAY, "dids");
	if (!dids)
		return;

	LIST_FOREACH(&dids->u.odict->lst, le) {
		const struct odict_entry *e = le->data;
		struct dialog *dlg;
		uint64_t did;
		struct pl pl;

		if (e->type != ODICT_STRING)
			continue;

		pl_set_str(&pl, e->u.str);
		if (did_decode(&did, &pl))
			continue;

		dlg = dialog_lookup(did);
		if (!dlg || !served_here(dlg))
			continue;

		dialog_log(LOG_INFO, "rehome", dlg, "%s relayed its BYE while "
			   "handing it over: ended here", from);
		dialog_lock_break(dlg);
		(void)dialog_end(dlg);
	}

	rehome_tick_soon();
}


static void msg_handler(const struct pl *chan, const struct pl *msg,
			void *arg)
{
	struct odict *od = NULL;
	const char *op, *from;
	struct pl body;
	(void)chan;
	(void)arg;

	if (cluster_msg_open(&body, msg)) {
		log_debug("rehome", "message dropped: bad signature");
		return;
	}

	if (json_decode_odict(&od, 32, body.p, body.l, JSON_DEPTH))
		return;

	op = odict_string(od, "op");
	from = odict_string(od, "from");
	if (!from || str_cmp(odict_string(od, "to"), rehome_node_id()))
		goto out;

	if (!str_cmp(op, "take"))
		take_recv(od, from);
	else if (!str_cmp(op, "results"))
		results_recv(od, from);
	else if (!str_cmp(op, "bye"))
		bye_recv(od, from);

 out:
	mem_deref(od);
}


/* ---- move and drain ------------------------------------------------ */


/** An error text for a node that cannot take calls, or NULL */
const char *rehome_peer_check(const char *to)
{
	if (!chan[0])
		return "no cluster";
	if (!str_isset(to))
		return "no node to move to";
	if (!str_cmp(to, rehome_node_id()))
		return "cannot move calls to this node itself";
	if (!cluster_node_alive(to))
		return "node is not up";

	return NULL;
}


struct pick {
	struct rehome_job *job;
	uint32_t early;              /* drain: unanswered calls served here */
};


/** move: confirmed dialogs of the tag served here and not busy */
static bool pick_tag(struct dialog *dlg, void *arg)
{
	struct pick *pk = arg;

	if (dlg->state != DIALOG_CONFIRMED || dialog_locked(dlg) ||
	    !served_here(dlg) || str_cmp(dlg->shtag, pk->job->tag))
		return false;

	return rehome_job_add(pk->job, dlg->did) != 0;
}


/**
 * Hand `count` (or `percent`%) of the confirmed calls of `tag` this node
 * serves to node `to`, which moves them to itself at opts->rate.
 * ENOTSUP without a cluster, ENOENT when `to` is not up.
 */
int rehome_move(const char *tag, const char *to, uint32_t count,
		uint32_t percent, const struct rehome_opts *opts,
		rehome_done_h *readyh, rehome_done_h *doneh, void *arg)
{
	struct pick pk = {NULL, 0};
	uint32_t n;
	int err;

	if (!str_isset(tag) || !count == !percent || percent > 100)
		return EINVAL;
	if (rehome_peer_check(to))
		return chan[0] ? ENOENT : ENOTSUP;

	err = rehome_job_alloc(&pk.job, &move_ops, opts, readyh, doneh, arg);
	if (err)
		return err;

	err  = str_dup(&pk.job->tag, tag);
	err |= str_dup(&pk.job->node, to);
	if (!err && dialog_apply(pick_tag, &pk))
		err = ENOMEM;
	if (err) {
		mem_deref(pk.job);
		return err;
	}

	n = count ? count : (uint32_t)((uint64_t)pk.job->itemc * percent / 100);
	pk.job->itemc = MIN(n, pk.job->itemc);

	handoff_send(pk.job, 0);
	rehome_job_run(pk.job);
	return 0;
}


static bool sent_cmp(struct le *le, void *arg)
{
	const struct sent *s = le->data;

	return s->did == *(uint64_t *)arg;
}


/** drain: every served confirmed dialog not handed over yet */
static bool pick_all(struct dialog *dlg, void *arg)
{
	struct pick *pk = arg;
	struct sent *s;

	if (!served_here(dlg) || dialog_locked(dlg))
		return false;

	if (dlg->state == DIALOG_EARLY) {
		++pk->early;
		return false;
	}

	if (dlg->state != DIALOG_CONFIRMED ||
	    hash_lookup(pk->job->sent, (uint32_t)dlg->did, sent_cmp,
			&dlg->did))
		return false;

	s = mem_zalloc(sizeof(*s), NULL);
	if (!s)
		return true;

	s->did = dlg->did;
	hash_append(pk->job->sent, (uint32_t)dlg->did, &s->he, s);
	return rehome_job_add(pk->job, dlg->did) != 0;
}


/** Hand over what got answered since the last scan; done when none is. */
static void drain_scan(struct rehome_job *job)
{
	struct pick pk = {job, 0};
	uint32_t off = job->itemc;

	job->scanned = tmr_jiffies();
	(void)dialog_apply(pick_all, &pk);

	if (job->itemc > off)
		handoff_send(job, off);

	job->drained = job->itemc == off && !pk.early;
}


/* ---- the kinds: move, drain, take ------------------------------------ */


/** move: one pacing step; the node taking the dialogs paces them */
static void move_step(struct rehome_job *job, uint64_t now)
{
	byes_send(job);
	remote_check(job, now);
}


/** drain: also hand over what got answered since the last scan */
static void drain_step(struct rehome_job *job, uint64_t now)
{
	if (draining && rehome_since(now, job->scanned) >= DRAIN_SCAN_MS)
		drain_scan(job);

	byes_send(job);
	remote_check(job, now);
}


/** take: move the dialogs here, and tell the asker how it goes */
static void take_step(struct rehome_job *job, uint64_t now)
{
	rehome_job_pace(job, now);

	if (rehome_since(now, job->flushed) >= RESULTS_MS)
		results_flush(job);
}


/** move, drain: a dialog with an outcome is no longer on its way out */
static void handoff_item_done(struct rehome_job *job, uint32_t idx)
{
	handoff_clear(job, idx);
}


/** drain: a scan found nothing left to hand over, or undrain came */
static bool drain_settled(const struct rehome_job *job)
{
	return job->drained || !draining;
}


/** move, drain: the dialogs still on their way out stay here */
static void handoff_close(struct rehome_job *job)
{
	for (uint32_t i = 0; i < job->itemc; i++) {
		struct rehome_item *it = &job->itemv[i];

		(void)dialog_unlock(it->dlg, job);
		it->dlg = mem_deref(it->dlg);
	}
}


static void drain_close(struct rehome_job *job)
{
	handoff_close(job);
	hash_flush(job->sent);
	job->sent = mem_deref(job->sent);
}


static const struct rehome_job_ops move_ops = {
	.name      = "move",
	.peer      = "to",
	.step      = move_step,
	.item_done = handoff_item_done,
	.close     = handoff_close,
};

static const struct rehome_job_ops drain_ops = {
	.name      = "drain",
	.peer      = "to",
	.step      = drain_step,
	.item_done = handoff_item_done,
	.settled   = drain_settled,
	.close     = drain_close,
};

static const struct rehome_job_ops take_ops = {
	.name      = "take",
	.peer      = "from",
	.step      = take_step,
	.item_done = rehome_item_count,
	.report    = results_flush,
};


static bool pick_node(const struct cluster_node *node, void *arg)
{
	const char **to = arg;

	if (node->self || node->state != CLUSTER_NODE_UP)
		return false;

	*to = node->id;
	return true;
}


/**
 * Stop taking new calls (503) and hand every call served here to `to`
 * (NULL: any live node), again as calls ringing now get answered.
 */
int rehome_drain(const char *to, const struct rehome_opts *opts,
		 rehome_done_h *readyh, rehome_done_h *doneh, void *arg)
{
	struct rehome_job *job;
	int err;

	if (!to && chan[0])
		(void)cluster_node_apply(pick_node, &to);
	if (rehome_peer_check(to))
		return chan[0] ? ENOENT : ENOTSUP;

	err = rehome_job_alloc(&job, &drain_ops, opts, readyh, doneh, arg);
	if (err)
		return err;

	err  = str_dup(&job->node, to);
	err |= hash_alloc(&job->sent, 1024);
	if (err) {
		mem_deref(job);
		return err;
	}

	if (!draining) {
		log_info("rehome", "draining to %s: new calls get 503", to);
		draining = true;
		(void)cluster_set_draining(true);
	}

	drain_scan(job);
	rehome_job_run(job);
	return 0;
}


/**
 * True while this node refuses new calls (drain): answer new INVITEs 503
 * with this Retry-After (seconds). docs/rehoming.md says why not a 3xx.
 */
bool rehome_draining(uint32_t *retry_after)
{
	if (draining && retry_after)
		*retry_after = DRAIN_RETRY_S;

	return draining;
}


/**
 * Take new calls again after a drain; drains still running hand over no
 * more calls. Returns whether this node was draining.
 */
bool rehome_undrain(void)
{
	if (!draining)
		return false;

	log_info("rehome", "undrained: new calls are taken again");
	draining = false;
	(void)cluster_set_draining(false);
	rehome_tick_soon();
	return true;
}


/* ---- set-up ---------------------------------------------------------- */


/** True when this node can hand calls to others (a cluster) */
bool rehome_clustered(void)
{
	return chan[0] != '\0';
}


int rehome_handoff_init(void)
{
	if (!cluster_enabled())
		return 0;

	(void)re_snprintf(chan, sizeof(chan), "%s:rehome", cluster_name());
	return redis_subscribe(chan, msg_handler, NULL);
}


void rehome_handoff_close(void)
{
	draining = false;
	chan[0] = '\0';
}
