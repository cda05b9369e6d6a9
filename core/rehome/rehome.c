/**
 * @file rehome.c  Re-homing: jobs that move live calls to this node
 *
 * A call is re-homed when this node sends each endpoint a target refresh
 * (re-INVITE, or UPDATE in mode "update") carrying its own Contact: from
 * then on the endpoint's in-dialog requests come here. Everything needed
 * lives in the replicated dialog, so the node that ran the call before may
 * be dead. The module's files:
 *  - rehome.c (this one): jobs, their outcomes and pacing, taking tags,
 *    rehome(tag) and set-up;
 *  - rehome_call.c: one dialog's re-INVITE/UPDATE sequence (modes, bodies,
 *    glare, errors) and which dialogs are homed here;
 *  - rehome_handoff.c: move and drain, which hand dialogs to another node
 *    over the signed "<cluster>:rehome" channel, and take, the other side;
 *  - rehome_ctl.c: the job as JSON and the control API routes;
 *  - rehome_media.c: jobs that move calls' media to another relay;
 *  - rehome_names.c: modes, bodies and outcomes by name.
 *
 * Jobs group the dialogs of one request. What a job does depends on its
 * kind, a table of operations (struct rehome_job_ops) defined where the
 * kind lives: rehome here, move, drain and take in rehome_handoff.c; the
 * code below runs any job without asking which kind it is. A job holds no
 * connection: whoever started it hears through its handlers (ready, once
 * it runs; done, once every dialog has an outcome).
 *
 * A single pacing timer starts dialogs at each job's rate, and never more
 * than INFLIGHT_MAX at once over all jobs, so ten thousand calls move as a
 * steady stream instead of a storm; a finished dialog frees its slot at
 * once. The bound is small on purpose: the answers to the requests in
 * flight all come back to one UDP socket, and a default 212 KB receive
 * buffer holds only about 90 datagrams (the kernel counts ~2 KB per
 * datagram), so a larger bound only queues, then drops, and a dropped
 * answer costs a 500 ms retransmission. Every dialog's outcome is kept in
 * its job and counted in the metrics; a dialog that ended on its own
 * meanwhile leaves the job's total and is counted as "ended", since
 * nothing was left to move.
 *
 * rehome(tag) takes the tag first (shtag.c: compare-and-set, new epoch),
 * then moves every dialog of it not homed here yet. Which dialogs are
 * homed here is node-local knowledge (rehome_call.c).
 *
 * Trade-off: the pacing is per job and the in-flight bound global, so one
 * slow job can hold back another.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cseq.h"
#include "dialog.h"
#include "metrics.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "rehome.h"
#include "rehome_int.h"

enum {
	TICK_MS         = 10,     /* pacing timer */
	HOLDER_WAIT_MS  = 50,     /* asking again whether a holder died */
	BURST_MS        = 20,     /* credit a paused job may save up */
	INFLIGHT_MAX    = 64,     /* dialogs being moved at once, all jobs */
	JOBS_KEPT       = 32,     /* finished jobs kept for GET /v1/jobs */
	ITEMS_PAGE      = 1024,   /* items added to a job per allocation */
};

/** A tag a job must hold before it runs */
struct take_tag {
	struct le le;                 /* job->tags */
	struct rehome_job *job;       /* NULL once the job is gone */
	char *name;
	struct tmr wait;              /* its holder may be dying: ask again */
	uint64_t since;               /* jiffies of the first attempt */
	bool loaded;                  /* its dialogs are here (repl) */
};

static struct {
	const struct rh_conf *cfg;
	struct list jobs;
	struct tmr tick;
	uint32_t next_id;
	rehome_done_h *doneh;
	void *done_arg;
} rh;


static void take_tag_destructor(void *arg)
{
	struct take_tag *tt = arg;

	list_unlink(&tt->le);
	tmr_cancel(&tt->wait);
	mem_deref(tt->name);
}


