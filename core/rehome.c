/**
 * @file rehome.c  Re-homing: moving live calls to this node with re-INVITEs
 *
 * A call is re-homed when this node sends each endpoint a target refresh
 * (re-INVITE, or UPDATE in mode "update") carrying its own Contact: from
 * then on the endpoint's in-dialog requests come here. Everything needed
 * lives in the replicated dialog, so the node that ran the call before may
 * be dead. The requests are built by proxy_request(), which continues the
 * leg's CSeq and writes this node's Contact; later requests relayed
 * between the legs are renumbered by cseq.c.
 *
 * One `struct call` walks one dialog through its legs in the order of the
 * mode: send, wait for the final response, ACK, next leg. The body rules
 * keep RFC 3264 offer/answer valid on both legs:
 *  - with SDP (outbound/inbound), the first leg answers our offer and that
 *    answer is the offer of the second leg; both ACKs are empty, as each
 *    leg already has an answer;
 *  - without SDP (none), the first leg offers in its 2xx; that offer goes
 *    to the second leg, and the second leg's answer rides in the first
 *    leg's ACK (RFC 3725 flow I). A leg re-INVITEd alone, or whose partner
 *    failed, is answered with the SDP it was last sent: its session is
 *    unchanged, so an identical description with the same o= version is a
 *    valid answer.
 *
 * While a call is in flight dlg->busy points at it. proxy.c answers an
 * endpoint's own INVITE/UPDATE with 491 meanwhile, and a BYE clears busy
 * after relaying it: that is how a call learns it was aborted, without
 * proxy.c knowing this module. A 491 from an endpoint is retried after the
 * RFC 3261 14.1 back-off; 481 means the endpoint lost the call, which is
 * then ended on both legs; any other failure (timeout, 401/407, 488...)
 * fails that leg only and the call stays up on the other one (SPEC): a
 * non-2xx leaves the failed leg's session as it was, and its media, which
 * never crosses this node, keeps flowing.
 *
 * Jobs group the dialogs of one request. A single pacing timer starts
 * dialogs at each job's rate, and never more than INFLIGHT_MAX at once
 * over all jobs, so ten thousand calls move as a steady stream instead of
 * a storm; a finished dialog frees its slot at once. The bound is small on
 * purpose: the answers to the requests in flight all come back to one
 * UDP socket, and a default 212 KB receive buffer holds only about 90
 * datagrams (the kernel counts ~2 KB per datagram), so a larger bound
 * only queues, then drops, and a dropped answer costs a 500 ms
 * retransmission. Every dialog's outcome is kept in its job and counted
 * in the metrics; a dialog that ended on its own meanwhile leaves the
 * job's total and is counted as "ended", since nothing was left to move.
 *
 * rehome(tag) takes the tag first (shtag.c: compare-and-set, new epoch),
 * then moves every dialog of it not homed here yet. Which dialogs are
 * homed here is node-local knowledge: the ones created here (the caller's
 * ACK passed here) and the ones this module moved here; a replicated copy
 * that replaced one of them (another node took it over) no longer counts.
 *
 * move and drain hand dialogs to another node, one owner per dialog. The
 * replication fences every write with the dialog's sharing tag, so a
 * subset of a tag cannot change owner by itself: the node taking calls
 * relabels each one, as it moves it, to a tag it holds: the base tag if it
 * holds that, else the sub-tag "<base>.<node>" (the base being the tag
 * without a ".<sender>" suffix), taken with a compare-and-set first. Its
 * first replicated write with the new tag and owner replaces the sender's
 * copy everywhere; the sender stops serving the dialog then. Until then
 * the sender keeps relaying, but answers the endpoints' own re-INVITEs
 * with 491 (busy), so the two nodes never both change a session.
 * Requests travel as signed messages on "<cluster>:rehome": "take" (the
 * dids, mode, body, rate) and "results" (outcomes by index, every
 * RESULTS_MS), so the asking node's job shows progress and per-dialog
 * outcomes; the receiver paces.
 *
 * drain(to) refuses new INVITEs with 503 and Retry-After (a 3xx would
 * replace the Request-URI with the other node's address, which an
 * R-URI-routed proxy cannot use and which tells every caller about the
 * cluster's insides; a 503 is what RFC 3263 clients and upstream proxies
 * already treat as "try the next server"), then hands over every confirmed
 * call, again as early ones get answered, until none is left.
 *
 * Trade-offs: the pacing is per job and the in-flight bound global, so one
 * slow job can hold back another; a leg that never answers ties up its
 * slot until libre's transaction timeout (64*T1 = 32 s on UDP); sub-tags
 * are real tags, shown in the status, and a fail-over must take them too.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "sipmsg.h"
#include "proxy.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "ctl.h"
#include "rehome.h"

enum {
	TICK_MS         = 10,     /* pacing timer */
	BURST_MS        = 20,     /* credit a paused job may save up */
	INFLIGHT_MAX    = 64,     /* dialogs being moved at once, all jobs */
	GLARE_TRIES     = 3,      /* requests per leg when the endpoint 491s */
	ACK_WAIT_MS     = 16000,  /* a 2xx waits this long for its answer */
	JOBS_KEPT       = 32,     /* finished jobs kept for GET /v1/jobs */
	RATE_MAX        = 100000, /* dialogs per second */
	REASON_SZ       = 24,
	ITEMS_PAGE      = 1024,   /* items added to a job per allocation */
	LIST_DEFAULT    = 1000,   /* dialogs in GET /v1/jobs/ID/dialogs */
	RESULTS_MS      = 100,    /* take: results sent at most this often */
	QUIET_MS        = 60000,  /* move: no results this long = lost */
	DRAIN_SCAN_MS   = 500,    /* drain: look for newly answered calls */
	DRAIN_RETRY_S   = 30,     /* Retry-After of a draining node's 503 */
	JSON_DEPTH      = 4,
};

static const char *mode_names[] = {"challenge", "challenge-callee", "caller",
				   "callee", "update"};
static const char *body_names[] = {"outbound", "inbound", "none"};
static const char *outcome_names[] = {"pending", "moved", "failed",
				      "ended"};
static const char *kind_names[] = {"rehome", "move", "drain", "take"};

enum job_kind {
	JOB_REHOME = 0,   /* take a tag, move its dialogs here */
	JOB_MOVE,         /* hand some dialogs of a tag to another node */
	JOB_DRAIN,        /* hand every dialog to another node */
	JOB_TAKE,         /* move here what another node hands over */
};

enum job_phase {
	PHASE_TAKING = 0, /* waiting for its tags */
	PHASE_RUNNING,
	PHASE_DONE,
};

/** One dialog of a job */
struct item {
	uint64_t did;
	char *tag;                    /* take: the tag it gets here */
	enum rehome_outcome outcome;
	bool reported;                /* take: outcome sent to the asker */
	char reason[REASON_SZ];       /* why it failed or ended */
};

struct reason_count {
	struct le le;
	char name[REASON_SZ];
	uint32_t n;
};

/** A tag a job must hold before it runs */
struct take_tag {
	struct le le;                 /* job->tags */
	struct rehome_job *job;       /* NULL once the job is gone */
	char *name;
};

/** A did a drain handed over already */
struct sent {
	struct le he;
	uint64_t did;
};

