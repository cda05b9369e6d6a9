/**
 * @file repl.c  Dialog replication: signed changes over pub/sub, snapshots in Redis
 *
 * Every change of a dialog this node serves is written to Redis as the
 * dialog's snapshot and published on its sharing tag's channel to the
 * nodes that listen to the tag (repl_tags.c), by one script that
 * refuses a write from a node that lost the dialog's tag (fence) or one
 * older than what Redis holds (version); replicas apply what they
 * receive. The work is in three pieces, sharing the state declared in
 * repl_int.h:
 *   repl_publish.c  this node's changes: message, script, the endings
 *                   queued while Redis is down, snapshot TTLs;
 *   repl_apply.c    other nodes' changes: checks, version rule, read-back
 *                   of a refused write, dialogs changing hands with a tag;
 *   repl_sync.c     after (re)connect: load every snapshot, sweep, write
 *                   ours again, then "synced".
 * This file holds the state, the life cycle, the serving rule and the
 * status. Replication sits on the cluster layer and subscribes to it: the
 * sync is a step of the cluster's (re)connect sequence, reports "synced"
 * down to it (cluster_set_synced), and tags changing hands come through
 * a shtag observer; status is its own GET /v1/status hook, and the
 * dialogs no other node could continue are counted by its metrics
 * collector (repl_metrics.c).
 *
 * Who serves a dialog (repl_serve_rule, docs/cluster.md): its owner, and
 * nobody else. Ownership moves with the tag: a node that becomes holder
 * adopts the tag's replicas (owner = itself, new version, replicated); a
 * node that sees another node take a tag turns its own dialogs of that tag
 * into replicas at once, and the new owner's versions replace them.
 */
#include <string.h>
#include <stdlib.h>
#include <sys/time.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "ctl.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "repl_int.h"

struct repl_state repl_st;

/* what the cluster layer holds for us, released by repl_close() */
static struct {
	struct cluster_step *step;
	struct shtag_observer *obs;
} subs;


uint64_t repl_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}


bool repl_is_me(const char *node)
{
	return node && 0 == str_cmp(node, cluster_node_id());
}


/** Only the holder of a tag replicates it (or anyone, if nobody holds it) */
bool repl_replicated_here(const struct dialog *dlg)
{
	const char *holder = shtag_holder(dlg->shtag);

	return !str_isset(holder) || repl_is_me(holder);
}


/** The snapshot's key of did: <cluster>:dlg:<did in hex> */
int repl_key_print(char *buf, size_t sz, uint64_t did)
{
	char hex[DID_STRSZ];
	int err;

	err = did_encode(hex, sizeof(hex), did);
	if (err)
		return err;

	return re_snprintf(buf, sz, "%s%s", repl_st.dlg_prefix, hex) > 0
		? 0 : ENOMEM;
}


/* ---- serving -------------------------------------------------------- */


/**
 * What to do with an in-dialog request for dlg. REPL_RELAY gives the
 * serving node in *nodep (cluster_node_lsnr() has its address).
 */
enum repl_serve repl_serve_rule(const struct dialog *dlg, const char **nodep)
{
	const char *auth;

	if (!dlg)
		return REPL_HOLD;

	if (!repl_st.up)
		return dlg->replica ? REPL_HOLD : REPL_SERVE;

	auth = dlg->owner;
	if (repl_is_me(auth))
		return dlg->replica ? REPL_HOLD : REPL_SERVE;

	if (nodep)
		*nodep = auth;

	return cluster_node_alive(auth) ? REPL_RELAY : REPL_HOLD;
}


/* ---- status --------------------------------------------------------- */


static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}


static int lag_status(struct odict *od)
{
	size_t n = min(repl_st.lagc, (size_t)REPL_LAG_SAMPLES);
	uint32_t *v = NULL;
	struct odict *o;
	int err;

	err = odict_alloc(&o, 4);
	if (err)
		return err;

	err = odict_entry_add(o, "samples", ODICT_INT, (int64_t)n);
	if (n) {
		v = mem_alloc(n * sizeof(*v), NULL);
		if (!v) {
			err = ENOMEM;
			goto out;
		}

		memcpy(v, repl_st.lag, n * sizeof(*v));
		qsort(v, n, sizeof(*v), u32_cmp);
		err |= odict_entry_add(o, "p50", ODICT_INT,
				       (int64_t)v[n / 2]);
		err |= odict_entry_add(o, "p99", ODICT_INT,
				       (int64_t)v[min(n * 99 / 100, n - 1)]);
		err |= odict_entry_add(o, "max", ODICT_INT,
				       (int64_t)v[n - 1]);
	}
	if (!err)
		err = odict_entry_add(od, "lag_us", ODICT_OBJECT, o);

 out:
	mem_deref(v);
	mem_deref(o);
	return err;
}