static void job_destructor(void *arg)
{
	struct rehome_job *job = arg;
	struct le *le;

	list_unlink(&job->le);
	list_flush(&job->calls);

	LIST_FOREACH(&job->tags, le)
		((struct take_tag *)le->data)->job = NULL;
	list_flush(&job->tags);
	list_flush(&job->reasons);

	if (job->ops->close)
		job->ops->close(job);

	for (uint32_t i = 0; i < job->itemc; i++)
		mem_deref(job->itemv[i].tag);

	mem_deref(job->itemv);
	mem_deref(job->tag);
	mem_deref(job->node);
	mem_deref(job->media_from);
	mem_deref(job->error);
}


/** ms from `then` to `now`; 0 when `then` was stamped after `now` */
uint64_t rehome_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}


const char *rehome_node_id(void)
{
	return rh.cfg->node_id;
}


/* ---- outcomes ---------------------------------------------------------- */


static void reason_count(struct rehome_job *job, const char *reason)
{
	struct rehome_reason *rc;
	struct le *le;

	LIST_FOREACH(&job->reasons, le) {
		rc = le->data;
		if (!str_cmp(rc->name, reason)) {
			rc->n++;
			return;
		}
	}

	rc = mem_zalloc(sizeof(*rc), NULL);
	if (!rc)
		return;

	str_ncpy(rc->name, reason, sizeof(rc->name));
	rc->n = 1;
	list_append(&job->reasons, &rc->le, rc);
}


uint32_t rehome_job_done_count(const struct rehome_job *job)
{
	return job->count[REHOME_MOVED] + job->count[REHOME_FAILED] +
		job->count[REHOME_ENDED];
}


/**
 * A finished job is kept (JOBS_KEPT) for its items' outcomes only: cut
 * its array, grown ITEMS_PAGE items (56 KiB) at a time, to its items. No
 * item is added to a finished job.
 */
void rehome_job_compact(struct rehome_job *job)
{
	struct rehome_item *v;

	if (!job->itemc || job->itemc % ITEMS_PAGE == 0)
		return;

	v = mem_reallocarray(job->itemv, job->itemc, sizeof(*v), NULL);
	if (v)
		job->itemv = v;
}


static void job_finish(struct rehome_job *job)
{
	job->phase = REHOME_JOB_DONE;
	rehome_job_compact(job);
	job->finished = tmr_jiffies();
	rehome_homed_prune();

	if (job->ops->report)
		job->ops->report(job);

	log_info("rehome", "job %u (%s%s%s) done in %llu ms: %u moved, "
		 "%u failed, %u ended", job->id, job->ops->name,
		 job->tag ? " " : "", job->tag ? job->tag : "",
		 (unsigned long long)(job->finished - job->started),
		 job->count[REHOME_MOVED], job->count[REHOME_FAILED],
		 job->count[REHOME_ENDED]);

	if (job->doneh)
		job->doneh(job->err, job, job->arg);
	if (rh.doneh)
		rh.doneh(job->err, job, rh.done_arg);
}


/**
 * Every dialog has an outcome. Jobs finish in the pacing timer only, so
 * that a done handler never runs inside the call that started the job.
 */
static void job_finish_if_done(struct rehome_job *job)
{
	if (job->phase != REHOME_JOB_RUNNING ||
	    rehome_job_done_count(job) < job->itemc ||
	    !list_isempty(&job->calls))
		return;

	if (job->ops->settled && !job->ops->settled(job))
		return;

	job_finish(job);
}


/** Record the outcome of item idx (the first one only). */
void rehome_item_done(struct rehome_job *job, uint32_t idx,
		      enum rehome_outcome outcome, const char *reason)
{
	struct rehome_item *it = &job->itemv[idx];

	if (it->outcome != REHOME_PENDING)
		return;

	it->outcome = outcome;
	str_ncpy(it->reason, reason ? reason : "", sizeof(it->reason));
	job->count[outcome]++;
	if (outcome != REHOME_MOVED)
		reason_count(job, it->reason);

	if (job->ops->item_done)
		job->ops->item_done(job, idx);