struct rehome_job {
	struct le le;                 /* rh.jobs */
	uint32_t id;
	enum job_kind kind;
	enum job_phase phase;
	char *tag;                    /* rehome, move */
	char *node;                   /* move, drain: to; take: from */
	uint32_t peer_job;            /* take: the asker's job id */
	uint32_t peer_off;            /* take: the asker's index of item 0 */
	struct rehome_opts opts;
	struct item *itemv;
	uint32_t itemc;
	uint32_t next;                /* first item not started yet */
	uint32_t count[ARRAY_SIZE(outcome_names)];
	struct list reasons;          /* struct reason_count */
	struct list calls;            /* struct call, in flight */
	struct list tags;             /* struct take_tag, still to take */
	double credit;                /* dialogs the pacing allows now */
	uint64_t last;                /* jiffies of the last pacing step */
	uint64_t reaped;              /* jiffies of the last calls_reap() */
	uint64_t started;
	uint64_t finished;
	uint64_t heard;               /* move, drain: last results */
	uint64_t flushed;             /* take: last results sent */
	uint64_t scanned;             /* drain: last scan */
	struct hash *sent;            /* drain: struct sent */
	bool drained;                 /* drain: nothing left to hand over */
	struct http_conn *conn;       /* a POST waiting for the tags */
	rehome_done_h *doneh;
	void *arg;
	int err;
	char *error;
};

/** One dialog being moved */
struct call {
	struct proxy_dest dest;       /* first: proxy_request() context */
	struct le le;                 /* job->calls */
	struct rehome_job *job;
	uint32_t idx;                 /* in job->itemv */
	struct sip_request *req;
	struct tmr tmr;               /* 491 back-off */
	struct tmr ack_tmr;           /* bounds ack_wait */
	enum dialog_leg_id legv[2];
	unsigned legc;
	unsigned step;                /* index in legv of the current leg */
	unsigned tries;               /* requests sent to the current leg */
	bool offerless;               /* current INVITE went without SDP */
	bool dirty;                   /* changed since last replicated */
	bool ack_wait;                /* first leg's 2xx awaits the answer */
	char *sdp;                    /* SDP of the first leg's 2xx */
	char reason[REASON_SZ];       /* first failure */
};

/** A dialog moved here by this module (holds a reference) */
struct homed {
	struct le he;
	struct dialog *dlg;
};

static struct {
	const struct rh_conf *cfg;
	struct list jobs;
	struct hash *homed;           /* struct homed */
	struct tmr tick;
	uint32_t inflight;
	uint32_t next_id;
	char chan[128];               /* "" without a cluster */
	rehome_done_h *doneh;
	void *done_arg;
	bool draining;
} rh;


static void call_send(struct call *c);
static void call_response(int err, const struct sip_msg *msg, void *arg);
static void tick_soon(void);
static void results_flush(struct rehome_job *job);
static void conn_answer(struct rehome_job *job);
static void reply_job(struct http_conn *conn, uint16_t scode,
		      const struct rehome_job *job);
static int  int_add(struct odict *od, const char *key, uint64_t v);
static int  str_add(struct odict *od, const char *key, const char *s);


static void call_destructor(void *arg)
{
	struct call *c = arg;
	struct dialog *dlg = c->dest.dlg;

	list_unlink(&c->le);
	tmr_cancel(&c->tmr);
	tmr_cancel(&c->ack_tmr);
	mem_deref(c->req);
	mem_deref(c->sdp);
	if (dlg && dlg->busy == c)
		dlg->busy = NULL;
	mem_deref(dlg);
}


static void take_tag_destructor(void *arg)
{
	struct take_tag *tt = arg;

	list_unlink(&tt->le);
	mem_deref(tt->name);
}


static void homed_destructor(void *arg)
{
	struct homed *hd = arg;

	hash_unlink(&hd->he);
	mem_deref(hd->dlg);
}


static void handoff_clear(struct rehome_job *job, uint64_t did);


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

	for (uint32_t i = 0; i < job->itemc; i++) {
		if ((job->kind == JOB_MOVE || job->kind == JOB_DRAIN) &&
		    job->itemv[i].outcome == REHOME_PENDING)
			handoff_clear(job, job->itemv[i].did);
		mem_deref(job->itemv[i].tag);
	}

	hash_flush(job->sent);
	mem_deref(job->sent);
	mem_deref(job->itemv);
	mem_deref(job->conn);
	mem_deref(job->tag);
	mem_deref(job->node);
	mem_deref(job->error);
}


static inline enum dialog_leg_id other_leg(enum dialog_leg_id leg)
{
	return leg == LEG_CALLER ? LEG_CALLEE : LEG_CALLER;
}


static bool is_update(const struct call *c)
{
	return c->job->opts.mode == REHOME_UPDATE;
}


static enum dialog_leg_id cur_leg(const struct call *c)
{
	return c->legv[c->step];
}


/** Replace a shared SDP reference (dst may already hold sdp) */
static void set_sdp(char **dst, char *sdp)
{
	char *old = *dst;

	*dst = mem_ref(sdp);
	mem_deref(old);
}


/** ms from `then` to `now`; 0 when `then` was stamped after `now` */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}


static const char *node_id(void)
{
	return rh.cfg->node_id;
}


/** Served by this node: neither a replica nor owned by another node */
static bool served_here(const struct dialog *dlg)
{
	return !dlg->replica && !str_cmp(dlg->owner, node_id());
}


/* ---- dialogs homed here ------------------------------------------------ */


static bool homed_cmp(struct le *le, void *arg)
{
	const struct homed *hd = le->data;

	return hd->dlg->did == *(uint64_t *)arg;
}


static void homed_add(struct dialog *dlg)
{
	struct homed *hd;

	hd = list_ledata(hash_lookup(rh.homed, (uint32_t)dlg->did, homed_cmp,
				     &dlg->did));
	if (hd) {
		mem_deref(hd->dlg);
		hd->dlg = mem_ref(dlg);
		return;
	}

	hd = mem_zalloc(sizeof(*hd), homed_destructor);
	if (!hd)
		return;

	hd->dlg = mem_ref(dlg);
	hash_append(rh.homed, (uint32_t)dlg->did, &hd->he, hd);
}


/**
 * The endpoints of dlg have this node's Contact: it was created here (the
 * caller's ACK came through here), or moved here and not replaced since.
 */
static bool homed_here(const struct dialog *dlg)
{
	const struct homed *hd;

	if (dlg->acked)
		return true;

	hd = list_ledata(hash_lookup(rh.homed, (uint32_t)dlg->did, homed_cmp,
				     (void *)&dlg->did));
	return hd && hd->dlg == dlg;
}


static bool homed_stale(struct le *le, void *arg)
{
	struct homed *hd = le->data;
	(void)arg;

	if (dialog_lookup(hd->dlg->did) != hd->dlg)
		mem_deref(hd);

	return false;
}


/** Drop what ended or was replaced by another node's copy. */
static void homed_prune(void)
{
	hash_apply(rh.homed, homed_stale, NULL);
}


/* ---- outcomes ---------------------------------------------------------- */