/**
 * ctl_status_h: add "repl": {synced, counters, lag_us{samples, p50, p99,
 * max}, unprotected{total, by reason}} to od, after the cluster's keys (repl_init() follows cluster_init).
 */
int repl_status(struct odict *od, void *arg)
{
	struct odict *o;
	int err;
	(void)arg;

	if (!od)
		return EINVAL;
	if (!repl_st.up)
		return 0;

	err = odict_alloc(&o, 16);
	if (err)
		return err;

	err  = odict_entry_add(o, "synced", ODICT_BOOL, cluster_synced());
	err |= odict_entry_add(o, "sent", ODICT_INT,
			       (int64_t)repl_st.n.sent);
	err |= odict_entry_add(o, "received", ODICT_INT,
			       (int64_t)repl_st.n.received);
	err |= odict_entry_add(o, "dropped", ODICT_INT,
			       (int64_t)repl_st.n.dropped);
	err |= odict_entry_add(o, "stale", ODICT_INT,
			       (int64_t)repl_st.n.stale);
	err |= odict_entry_add(o, "fenced", ODICT_INT,
			       (int64_t)repl_st.n.fenced);
	err |= odict_entry_add(o, "conflicts", ODICT_INT,
			       (int64_t)repl_st.n.conflicts);
	err |= odict_entry_add(o, "not_replicated", ODICT_INT,
			       (int64_t)repl_st.n.skipped);
	err |= odict_entry_add(o, "pending_resnapshot", ODICT_INT,
			       (int64_t)repl_st.n.dirty);
	err |= odict_entry_add(o, "pending_endings", ODICT_INT,
			       (int64_t)repl_endings_pending());
	err |= odict_entry_add(o, "endings_lost", ODICT_INT,
			       (int64_t)repl_st.n.ended_lost);
	err |= odict_entry_add(o, "snapshots_loaded", ODICT_INT,
			       (int64_t)repl_st.n.loaded);
	if (!err)
		err = lag_status(o);
	if (!err)
		err = repl_unprotected_status(o);
	if (!err)
		err = odict_entry_add(od, "repl", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}


/* ---- life cycle ----------------------------------------------------- */


/**
 * Start replicating, on the cluster cluster_init() joined: nothing
 * happens without one.
 */
int repl_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;
	if (!cluster_enabled())
		return 0;
	if (repl_st.up)
		return EALREADY;

	memset(&repl_st, 0, sizeof(repl_st));
	repl_st.ttl_ms = (uint64_t)cfg->dialog_timeout * 1000;
	re_snprintf(repl_st.chan, sizeof(repl_st.chan), "%s:repl:",
		    cfg->cluster);
	re_snprintf(repl_st.tags_key, sizeof(repl_st.tags_key), "%s:shtags",
		    cfg->keyns);
	re_snprintf(repl_st.dlg_prefix, sizeof(repl_st.dlg_prefix),
		    "%s:dlg:", cfg->keyns);

	err = repl_publish_init();
	if (err)
		goto out;

	err = repl_tags_init(cfg);
	if (err)
		goto out;

	/* after the tags' step: the fence and the serving rule need them */
	err = cluster_sync_step_add(&subs.step, "dialog", repl_sync,
				    repl_sync_stop, NULL);
	if (err)
		goto out;

	err = shtag_observer_add(&subs.obs, repl_shtag_changed, NULL);
	if (err)
		goto out;

	err = ctl_status_add(repl_status, NULL);
	if (err)
		goto out;

	err = metrics_collector_add(repl_metrics_print, NULL);
	if (err)
		goto out;

	repl_publish_start();
	repl_metrics_start();
	repl_st.up = true;

 out:
	if (err) {
		log_error("repl", "init: %m", err);
		repl_close();
	}
	return err;
}


/** A reload: snapshots written from now on live for the new dialog_timeout */
void repl_conf_apply(const struct rh_conf *cfg)
{
	if (repl_st.up && cfg)
		repl_st.ttl_ms = (uint64_t)cfg->dialog_timeout * 1000;
}


void repl_close(void)
{
	subs.obs = mem_deref(subs.obs);
	subs.step = mem_deref(subs.step);

	if (!repl_st.up)
		return;

	repl_tags_close();
	repl_publish_close();
	repl_metrics_stop();
	repl_sync_stop(NULL);   /* lets a sync under way go */
	memset(&repl_st, 0, sizeof(repl_st));
}