	if (outcome == REHOME_FAILED)
		dialog_log_did(LOG_WARN, "rehome", it->did, "job %u: not "
			       "moved: %s", job->id, it->reason);
	else
		dialog_log_did(LOG_DEBUG, "rehome", it->did, "job %u: %s %s",
			       job->id, rehome_outcome_name(outcome),
			       it->reason);
}


/**
 * item_done of the kinds that move dialogs here: count the outcome in the
 * metrics (an outcome another node reports is counted there).
 */
void rehome_item_count(struct rehome_job *job, uint32_t idx)
{
	const struct rehome_item *it = &job->itemv[idx];

	metrics_rehome_result(rehome_outcome_name(it->outcome), it->reason);
}


/** Fail every item without an outcome (the job cannot go on). */
void rehome_items_fail(struct rehome_job *job, const char *reason)
{
	for (uint32_t i = 0; i < job->itemc; i++) {
		if (job->itemv[i].outcome == REHOME_PENDING)
			rehome_item_done(job, i, REHOME_FAILED, reason);
	}

	job->next = job->itemc;
}


/* ---- jobs and pacing ---------------------------------------------------- */


/**
 * step of the kinds that move dialogs here: start as many as the job's
 * rate and the in-flight bound allow.
 */
void rehome_job_pace(struct rehome_job *job, uint64_t now)
{
	const double burst = MAX(1.0, job->opts.rate * BURST_MS / 1000.0);

	if (rehome_since(now, job->reaped) >= TICK_MS) {
		job->reaped = now;
		rehome_calls_reap(job);
	}

	job->credit += job->opts.rate * (double)rehome_since(now, job->last) /
		1000.0;
	job->credit = MIN(job->credit, burst);
	job->last = now;

	while (job->credit >= 1.0 && job->next < job->itemc &&
	       rehome_calls_inflight() < INFLIGHT_MAX) {
		job->credit -= 1.0;
		rehome_call_start(job, job->next++);
	}
}


static void job_step(struct rehome_job *job, uint64_t now)
{
	job->ops->step(job, now);
	job_finish_if_done(job);
}


/*
 * Fencing: without a fresh lease (cluster_lease.c) no job starts another
 * dialog (re-INVITE, hand-over); they resume when it is renewed, or end
 * when their tag has moved on meanwhile.
 */
static void tick_handler(void *arg)
{
	uint64_t now = tmr_jiffies();
	bool fenced = !cluster_lease_valid();
	bool running = false;
	struct le *le;
	(void)arg;

	for (le = rh.jobs.head; le; ) {
		struct rehome_job *job = le->data;

		le = le->next;   /* a job may finish (not leave) in its step */
		if (job->phase != REHOME_JOB_RUNNING)
			continue;

		if (!fenced)
			job_step(job, now);
		running |= job->phase == REHOME_JOB_RUNNING;
	}

	if (running)
		tmr_start(&rh.tick, TICK_MS, tick_handler, NULL);
}


/** Pace at once, from the main loop (not from inside the caller). */
void rehome_tick_soon(void)
{
	if (!tmr_isrunning(&rh.tick) || tmr_get_expire(&rh.tick) > 0)
		tmr_start(&rh.tick, 0, tick_handler, NULL);
}


/** Tell the starter that the job runs, or cannot (job->err); once. */
static void job_started(struct rehome_job *job)
{
	rehome_done_h *readyh = job->readyh;

	job->readyh = NULL;
	if (readyh)
		readyh(job->err, job, job->arg);
}


/** Start pacing a job whose items are known. */
void rehome_job_run(struct rehome_job *job)
{
	log_info("rehome", "job %u (%s%s%s%s%s%s%s): %u dialogs, mode %s, "
		 "body %s, %u/s", job->id, job->ops->name,
		 job->tag ? " " : "", job->tag ? job->tag : "",
		 job->node ? " " : "", job->node ? job->ops->peer : "",
		 job->node ? " " : "", job->node ? job->node : "", job->itemc,
		 rehome_mode_name(job->opts.mode),
		 rehome_body_name(job->opts.body), job->opts.rate);

	job->phase = REHOME_JOB_RUNNING;
	job->last = tmr_jiffies();
	rehome_tick_soon();
	job_started(job);
}