static void reason_count(struct rehome_job *job, const char *reason)
{
	struct reason_count *rc;
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


static uint32_t job_done_count(const struct rehome_job *job)
{
	return job->count[REHOME_MOVED] + job->count[REHOME_FAILED] +
		job->count[REHOME_ENDED];
}


static void job_finish(struct rehome_job *job)
{
	job->phase = PHASE_DONE;
	job->finished = tmr_jiffies();
	homed_prune();

	if (job->kind == JOB_TAKE)
		results_flush(job);

	log_info("rehome", "job %u (%s%s%s) done in %llu ms: %u moved, "
		 "%u failed, %u ended", job->id, kind_names[job->kind],
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
	if (job->phase != PHASE_RUNNING || job_done_count(job) < job->itemc ||
	    !list_isempty(&job->calls))
		return;

	if (job->kind == JOB_DRAIN && !job->drained)
		return;

	job_finish(job);
}


/**
 * Record the outcome of item idx. Outcomes another node reports are
 * counted in the metrics there, not here.
 */
static void item_done(struct rehome_job *job, uint32_t idx,
		      enum rehome_outcome outcome, const char *reason)
{
	struct item *it = &job->itemv[idx];
	bool local = job->kind == JOB_REHOME || job->kind == JOB_TAKE;

	if (it->outcome != REHOME_PENDING)
		return;

	it->outcome = outcome;
	str_ncpy(it->reason, reason ? reason : "", sizeof(it->reason));
	job->count[outcome]++;
	if (outcome != REHOME_MOVED)
		reason_count(job, it->reason);

	if (local)
		metrics_rehome_result(rehome_outcome_name(outcome), it->reason);

	if (outcome == REHOME_FAILED)
		log_warn("rehome", "%016llx: not moved: %s",
			 (unsigned long long)it->did, it->reason);
	else
		log_debug("rehome", "%016llx: %s %s",
			  (unsigned long long)it->did,
			  rehome_outcome_name(outcome), it->reason);
}


/** Fail every item without an outcome (the job cannot go on). */
static void items_fail(struct rehome_job *job, const char *reason)
{
	for (uint32_t i = 0; i < job->itemc; i++) {
		if (job->itemv[i].outcome != REHOME_PENDING)
			continue;

		if (job->kind == JOB_MOVE || job->kind == JOB_DRAIN)
			handoff_clear(job, job->itemv[i].did);
		item_done(job, i, REHOME_FAILED, reason);
	}

	job->next = job->itemc;
}


/* ---- one dialog ------------------------------------------------------- */


/**
 * Why the call cannot go on, or NULL: the dialog ended (or a BYE is on its
 * way: proxy.c cleared busy), or another node's copy replaced it (a write
 * of that node won in Redis: the dialog stays with it).
 */
static const char *call_aborted(const struct call *c)
{
	const struct dialog *dlg = c->dest.dlg;

	if (dlg->state == DIALOG_ENDED || dlg->busy != c)
		return "bye";

	return dialog_lookup(dlg->did) != dlg ? "replaced" : NULL;
}


static enum rehome_outcome abort_outcome(const char *why)
{
	return str_cmp(why, "bye") ? REHOME_FAILED : REHOME_ENDED;
}


/**
 * ACK a leg's 2xx. When our INVITE went without SDP, a 2xx carrying an
 * offer needs the answer in the ACK: `answer`, else the SDP the leg was
 * last sent, which leaves its session as it was.
 */
static void ack_leg(struct call *c, enum dialog_leg_id leg, bool offer,
		    char *answer)
{
	struct dialog *dlg = c->dest.dlg;
	int err;

	if (offer && answer && str_cmp(answer, dlg->leg[leg].sdp_out)) {
		set_sdp(&dlg->leg[leg].sdp_out, answer);
		c->dirty = true;
	}

	err = proxy_ack(dlg, leg, "application/sdp",
			offer ? dlg->leg[leg].sdp_out : NULL);
	if (err)
		log_warn("rehome", "%016llx: ACK to %s: %m",
			 (unsigned long long)dlg->did, dialog_leg_name(leg),
			 err);
}


/** Answer the first leg's waiting 2xx, if any (body none). */
static void flush_ack(struct call *c, char *answer)
{
	if (!c->ack_wait)
		return;

	c->ack_wait = false;
	tmr_cancel(&c->ack_tmr);
	ack_leg(c, c->legv[0], true, answer);
}


/*
 * The first leg repeats its 2xx until the ACK, and gives up on the call
 * after 64*T1: if the second leg is that slow, answer with what the first
 * leg already has rather than lose the call.
 */
static void ack_timeout(void *arg)
{
	struct call *c = arg;

	log_warn("rehome", "%016llx: no answer from the %s leg in time; "
		 "ACKing the %s leg with its previous SDP",
		 (unsigned long long)c->dest.dlg->did,
		 dialog_leg_name(c->legv[1]), dialog_leg_name(c->legv[0]));
	flush_ack(c, NULL);
}


static void call_finish(struct call *c, enum rehome_outcome outcome,
			const char *reason)
{
	struct rehome_job *job = c->job;
	struct dialog *dlg = c->dest.dlg;

	flush_ack(c, NULL);
	if (c->dirty && dlg->state != DIALOG_ENDED && !call_aborted(c))
		dialog_changed(dlg, DIALOG_EV_UPDATED);
	if (outcome == REHOME_MOVED)
		homed_add(dlg);
	item_done(job, c->idx, outcome, reason);

	--rh.inflight;
	mem_deref(c);
	tick_soon();   /* the slot is free: start the next dialog now */
}


static void call_next(struct call *c)
{
	c->tries = 0;
	if (++c->step < c->legc) {
		call_send(c);
		return;
	}

	if (c->reason[0])
		call_finish(c, REHOME_FAILED, c->reason);
	else
		call_finish(c, REHOME_MOVED, NULL);
}


static void leg_failed(struct call *c, const char *why)
{
	if (!c->reason[0])
		(void)re_snprintf(c->reason, sizeof(c->reason), "%s:%s",
				  dialog_leg_name(cur_leg(c)), why);

	log_info("rehome", "%016llx: %s leg failed: %s",
		 (unsigned long long)c->dest.dlg->did,
		 dialog_leg_name(cur_leg(c)), why);

	call_next(c);
}


/** The body of the request to the current leg, per the body rule */
static char *leg_body(const struct call *c)
{
	const struct dialog *dlg = c->dest.dlg;
	enum dialog_leg_id leg = cur_leg(c);

	/* the second leg gets what the first one answered or offered */
	if (c->step > 0 && c->sdp)
		return c->sdp;

	switch (c->job->opts.body) {

	case REHOME_BODY_OUTBOUND:
		return dlg->leg[leg].sdp_out;

	case REHOME_BODY_INBOUND:
		return dlg->leg[other_leg(leg)].sdp_in;

	default:
		return NULL;
	}
}


static void call_send(struct call *c)
{
	struct dialog *dlg = c->dest.dlg;
	char *body = leg_body(c);
	int err;

	c->dest.to = cur_leg(c);
	c->offerless = !is_update(c) && !body;
	c->tries++;

	if (body)
		set_sdp(&dlg->leg[c->dest.to].sdp_out, body);

	err = proxy_request(&c->req, &c->dest,
			    is_update(c) ? "UPDATE" : "INVITE",
			    "application/sdp", body, call_response);
	if (err)
		leg_failed(c, "unreachable");
	else
		c->dirty = false;   /* proxy_request replicated the dialog */
}


/** RFC 3261 14.1: the owner of the Call-ID waits 2.1-4 s, others 0-2 s */
static uint32_t glare_delay(const struct call *c)
{
	bool owner = cur_leg(c) == LEG_CALLEE;  /* its Call-ID is ours */

	return (owner ? 2100 : 0) + 10 * (rand_u32() % (owner ? 191 : 201));
}


static void glare_handler(void *arg)
{
	struct call *c = arg;
	const char *why = call_aborted(c);

	if (why)
		call_finish(c, abort_outcome(why), why);
	else
		call_send(c);
}


/** A 2xx from the current leg: take its target and SDP, then ACK. */
static void leg_answered(struct call *c, const struct sip_msg *msg)
{
	enum dialog_leg_id leg = cur_leg(c);
	struct dialog_leg *dl = &c->dest.dlg->leg[leg];
	char *sdp = NULL;
	struct pl uri;

	if (!sipmsg_contact_uri(&uri, msg) && pl_strcmp(&uri, dl->target)) {
		(void)dialog_set_str(&dl->target, &uri);
		c->dirty = true;
	}

	if (sipmsg_has_sdp(msg) && !sipmsg_body_str(&sdp, msg)) {
		if (str_cmp(sdp, dl->sdp_in)) {
			set_sdp(&dl->sdp_in, sdp);
			c->dirty = true;
		}
		else {   /* unchanged: keep sharing the one copy */
			mem_deref(sdp);
			sdp = mem_ref(dl->sdp_in);
		}
	}

	if (!is_update(c)) {
		if (c->step == 0 && c->legc > 1 && c->offerless && sdp) {
			c->ack_wait = true;   /* ACK carries the answer */
			tmr_start(&c->ack_tmr, ACK_WAIT_MS, ack_timeout, c);
		}
		else {
			ack_leg(c, leg, c->offerless && sdp, NULL);
			flush_ack(c, sdp);
		}
	}

	if (c->step == 0)
		set_sdp(&c->sdp, sdp);

	mem_deref(sdp);
	call_next(c);   /* a change is replicated by the next request or at
			 * the end (call_finish), once */
}


static void call_response(int err, const struct sip_msg *msg, void *arg)
{
	struct call *c = arg;
	struct dialog *dlg = c->dest.dlg;
	const char *why;
	char code[8];

	if (!err && msg->scode < 200)
		return;

	why = call_aborted(c);
	if (why) {
		if (!err && msg->scode < 300 && !is_update(c))
			ack_leg(c, cur_leg(c),
				c->offerless && sipmsg_has_sdp(msg), NULL);
		call_finish(c, abort_outcome(why), why);
		return;
	}

	if (err) {
		leg_failed(c, err == ETIMEDOUT ? "timeout" : "unreachable");
		return;
	}

	if (msg->scode < 300) {
		leg_answered(c, msg);
		return;
	}

	(void)re_snprintf(code, sizeof(code), "%u", msg->scode);

	switch (msg->scode) {

	case 491:
		if (c->tries < GLARE_TRIES) {
			tmr_start(&c->tmr, glare_delay(c), glare_handler, c);
			return;
		}
		leg_failed(c, code);
		break;

	case 481:
		/* the endpoint lost the call: end it on both legs */
		(void)re_snprintf(c->reason, sizeof(c->reason), "%s:481",
				  dialog_leg_name(cur_leg(c)));
		flush_ack(c, NULL);
		(void)proxy_hangup(dlg, "481 to a re-home request");
		call_finish(c, REHOME_FAILED, c->reason);
		break;

	default:
		/* 401/407 too: nobody should challenge a mid-dialog refresh */
		leg_failed(c, code);
		break;
	}
}


static void call_legs(struct call *c, enum rehome_mode mode)
{
	switch (mode) {

	case REHOME_CHALLENGE_CALLEE:
		c->legv[0] = LEG_CALLEE;
		c->legv[1] = LEG_CALLER;
		c->legc = 2;
		break;

	case REHOME_CALLER:
	case REHOME_CALLEE:
		c->legv[0] = mode == REHOME_CALLER ? LEG_CALLER : LEG_CALLEE;
		c->legc = 1;
		break;

	default:
		c->legv[0] = LEG_CALLER;
		c->legv[1] = LEG_CALLEE;
		c->legc = 2;
		break;
	}
}


static void call_start(struct rehome_job *job, uint32_t idx)
{
	struct item *it = &job->itemv[idx];
	struct dialog *dlg;
	struct call *c;

	if (it->outcome != REHOME_PENDING)
		return;

	dlg = dialog_lookup(it->did);
	if (!dlg || dlg->state != DIALOG_CONFIRMED) {
		item_done(job, idx, REHOME_ENDED, "gone");
		return;
	}
	if (dlg->busy) {
		item_done(job, idx, REHOME_FAILED, "busy");
		return;
	}

	c = mem_zalloc(sizeof(*c), call_destructor);
	if (!c) {
		item_done(job, idx, REHOME_FAILED, "nomem");
		return;
	}

	c->dest.dlg = mem_ref(dlg);
	c->job = job;
	c->idx = idx;
	call_legs(c, job->opts.mode);
	list_append(&job->calls, &c->le, c);
	++rh.inflight;

	/*
	 * From now on this node serves the dialog, under a tag it holds;
	 * replicated with the first request's CSeq.
	 */
	dlg->busy = c;
	dlg->replica = false;
	(void)dialog_atom_str(&dlg->owner, node_id());
	if (it->tag)
		(void)dialog_atom_str(&dlg->shtag, it->tag);

	call_send(c);
}


/* ---- jobs and pacing ---------------------------------------------------- */


/*
 * A BYE (or another node) ended the dialog under a call: stop waiting for
 * its endpoint now; dropping the request stops its retransmissions.
 */
static void calls_reap(struct rehome_job *job)
{
	struct le *le;

	for (le = job->calls.head; le; ) {
		struct call *c = le->data;
		const char *why = call_aborted(c);

		le = le->next;
		if (why)
			call_finish(c, abort_outcome(why), why);
	}
}


static void job_pace(struct rehome_job *job, uint64_t now)
{
	const double burst = MAX(1.0, job->opts.rate * BURST_MS / 1000.0);

	if (since(now, job->reaped) >= TICK_MS) {
		job->reaped = now;
		calls_reap(job);
	}

	job->credit += job->opts.rate * (double)since(now, job->last) / 1000.0;
	job->credit = MIN(job->credit, burst);
	job->last = now;

	while (job->credit >= 1.0 && job->next < job->itemc &&
	       rh.inflight < INFLIGHT_MAX) {
		job->credit -= 1.0;
		call_start(job, job->next++);
	}

	if (job->kind == JOB_TAKE && since(now, job->flushed) >= RESULTS_MS)
		results_flush(job);
}


static void remote_check(struct rehome_job *job, uint64_t now);
static void drain_scan(struct rehome_job *job);


static void job_step(struct rehome_job *job, uint64_t now)
{
	switch (job->kind) {

	case JOB_DRAIN:
		if (since(now, job->scanned) >= DRAIN_SCAN_MS)
			drain_scan(job);
		/*@fallthrough@*/

	case JOB_MOVE:
		remote_check(job, now);
		break;

	default:
		job_pace(job, now);
		break;
	}

	job_finish_if_done(job);
}


static void tick_handler(void *arg)
{
	uint64_t now = tmr_jiffies();
	bool running = false;
	struct le *le;
	(void)arg;

	for (le = rh.jobs.head; le; ) {
		struct rehome_job *job = le->data;

		le = le->next;   /* a job may finish (not leave) in its step */
		if (job->phase != PHASE_RUNNING)
			continue;

		job_step(job, now);
		running |= job->phase == PHASE_RUNNING;
	}

	if (running)
		tmr_start(&rh.tick, TICK_MS, tick_handler, NULL);
}


/** Pace at once, from the main loop (not from inside the caller). */
static void tick_soon(void)
{
	if (!tmr_isrunning(&rh.tick) || tmr_get_expire(&rh.tick) > 0)
		tmr_start(&rh.tick, 0, tick_handler, NULL);
}


/** Start pacing a job whose items are known. */
static void job_run(struct rehome_job *job)
{
	log_info("rehome", "job %u (%s%s%s%s%s): %u dialogs, mode %s, "
		 "body %s, %u/s", job->id, kind_names[job->kind],
		 job->tag ? " " : "", job->tag ? job->tag : "",
		 job->node ? job->kind == JOB_TAKE ? " from " : " to " : "",
		 job->node ? job->node : "", job->itemc,
		 rehome_mode_name(job->opts.mode),
		 rehome_body_name(job->opts.body), job->opts.rate);

	job->phase = PHASE_RUNNING;
	job->last = tmr_jiffies();
	tick_soon();
}


/** Forget the oldest finished jobs beyond JOBS_KEPT. */
static void jobs_trim(void)
{
	uint32_t done = 0;
	struct le *le;

	for (le = rh.jobs.tail; le; ) {
		struct rehome_job *job = le->data;

		le = le->prev;
		if (job->phase == PHASE_DONE && ++done > JOBS_KEPT)
			mem_deref(job);
	}
}


static int job_alloc(struct rehome_job **jobp, enum job_kind kind,
		     const struct rehome_opts *opts, rehome_done_h *doneh,
		     void *arg)
{
	struct rehome_job *job;

	if (opts && opts->rate > RATE_MAX)
		return ERANGE;

	job = mem_zalloc(sizeof(*job), job_destructor);
	if (!job)
		return ENOMEM;

	job->id = ++rh.next_id;
	job->kind = kind;
	job->started = job->last = job->heard = tmr_jiffies();
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


static int job_add(struct rehome_job *job, uint64_t did)
{
	if (job->itemc % ITEMS_PAGE == 0) {
		struct item *v = mem_reallocarray(job->itemv, job->itemc +
						  ITEMS_PAGE, sizeof(*v), NULL);
		if (!v)
			return ENOMEM;

		job->itemv = v;
	}

	memset(&job->itemv[job->itemc], 0, sizeof(job->itemv[0]));
	job->itemv[job->itemc++].did = did;
	return 0;
}


/** A job that cannot run: every item fails, the job ends with err. */
static void job_abort(struct rehome_job *job, int err, const char *reason)
{
	job->err = err;
	items_fail(job, reason);
	job->phase = PHASE_RUNNING;
	conn_answer(job);
	tick_soon();
}


/* ---- taking tags ---------------------------------------------------- */


static void job_ready(struct rehome_job *job);


static void tag_result(int err, const char *name, bool active,
		       uint64_t epoch, const char *holder, void *arg)
{
	struct take_tag *tt = arg;
	struct rehome_job *job = tt->job;
	(void)active;

	if (!job || job->phase != PHASE_TAKING)
		goto out;

	if (err) {
		if (err == EBUSY)
			(void)re_sdprintf(&job->error, "cannot take tag %s: "
					  "held by %s", name, holder);
		else
			(void)re_sdprintf(&job->error, "cannot take tag %s: "
					  "%m", name, err);
		log_warn("rehome", "job %u: %s", job->id, job->error);
		job_abort(job, err, "tag");
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


static int job_tag_add(struct rehome_job *job, const char *name)
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


/** Take the job's tags (the ones not held here), then run it. */
static void job_take_tags(struct rehome_job *job)
{
	struct le *le;

	for (le = job->tags.head; le; ) {
		struct take_tag *tt = le->data;
		int err;

		le = le->next;
		if (shtag_is_active(tt->name)) {
			mem_deref(tt);
			continue;
		}

		err = shtag_activate(tt->name, tag_result, mem_ref(tt));
		if (err) {
			mem_deref(tt);  /* the callback's reference */
			(void)re_sdprintf(&job->error, "cannot take tag %s: %m",
					  tt->name, err);
			job_abort(job, err, "tag");
			return;
		}
	}

	/* (a tag taken at once may have readied the job already) */
	if (job->phase == PHASE_TAKING && list_isempty(&job->tags))
		job_ready(job);
}


/* ---- rehome(tag) ----------------------------------------------------- */


/** The dialogs of a tag not homed here yet (all of them with opts.all) */
static bool collect_tag(struct dialog *dlg, void *arg)
{
	struct rehome_job *job = arg;

	if (dlg->state != DIALOG_CONFIRMED || dlg->busy ||
	    str_cmp(dlg->shtag, job->tag))
		return false;

	if (!job->opts.all && homed_here(dlg))
		return false;

	return job_add(job, dlg->did) != 0;
}


/** The job's tags are held: collect what it moves, answer, run. */
static void job_ready(struct rehome_job *job)
{
	if (job->kind == JOB_REHOME) {
		homed_prune();
		if (dialog_apply(collect_tag, job))
			job->err = ENOMEM;
	}

	job_run(job);
	conn_answer(job);
}


/**
 * Take `tag` (compare-and-set in the cluster) and re-home to this node
 * every confirmed dialog of it not homed here yet (every one with
 * opts->all). The job answers doneh when every dialog has an outcome.
 */
int rehome_tag(struct rehome_job **jobp, const char *tag,
	       const struct rehome_opts *opts, rehome_done_h *doneh,
	       void *arg)
{
	struct rehome_job *job;
	int err;

	if (!str_isset(tag))
		return EINVAL;

	err = job_alloc(&job, JOB_REHOME, opts, doneh, arg);
	if (err)
		return err;

	err  = str_dup(&job->tag, tag);
	err |= job_tag_add(job, tag);
	if (err) {
		mem_deref(job);
		return err;
	}

	if (jobp)
		*jobp = job;

	job_take_tags(job);
	return 0;
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
		err = redis_command(NULL, NULL, "PUBLISH %s %b", rh.chan,
				    mb->buf, mb->end);

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

	err |= str_add(od, "op", op);
	err |= str_add(od, "from", node_id());
	err |= str_add(od, "to", to);
	err |= int_add(od, "job", job);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static void handoff_mark(struct rehome_job *job, uint64_t did)
{
	struct dialog *dlg = dialog_lookup(did);

	if (dlg && !dlg->busy)
		dlg->busy = job;
}


/** The dialog is no longer on its way out (if it is still here). */
static void handoff_clear(struct rehome_job *job, uint64_t did)
{
	struct dialog *dlg = dialog_lookup(did);

	if (dlg && dlg->busy == job)
		dlg->busy = NULL;
}


/**
 * Ask job->node to take items [off, itemc). Until its copy replaces ours,
 * each dialog is marked busy: relayed as usual, but the endpoints' own
 * re-INVITEs get 491, so that only one node changes the session.
 */
static void handoff_send(struct rehome_job *job, uint32_t off)
{
	struct odict *od = NULL, *dids = NULL;
	int err;

	err  = msg_alloc(&od, "take", job->node, job->id);
	err |= odict_alloc(&dids, 64);
	err |= int_add(od, "off", off);
	err |= str_add(od, "mode", rehome_mode_name(job->opts.mode));
	err |= str_add(od, "body", rehome_body_name(job->opts.body));
	err |= int_add(od, "rate", job->opts.rate);

	for (uint32_t i = off; i < job->itemc && !err; i++) {
		char key[16], did[DID_STRSZ];

		(void)re_snprintf(key, sizeof(key), "%u", i - off);
		err = did_encode(did, sizeof(did), job->itemv[i].did);
		err |= str_add(dids, key, did);
	}

	if (!err)
		err = odict_entry_add(od, "dids", ODICT_ARRAY, dids);
	if (!err)
		err = msg_send(od);

	if (err) {
		log_warn("rehome", "job %u: cannot ask %s to take %u dialogs: "
			 "%m", job->id, job->node, job->itemc - off, err);
		for (uint32_t i = off; i < job->itemc; i++)
			item_done(job, i, REHOME_FAILED, "redis");
	}
	else {
		for (uint32_t i = off; i < job->itemc; i++)
			handoff_mark(job, job->itemv[i].did);
		job->heard = tmr_jiffies();
	}

	mem_deref(dids);
	mem_deref(od);
}


/** A node that took dialogs has gone quiet or down: give up on them. */
static void remote_check(struct rehome_job *job, uint64_t now)
{
	const char *why;

	if (job_done_count(job) == job->itemc)
		return;

	if (!cluster_node_alive(job->node))
		why = "node_down";
	else if (since(now, job->heard) > QUIET_MS)
		why = "no_answer";
	else
		return;

	log_warn("rehome", "job %u: %s is %s: %u dialogs not moved", job->id,
		 job->node, why, job->itemc - job_done_count(job));
	items_fail(job, why);
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
		struct item *it = &job->itemv[i];
		struct odict *r = NULL;
		char key[16];

		if (it->reported || it->outcome == REHOME_PENDING)
			continue;

		err  = odict_alloc(&r, 4);
		err |= int_add(r, "0", job->peer_off + i);
		err |= str_add(r, "1", rehome_outcome_name(it->outcome));
		err |= str_add(r, "2", it->reason);
		(void)re_snprintf(key, sizeof(key), "%u", n++);
		err |= odict_entry_add(res, key, ODICT_ARRAY, r);
		mem_deref(r);
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


static int name_decode(unsigned *vp, const char *name, const char **names,
		       size_t n);


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
	if (!job || !r || job->phase != PHASE_RUNNING ||
	    (job->kind != JOB_MOVE && job->kind != JOB_DRAIN) ||
	    str_cmp(job->node, from))
		return;

	job->heard = tmr_jiffies();

	LIST_FOREACH(&r->u.odict->lst, le) {
		const struct odict_entry *e = le->data;
		const struct odict_entry *v[3] = {NULL, NULL, NULL};
		unsigned outcome, i = 0;
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
		    name_decode(&outcome, v[1]->u.str, outcome_names,
				ARRAY_SIZE(outcome_names)) || !outcome)
			continue;

		handoff_clear(job, job->itemv[v[0]->u.integer].did);
		item_done(job, (uint32_t)v[0]->u.integer,
			  (enum rehome_outcome)outcome, v[2]->u.str);
	}

	tick_soon();
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

	err = re_sdprintf(tagp, "%s.%s", b, node_id());
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
		opts->rate = (uint32_t)MIN(n, (uint64_t)RATE_MAX);
}


/** Add one handed-over did; unknown here = failed at once. */
static int take_item(struct rehome_job *job, const char *hex)
{
	struct dialog *dlg;
	struct item *it;
	struct pl pl;
	uint64_t did;
	int err;

	pl_set_str(&pl, hex);
	if (did_decode(&did, &pl))
		return EBADMSG;

	err = job_add(job, did);
	if (err)
		return err;

	it = &job->itemv[job->itemc - 1];
	dlg = dialog_lookup(did);
	if (!dlg) {
		item_done(job, job->itemc - 1, REHOME_FAILED, "unknown");
		return 0;
	}

	err = handover_tag(&it->tag, dlg->shtag, job->node);
	if (!err)
		err = job_tag_add(job, it->tag);

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

	err = job_alloc(&job, JOB_TAKE, &opts, NULL, NULL);
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
		job_abort(job, err, "error");
		return;
	}

	job_take_tags(job);
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
	if (!from || str_cmp(odict_string(od, "to"), node_id()))
		goto out;

	if (!str_cmp(op, "take"))
		take_recv(od, from);
	else if (!str_cmp(op, "results"))
		results_recv(od, from);

 out:
	mem_deref(od);
}


/* ---- move and drain ------------------------------------------------ */


/** An error text for a node that cannot take calls, or NULL */
static const char *peer_check(const char *to)
{
	if (!rh.chan[0])
		return "no cluster";
	if (!str_isset(to))
		return "no node to move to";
	if (!str_cmp(to, node_id()))
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

	if (dlg->state != DIALOG_CONFIRMED || dlg->busy || !served_here(dlg) ||
	    str_cmp(dlg->shtag, pk->job->tag))
		return false;

	return job_add(pk->job, dlg->did) != 0;
}


/**
 * Hand `count` (or `percent`%) of the confirmed calls of `tag` this node
 * serves to node `to`, which moves them to itself at opts->rate.
 * ENOTSUP without a cluster, ENOENT when `to` is not up.
 */
int rehome_move(struct rehome_job **jobp, const char *tag, const char *to,
		uint32_t count, uint32_t percent,
		const struct rehome_opts *opts, rehome_done_h *doneh,
		void *arg)
{
	struct pick pk = {NULL, 0};
	uint32_t n;
	int err;

	if (!str_isset(tag) || !count == !percent || percent > 100)
		return EINVAL;
	if (peer_check(to))
		return rh.chan[0] ? ENOENT : ENOTSUP;

	err = job_alloc(&pk.job, JOB_MOVE, opts, doneh, arg);
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
	job_run(pk.job);
	if (jobp)
		*jobp = pk.job;

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

	if (!served_here(dlg) || dlg->busy)
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
	return job_add(pk->job, dlg->did) != 0;
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
int rehome_drain(struct rehome_job **jobp, const char *to,
		 const struct rehome_opts *opts, rehome_done_h *doneh,
		 void *arg)
{
	struct rehome_job *job;
	int err;

	if (!to && rh.chan[0])
		(void)cluster_node_apply(pick_node, &to);
	if (peer_check(to))
		return rh.chan[0] ? ENOENT : ENOTSUP;

	err = job_alloc(&job, JOB_DRAIN, opts, doneh, arg);
	if (err)
		return err;

	err  = str_dup(&job->node, to);
	err |= hash_alloc(&job->sent, 1024);
	if (err) {
		mem_deref(job);
		return err;
	}

	if (!rh.draining) {
		log_info("rehome", "draining to %s: new calls get 503", to);
		rh.draining = true;
		(void)cluster_set_draining(true);
	}

	drain_scan(job);
	job_run(job);
	if (jobp)
		*jobp = job;

	return 0;
}


/**
 * True while this node refuses new calls (drain): answer new INVITEs 503
 * with this Retry-After (seconds). docs/rehoming.md says why not a 3xx.
 */
bool rehome_draining(uint32_t *retry_after)
{
	if (rh.draining && retry_after)
		*retry_after = DRAIN_RETRY_S;

	return rh.draining;
}


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


/* ---- JSON ------------------------------------------------------------- */


static int int_add(struct odict *od, const char *key, uint64_t v)
{
	return odict_entry_add(od, key, ODICT_INT, (int64_t)v);
}


static int str_add(struct odict *od, const char *key, const char *s)
{
	return s ? odict_entry_add(od, key, ODICT_STRING, s) : 0;
}


static int reasons_add(struct odict *od, const struct rehome_job *job)
{
	struct odict *r;
	struct le *le;
	int err;

	err = odict_alloc(&r, 8);
	if (err)
		return err;

	LIST_FOREACH(&job->reasons, le) {
		const struct reason_count *rc = le->data;

		err |= int_add(r, rc->name, rc->n);
	}

	err |= odict_entry_add(od, "reasons", ODICT_OBJECT, r);
	mem_deref(r);
	return err;
}


/**
 * A job as JSON: {"job","kind","state","total","moved","failed","ended",
 * "pending","reasons",...}. `total` counts the dialogs to move: those
 * that ended on their own are left out of it.
 */
int rehome_job_odict(struct odict **odp, const struct rehome_job *job)
{
	uint64_t end = job->finished ? job->finished : tmr_jiffies();
	struct odict *od;
	int err;

	if (!odp || !job)
		return EINVAL;

	err = odict_alloc(&od, 32);
	if (err)
		return err;

	err |= int_add(od, "job", job->id);
	err |= str_add(od, "kind", kind_names[job->kind]);
	err |= str_add(od, "state", job->phase == PHASE_DONE ?
		       "done" : "running");
	err |= str_add(od, "tag", job->tag);
	if (job->node)
		err |= str_add(od, job->kind == JOB_TAKE ? "from" : "to",
			       job->node);
	err |= str_add(od, "mode", rehome_mode_name(job->opts.mode));
	err |= str_add(od, "body", rehome_body_name(job->opts.body));
	err |= int_add(od, "rate", job->opts.rate);
	err |= int_add(od, "total", job->itemc - job->count[REHOME_ENDED]);
	err |= int_add(od, "moved", job->count[REHOME_MOVED]);
	err |= int_add(od, "failed", job->count[REHOME_FAILED]);
	err |= int_add(od, "ended", job->count[REHOME_ENDED]);
	err |= int_add(od, "pending", job->itemc - job_done_count(job));
	err |= int_add(od, "elapsed_ms", end - job->started);
	err |= reasons_add(od, job);
	err |= str_add(od, "error", job->error);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/** Add an array under `key` and drop the caller's reference */
static int array_add(struct odict *od, const char *key, struct odict *arr)
{
	int err = odict_entry_add(od, key, ODICT_ARRAY, arr);

	mem_deref(arr);
	return err;
}


static int item_odict(struct odict **odp, const struct item *it)
{
	char did[DID_STRSZ];
	struct odict *o;
	int err;

	err = odict_alloc(&o, 4);
	if (err)
		return err;

	err |= did_encode(did, sizeof(did), it->did);
	err |= str_add(o, "did", did);
	err |= str_add(o, "outcome", rehome_outcome_name(it->outcome));
	if (it->reason[0])
		err |= str_add(o, "reason", it->reason);

	if (err)
		mem_deref(o);
	else
		*odp = o;

	return err;
}


/** {"job":ID,"dialogs":[{"did","outcome","reason"}...]}, at most limit */
static int job_dialogs_odict(struct odict **odp, const struct rehome_job *job,
			     uint32_t limit)
{
	struct odict *od = NULL, *arr = NULL;
	int err;

	err = odict_alloc(&od, 4) | odict_alloc(&arr, 16);
	for (uint32_t i = 0; i < job->itemc && i < limit && !err; i++) {
		struct odict *o = NULL;
		char key[16];

		err = item_odict(&o, &job->itemv[i]);
		if (err)
			break;

		(void)re_snprintf(key, sizeof(key), "%u", i);
		err = odict_entry_add(arr, key, ODICT_OBJECT, o);
		mem_deref(o);
	}

	err |= int_add(od, "job", job->id);
	err |= array_add(od, "dialogs", mem_ref(arr));
	mem_deref(arr);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/* ---- control API -------------------------------------------------------- */


static void reply_job(struct http_conn *conn, uint16_t scode,
		      const struct rehome_job *job)
{
	struct odict *od = NULL;
	int err;

	err = rehome_job_odict(&od, job);
	if (err)
		(void)ctl_reply_error(conn, 500, "job: %m", err);
	else
		(void)ctl_reply_json(conn, scode, od);

	mem_deref(od);
}


/** Answer a POST that waited for the job's tags */
static void conn_answer(struct rehome_job *job)
{
	if (!job->conn)
		return;

	if (job->err)
		(void)ctl_reply_error(job->conn, job->err == EBUSY ||
				      job->err == ESTALE ? 409 : 503, "%s",
				      job->error ? job->error : "job failed");
	else
		reply_job(job->conn, 202, job);

	job->conn = mem_deref(job->conn);
}


static int opts_decode(struct rehome_opts *opts, const struct odict *body,
		       const char **errp)
{
	const char *s;
	uint64_t n;

	memset(opts, 0, sizeof(*opts));
	if (!body)
		return 0;

	s = odict_string(body, "mode");
	if (s && rehome_mode_decode(&opts->mode, s)) {
		*errp = "unknown mode";
		return EINVAL;
	}

	s = odict_string(body, "body");
	if (s && rehome_body_decode(&opts->body, s)) {
		*errp = "unknown body";
		return EINVAL;
	}

	if (odict_get_number(body, &n, "rate")) {
		if (n > RATE_MAX) {
			*errp = "rate out of range";
			return EINVAL;
		}
		opts->rate = (uint32_t)n;
	}

	(void)odict_get_boolean(body, &opts->all, "all");
	return 0;
}


/** Answer a job just started: now, or once its tags are taken */
static void reply_started(struct http_conn *conn, struct rehome_job *job)
{
	job->conn = mem_ref(conn);
	if (job->phase != PHASE_TAKING)
		conn_answer(job);
}


/** POST /v1/rehome {"tag","mode","body","rate","all"} */
static void post_rehome(struct http_conn *conn, const struct ctl_req *req,
			void *arg)
{
	struct rehome_opts opts;
	struct rehome_job *job;
	const char *tag, *why = NULL;
	int err;
	(void)arg;

	tag = req->body ? odict_string(req->body, "tag") : NULL;
	if (!str_isset(tag)) {
		(void)ctl_reply_error(conn, 400, "\"tag\" is required");
		return;
	}

	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	if (rh.chan[0] && !shtag_holder(tag)) {
		(void)ctl_reply_error(conn, 404, "no such tag: %s", tag);
		return;
	}

	err = rehome_tag(&job, tag, &opts, NULL, NULL);
	if (err) {
		(void)ctl_reply_error(conn, 500, "rehome %s: %m", tag, err);
		return;
	}

	reply_started(conn, job);
}


static void reply_peer_error(struct http_conn *conn, int err, const char *to)
{
	const char *why = peer_check(to);

	if (err == EINVAL)
		(void)ctl_reply_error(conn, 400, "bad request");
	else if (rh.chan[0] && to && !cluster_node_find(to))
		(void)ctl_reply_error(conn, 404, "no such node: %s", to);
	else if (why)
		(void)ctl_reply_error(conn, 409, "%s%s%s", to ? to : "",
				      to ? ": " : "", why);
	else
		(void)ctl_reply_error(conn, 500, "%m", err);
}


/** POST /v1/move {"tag","to","count"|"percent","mode","body","rate"} */
static void post_move(struct http_conn *conn, const struct ctl_req *req,
		      void *arg)
{
	uint64_t count = 0, percent = 0;
	struct rehome_opts opts;
	struct rehome_job *job;
	const char *tag, *to, *why = NULL;
	int err;
	(void)arg;

	tag = req->body ? odict_string(req->body, "tag") : NULL;
	to = req->body ? odict_string(req->body, "to") : NULL;
	if (!str_isset(tag) || !str_isset(to)) {
		(void)ctl_reply_error(conn, 400, "\"tag\" and \"to\" are "
				      "required");
		return;
	}

	(void)odict_get_number(req->body, &count, "count");
	(void)odict_get_number(req->body, &percent, "percent");
	if (!count == !percent || percent > 100 || count > UINT32_MAX) {
		(void)ctl_reply_error(conn, 400, "give \"count\" or "
				      "\"percent\" (1-100)");
		return;
	}

	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	err = rehome_move(&job, tag, to, (uint32_t)count, (uint32_t)percent,
			  &opts, NULL, NULL);
	if (err) {
		reply_peer_error(conn, err, to);
		return;
	}

	reply_started(conn, job);
}


/** POST /v1/drain {"to","mode","body","rate"} */
static void post_drain(struct http_conn *conn, const struct ctl_req *req,
		       void *arg)
{
	struct rehome_opts opts;
	struct rehome_job *job;
	const char *to, *why = NULL;
	int err;
	(void)arg;

	to = req->body ? odict_string(req->body, "to") : NULL;
	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	err = rehome_drain(&job, to, &opts, NULL, NULL);
	if (err) {
		reply_peer_error(conn, err, to);
		return;
	}

	reply_started(conn, job);
}


/** GET /v1/jobs: {"jobs":[job...]}, oldest first */
static void get_jobs(struct http_conn *conn, const struct ctl_req *req,
		     void *arg)
{
	struct odict *od = NULL, *arr = NULL;
	struct le *le;
	int err;
	(void)req;
	(void)arg;

	err = odict_alloc(&od, 4) | odict_alloc(&arr, 16);
	for (le = rh.jobs.head; le && !err; le = le->next) {
		const struct rehome_job *job = le->data;
		struct odict *o = NULL;
		char key[16];

		err = rehome_job_odict(&o, job);
		if (err)
			break;

		(void)re_snprintf(key, sizeof(key), "%u", job->id);
		err = odict_entry_add(arr, key, ODICT_OBJECT, o);
		mem_deref(o);
	}

	err |= array_add(od, "jobs", mem_ref(arr));

	if (err)
		(void)ctl_reply_error(conn, 500, "jobs: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(arr);
	mem_deref(od);
}


/** ?limit=N of a request, else LIST_DEFAULT */
static uint32_t query_limit(const struct http_msg *msg)
{
	struct pl n;

	if (re_regex(msg->prm.p, msg->prm.l, "limit=[0-9]+", &n))
		return LIST_DEFAULT;

	return pl_u32(&n);
}


/** "ID" or "ID/dialogs" */
static int job_path_decode(struct pl *id, struct pl *sub,
			   const struct pl *rest)
{
	struct pl slash;

	if (re_regex(rest->p, rest->l, "[0-9]+[/]*[a-z]*", id, &slash, sub))
		return ENOENT;

	if (id->p != rest->p || sub->p + sub->l != rest->p + rest->l)
		return ENOENT;

	if (pl_isset(sub) ? slash.l != 1 || pl_strcmp(sub, "dialogs") :
	    slash.l != 0)
		return ENOENT;

	return 0;
}


/** GET /v1/jobs/ID and GET /v1/jobs/ID/dialogs[?limit=N] */
static void get_job(struct http_conn *conn, const struct ctl_req *req,
		    void *arg)
{
	const struct rehome_job *job;
	struct odict *od = NULL;
	struct pl id, sub;
	int err;
	(void)arg;

	if (job_path_decode(&id, &sub, &req->rest)) {
		(void)ctl_reply_error(conn, 404, "no such job: %r",
				      &req->rest);
		return;
	}

	job = rehome_job_find(pl_u32(&id));
	if (!job) {
		(void)ctl_reply_error(conn, 404, "no such job: %r", &id);
		return;
	}

	if (!pl_isset(&sub)) {
		reply_job(conn, 200, job);
		return;
	}

	err = job_dialogs_odict(&od, job, query_limit(req->msg));
	if (err)
		(void)ctl_reply_error(conn, 500, "job %r: %m", &id, err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** "rehome" in GET /v1/status */
static int status_add(struct odict *status, void *arg)
{
	uint32_t running = 0;
	struct odict *od;
	struct le *le;
	int err;
	(void)arg;

	LIST_FOREACH(&rh.jobs, le)
		running += ((struct rehome_job *)le->data)->phase != PHASE_DONE;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= odict_entry_add(od, "draining", ODICT_BOOL, rh.draining);
	err |= int_add(od, "jobs_running", running);
	err |= int_add(od, "inflight", rh.inflight);
	err |= odict_entry_add(status, "rehome", ODICT_OBJECT, od);

	mem_deref(od);
	return err;
}


/* ---- names and set-up --------------------------------------------------- */


static int name_decode(unsigned *vp, const char *name, const char **names,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!str_casecmp(name, names[i])) {
			*vp = (unsigned)i;
			return 0;
		}
	}

	return EINVAL;
}


int rehome_mode_decode(enum rehome_mode *modep, const char *name)
{
	unsigned v;
	int err = name_decode(&v, name, mode_names, ARRAY_SIZE(mode_names));

	if (!err)
		*modep = (enum rehome_mode)v;

	return err;
}


int rehome_body_decode(enum rehome_body *bodyp, const char *name)
{
	unsigned v;
	int err = name_decode(&v, name, body_names, ARRAY_SIZE(body_names));

	if (!err)
		*bodyp = (enum rehome_body)v;

	return err;
}


const char *rehome_mode_name(enum rehome_mode mode)
{
	return (unsigned)mode < ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}


const char *rehome_body_name(enum rehome_body body)
{
	return (unsigned)body < ARRAY_SIZE(body_names) ? body_names[body] : "?";
}


const char *rehome_outcome_name(enum rehome_outcome outcome)
{
	return (unsigned)outcome < ARRAY_SIZE(outcome_names) ?
		outcome_names[outcome] : "?";
}


int rehome_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;

	rh.cfg = cfg;

	err = hash_alloc(&rh.homed, 4096);
	if (err)
		return err;

	if (cluster_enabled()) {
		(void)re_snprintf(rh.chan, sizeof(rh.chan), "%s:rehome",
				  cluster_name());
		err = redis_subscribe(rh.chan, msg_handler, NULL);
		if (err)
			return err;
	}

	err  = ctl_route_add("POST", "/v1/rehome", post_rehome, NULL);
	err |= ctl_route_add("POST", "/v1/move", post_move, NULL);
	err |= ctl_route_add("POST", "/v1/drain", post_drain, NULL);
	err |= ctl_route_add("GET", "/v1/jobs", get_jobs, NULL);
	err |= ctl_route_add("GET", "/v1/jobs/", get_job, NULL);
	err |= ctl_status_add(status_add, NULL);

	return err;
}


void rehome_close(void)
{
	tmr_cancel(&rh.tick);
	list_flush(&rh.jobs);
	hash_flush(rh.homed);
	rh.homed = mem_deref(rh.homed);
	rh.inflight = 0;
	rh.draining = false;
	rh.doneh = NULL;
	rh.chan[0] = '\0';
	rh.cfg = NULL;
}