/** Forget the oldest finished jobs beyond JOBS_KEPT. */
static void jobs_trim(void)
{
	uint32_t done = 0;
	struct le *le;

	for (le = rh.jobs.tail; le; ) {
		struct rehome_job *job = le->data;

		le = le->prev;
		if (job->phase == REHOME_JOB_DONE && ++done > JOBS_KEPT)
			mem_deref(job);
	}
}


int rehome_job_alloc(struct rehome_job **jobp,
		     const struct rehome_job_ops *ops,
		     const struct rehome_opts *opts, rehome_done_h *readyh,
		     rehome_done_h *doneh, void *arg)
{
	struct rehome_job *job;

	if (!ops || !ops->step)
		return EINVAL;
	if (opts && opts->rate > REHOME_RATE_MAX)
		return ERANGE;

	job = mem_zalloc(sizeof(*job), job_destructor);
	if (!job)
		return ENOMEM;

	job->id = ++rh.next_id;
	job->ops = ops;
	job->started = job->last = job->heard = tmr_jiffies();
	job->readyh = readyh;
	job->doneh = doneh;
	job->arg = arg;
	if (opts)
		job->opts = *opts;
	if (!job->opts.rate)
		job->opts.rate = rh.cfg->rehome_rate;

	jobs_trim();
	list_append(&rh.jobs, &job->le, job);
	*jobp = job;
	return 0;
}


int rehome_job_add(struct rehome_job *job, uint64_t did)
{
	if (job->itemc % ITEMS_PAGE == 0) {
		struct rehome_item *v;

		v = mem_reallocarray(job->itemv, job->itemc + ITEMS_PAGE,
				     sizeof(*v), NULL);
		if (!v)
			return ENOMEM;

		job->itemv = v;
	}

	memset(&job->itemv[job->itemc], 0, sizeof(job->itemv[0]));
	job->itemv[job->itemc++].did = did;
	return 0;
}


/** A job that cannot run: every item fails, the job ends with err. */
void rehome_job_abort(struct rehome_job *job, int err, const char *reason)
{
	job->err = err;
	rehome_items_fail(job, reason);
	job->phase = REHOME_JOB_RUNNING;
	rehome_tick_soon();
	job_started(job);
}


/* ---- taking tags ---------------------------------------------------- */


/** The job's tags are held: let it choose its dialogs, run it. */
static void job_ready(struct rehome_job *job)
{
	if (job->ops->ready)
		job->ops->ready(job);

	rehome_job_run(job);
}


static void tag_result(int err, const char *name, bool active,
		       uint64_t epoch, const char *holder, void *arg)
{
	struct take_tag *tt = arg;
	struct rehome_job *job = tt->job;
	(void)active;

	if (!job || job->phase != REHOME_JOB_TAKING)
		goto out;

	if (err) {
		if (err == EBUSY)
			(void)re_sdprintf(&job->error, "cannot take tag %s: "
					  "held by %s", name, holder);
		else
			(void)re_sdprintf(&job->error, "cannot take tag %s: "
					  "%m", name, err);
		log_warn("rehome", "job %u: %s", job->id, job->error);
		rehome_job_abort(job, err, "tag");
		goto out;
	}

	log_info("rehome", "job %u: took tag %s (epoch %llu)", job->id, name,
		 (unsigned long long)epoch);

	list_unlink(&tt->le);
	mem_deref(tt);          /* the job's reference */
	if (list_isempty(&job->tags))
		job_ready(job);

 out:
	mem_deref(arg);         /* the callback's reference */
}


int rehome_job_tag_add(struct rehome_job *job, const char *name)
{
	struct take_tag *tt;
	struct le *le;

	LIST_FOREACH(&job->tags, le) {
		if (!str_cmp(((struct take_tag *)le->data)->name, name))
			return 0;
	}

	tt = mem_zalloc(sizeof(*tt), take_tag_destructor);
	if (!tt)
		return ENOMEM;

	tt->job = job;
	list_append(&job->tags, &tt->le, tt);
	return str_dup(&tt->name, name);
}


/**
 * May the job take tag `name` from its holder? A live holder keeps it
 * (EBUSY) unless the job is forced. One not heard for half node_timeout
 * has missed several heartbeats and may be dead: EAGAIN, ask again until
 * it is declared down (then take it) or heard again (EBUSY). The wait is
 * bounded, since timeouts freeze while our own Redis link is down.
 */
static int holder_check(const struct take_tag *tt, uint64_t now)
{
	const char *holder = shtag_holder(tt->name);
	const struct cluster_node *node;
	uint32_t timeout = rh.cfg->node_timeout;

	if (tt->job->opts.force || !str_isset(holder) ||
	    !str_cmp(holder, rehome_node_id()))
		return 0;

	node = cluster_node_find(holder);
	if (!node || node->state == CLUSTER_NODE_DOWN)
		return 0;

	if (rehome_since(now, node->last_seen) < timeout / 2 ||
	    rehome_since(now, tt->since) > 2 * (uint64_t)timeout)
		return EBUSY;

	return EAGAIN;
}


static void take_wait(void *arg);
static bool take_one(struct take_tag *tt);


/* repl_watch_h: the tag's dialogs are here now: take it */
static void take_loaded(int err, void *arg)
{
	struct take_tag *tt = arg;
	struct rehome_job *job = tt->job;

	tt->loaded = true;
	if (!job || job->phase != REHOME_JOB_TAKING)
		goto out;

	if (err) {
		(void)re_sdprintf(&job->error, "cannot load tag %s: %m",
				  tt->name, err);
		rehome_job_abort(job, err, "tag");
		goto out;
	}

	(void)take_one(tt);

 out:
	mem_deref(tt);          /* the callback's reference */
}


/**
 * The tag's dialogs first: a node that does not back the tag up loads
 * them (repl_tags.c). Returns true once they are here.
 */
static bool take_load(struct take_tag *tt, int *errp)
{
	int err;

	if (tt->loaded)
		return true;

	err = repl_tag_watch(tt->name, take_loaded, mem_ref(tt));
	if (err)
		mem_deref(tt);  /* the callback's reference */

	tt->loaded = err == EALREADY;
	*errp = err == EALREADY ? 0 : err;
	return tt->loaded;
}


/** Take one tag; false if the job was aborted. */
static bool take_one(struct take_tag *tt)
{
	struct rehome_job *job = tt->job;
	int err = 0;

	if (!take_load(tt, &err)) {
		if (!err)
			return true;

		(void)re_sdprintf(&job->error, "cannot load tag %s: %m",
				  tt->name, err);
		rehome_job_abort(job, err, "tag");
		return false;
	}

	err = holder_check(tt, tmr_jiffies());
	if (err == EAGAIN) {
		tmr_start(&tt->wait, HOLDER_WAIT_MS, take_wait, tt);
		return true;
	}

	if (err) {
		(void)re_sdprintf(&job->error, "cannot take tag %s: held by "
				  "live node %s (force takes it)", tt->name,
				  shtag_holder(tt->name));
		log_warn("rehome", "job %u: %s", job->id, job->error);
		rehome_job_abort(job, err, "tag");
		return false;
	}

	err = shtag_activate(tt->name, tag_result, mem_ref(tt));
	if (err) {
		mem_deref(tt);  /* the callback's reference */
		(void)re_sdprintf(&job->error, "cannot take tag %s: %m",
				  tt->name, err);
		rehome_job_abort(job, err, "tag");
		return false;
	}

	return true;
}


static void take_wait(void *arg)
{
	struct take_tag *tt = arg;

	if (tt->job && tt->job->phase == REHOME_JOB_TAKING)
		(void)take_one(tt);
}


/** Take the job's tags (the ones not held here), then run it. */
void rehome_job_take_tags(struct rehome_job *job)
{
	struct le *le;

	for (le = job->tags.head; le; ) {
		struct take_tag *tt = le->data;

		le = le->next;
		if (shtag_is_active(tt->name)) {
			mem_deref(tt);
			continue;
		}

		tt->since = tmr_jiffies();
		if (!take_one(tt))
			return;
	}

	/* (a tag taken at once may have readied the job already) */
	if (job->phase == REHOME_JOB_TAKING && list_isempty(&job->tags))
		job_ready(job);
}


/* ---- rehome(tag): the kind "rehome" ---------------------------------- */


/** The dialogs of a tag not homed here yet (all of them with opts.all) */
static bool collect_tag(struct dialog *dlg, void *arg)
{
	struct rehome_job *job = arg;

	if (dlg->state != DIALOG_CONFIRMED || dialog_locked(dlg) ||
	    str_cmp(dlg->shtag, job->tag))
		return false;

	if (!job->opts.all && rehome_homed_here(dlg))
		return false;

	return rehome_job_add(job, dlg->did) != 0;
}


/** ready: the tag is held here, take every dialog of it homed elsewhere */
static void tag_collect(struct rehome_job *job)
{
	rehome_homed_prune();
	if (dialog_apply(collect_tag, job))
		job->err = ENOMEM;
}


static const struct rehome_job_ops rehome_ops = {
	.name      = "rehome",
	.ready     = tag_collect,
	.step      = rehome_job_pace,
	.item_done = rehome_item_count,
};


/**
 * Take `tag` (compare-and-set in the cluster) and re-home to this node
 * every confirmed dialog of it not homed here yet (every one with
 * opts->all). The job answers readyh once it has the tag (or cannot get
 * it), and doneh when every dialog has an outcome.
 */
int rehome_tag(const char *tag, const struct rehome_opts *opts,
	       rehome_done_h *readyh, rehome_done_h *doneh, void *arg)
{
	struct rehome_job *job;
	int err;

	if (!str_isset(tag))
		return EINVAL;

	err = rehome_job_alloc(&job, &rehome_ops, opts, readyh, doneh, arg);
	if (err)
		return err;

	err  = str_dup(&job->tag, tag);
	err |= rehome_job_tag_add(job, tag);
	if (err) {
		mem_deref(job);
		return err;
	}

	rehome_job_take_tags(job);
	return 0;
}


/* ---- the job registry ------------------------------------------------ */


void rehome_set_done_handler(rehome_done_h *h, void *arg)
{
	rh.doneh = h;
	rh.done_arg = arg;
}


const struct rehome_job *rehome_job_find(uint32_t id)
{
	struct le *le;

	LIST_FOREACH(&rh.jobs, le) {
		const struct rehome_job *job = le->data;

		if (job->id == id)
			return job;
	}

	return NULL;
}


/** Every job kept, oldest first (struct rehome_job) */
const struct list *rehome_job_list(void)
{
	return &rh.jobs;
}


/* ---- set-up ------------------------------------------------------------- */


int rehome_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;

	rh.cfg = cfg;

	err = rehome_call_init();
	if (err)
		return err;

	err = rehome_handoff_init();
	if (err)
		return err;

	return rehome_ctl_init();
}


/* Shutdown: whoever waits for a job still running hears ECANCELED (a
   done handler holds state of its own, freed there: a policy's pending
   operation); as shtag_close() does for its pending requests. */
static void jobs_cancel(void)
{
	for (struct le *le = list_head(&rh.jobs); le; le = le->next) {
		struct rehome_job *job = le->data;

		if (job->phase != REHOME_JOB_DONE && job->doneh)
			job->doneh(ECANCELED, job, job->arg);
		job->doneh = NULL;
	}
}


void rehome_close(void)
{
	tmr_cancel(&rh.tick);
	jobs_cancel();
	list_flush(&rh.jobs);
	rehome_ctl_close();
	rehome_call_close();
	rehome_handoff_close();
	rh.doneh = NULL;
	rh.cfg = NULL;
}
