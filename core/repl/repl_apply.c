/**
 * @file repl_apply.c  Dialog replication: other nodes' changes, applied here
 *
 * A message reaches this node three ways: live on `<cluster>:repl:<tag>`
 * (the tags it listens to, repl_tags.c), as a
 * snapshot loaded after (re)connect (repl_sync.c), or read back after one
 * of our writes was refused (repl_repair()). Each is checked (signature,
 * header) and applied the same way; a snapshot is a record, the dialog
 * alone under its own seal (repl_publish.c), whose dialog says what a
 * header would, or a whole message as the release before stored it.
 * Redis accepted it, so it is the
 * truth, even about a dialog this node thought it served; a replica still
 * applies only versions above its own, which makes snapshots and messages
 * that cross harmless. A read-back (repair) is applied whatever its
 * version: it is what Redis holds.
 *
 * Ownership moves with the tag: a node that becomes holder adopts the
 * tag's replicas (owner = itself, new version, replicated); a node that
 * sees another node take a tag turns its own dialogs of that tag into
 * replicas at once, and the new owner's versions replace them.
 */
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "early.h"
#include "repl.h"
#include "repl_int.h"

enum {
	JSON_DEPTH = 2,
};

/** A replication message's header, decoded */
struct env {
	const char *node;
	const char *tag;
	uint64_t epoch;
	uint64_t ver;
	uint64_t did;
	uint64_t ts;          /* sender's wall clock, us */
	bool ended;
};


static void lag_sample(uint64_t ts)
{
	uint64_t now = repl_now_us();

	if (!ts || ts > now)
		return;

	repl_st.lag[repl_st.lagc++ % REPL_LAG_SAMPLES] =
		(uint32_t)min(now - ts, (uint64_t)UINT32_MAX);
	metrics_repl_lag(now - ts);
}


static void adopt(struct dialog *dlg)
{
	if (dialog_serve(dlg, cluster_node_id()))
		return;

	dialog_changed(dlg, DIALOG_EV_UPDATED);
}


static void drop_local(struct dialog *dlg)
{
	dialog_hold(dlg);   /* stop replicating it, whoever holds it */
	dialog_remove(dlg);
}


/*
 * Is this news here? It counts as seen for a load under way (once per
 * message: call it once).
 */
static bool wanted(const struct env *env, enum repl_origin origin)
{
	const struct dialog *local = dialog_lookup(env->did);

	/* a late snapshot of a call that ended while loading */
	if (repl_sync_seen(env->did, env->ended) &&
	    origin == REPL_ORIGIN_SNAPSHOT)
		return false;

	return origin == REPL_ORIGIN_REPAIR || !local ||
		env->ver > local->version;
}


/* dlg: the version to hold, decoded (NULL: the call ended) */
static void apply(const struct env *env, struct dialog *dlg,
		  enum repl_origin origin)
{
	struct dialog *local = dialog_lookup(env->did);

	/* Redis accepted it, so it is the truth, even about ours */
	if (local && !local->replica) {
		++repl_st.n.conflicts;
		dialog_log(LOG_INFO, "repl", local, "%s took it over "
			   "(version %llu)", env->node,
			   (unsigned long long)env->ver);
	}

	if (local)
		drop_local(local);

	++repl_st.n.received;
	metrics_repl_received();
	if (origin == REPL_ORIGIN_CHANNEL)
		lag_sample(env->ts);

	if (!dlg)
		return;

	/* ours from a previous run, of a tag that is still ours */
	if (!dialog_insert(dlg) && repl_is_me(dlg->owner) &&
	    repl_replicated_here(dlg))
		adopt(dlg);
}


static void bad_dialog(void)
{
	++repl_st.n.dropped;
	metrics_repl_dropped("bad_dialog");
}


static void msg_apply(const struct env *env, const struct pl *json,
		      enum repl_origin origin)
{
	struct dialog *dlg = NULL;

	if (!wanted(env, origin))
		return;

	if (!env->ended) {
		if (dialog_decode(&dlg, json->p, json->l) ||
		    dlg->did != env->did) {
			bad_dialog();
			mem_deref(dlg);
			return;
		}
		dialog_hold(dlg);
	}

	apply(env, dlg, origin);
	mem_deref(dlg);
}


static int env_decode(struct env *env, struct odict **odp,
		      const struct pl *head)
{
	const char *ev, *did;
	struct pl pl;
	int err;

	err = json_decode_odict(odp, 8, head->p, head->l, JSON_DEPTH);
	if (err)
		return err;

	env->node = odict_string(*odp, "node");
	env->tag = odict_string(*odp, "tag");
	ev = odict_string(*odp, "ev");
	did = odict_string(*odp, "did");
	if (!env->node || !env->tag || !ev || !did ||
	    !odict_get_number(*odp, &env->epoch, "epoch") ||
	    !odict_get_number(*odp, &env->ver, "ver"))
		return EBADMSG;

	(void)odict_get_number(*odp, &env->ts, "ts");
	env->ended = 0 == str_cmp(ev, "ended");
	pl_set_str(&pl, did);

	return did_decode(&env->did, &pl);
}


/*
 * A snapshot's record "<seal>\n<dialog>" (repl_publish.c): the dialog says
 * what a message's header would (its writer is taken to be its owner).
 */
static void record_apply(const struct pl *rec, enum repl_origin origin)
{
	struct dialog *dlg = NULL;
	struct env env = {0};
	struct pl json;
	int err;

	err = cluster_record_open(&json, rec);
	if (err) {
		++repl_st.n.dropped;   /* and counted by reason below us */
		log_debug("repl", "snapshot dropped: %m", err);
		return;
	}

	if (dialog_decode(&dlg, json.p, json.l)) {
		bad_dialog();
		return;
	}

	env.node = dlg->owner;
	env.tag = dlg->shtag;
	env.ver = dlg->version;
	env.did = dlg->did;

	/* a tag we do not listen to: its replica would not be kept fresh */
	if (origin == REPL_ORIGIN_SNAPSHOT && !repl_tag_watched(env.tag))
		goto out;

	if (wanted(&env, origin)) {
		dialog_hold(dlg);
		apply(&env, dlg, origin);
	}

 out:
	mem_deref(dlg);
}


/**
 * Check a signed message "<signature> <header>\n<dialog>", or a snapshot
 * read from Redis (a record, or such a message from the release before),
 * and apply it
 */
void repl_msg_apply(const struct pl *msg, enum repl_origin origin)
{
	struct odict *od = NULL;
	struct env env = {0};
	struct pl body, head, json = PL_INIT;
	const char *nl;
	int err;

	if (origin != REPL_ORIGIN_CHANNEL && cluster_record_is(msg)) {
		record_apply(msg, origin);
		return;
	}

	/* a snapshot is old by nature: only a live one can be a replay */
	err = origin == REPL_ORIGIN_CHANNEL ? cluster_msg_open(&body, msg)
		: cluster_msg_open_stored(&body, msg);
	if (err) {
		++repl_st.n.dropped;   /* and counted by reason below us */
		log_debug("repl", "message dropped: %m", err);
		return;
	}

	head = body;
	nl = pl_strchr(&body, '\n');
	if (nl) {
		head.l = nl - body.p;
		json.p = nl + 1;
		json.l = body.l - head.l - 1;
	}

	err = env_decode(&env, &od, &head);
	if (err || (!env.ended && !pl_isset(&json))) {
		++repl_st.n.dropped;
		metrics_repl_dropped("malformed");
		goto out;
	}

	if (origin == REPL_ORIGIN_CHANNEL && repl_is_me(env.node))
		goto out;   /* our own, echoed */

	/* a tag we do not listen to: its replica would not be kept fresh */
	if (origin == REPL_ORIGIN_SNAPSHOT && !repl_tag_watched(env.tag))
		goto out;

	msg_apply(&env, &json, origin);

 out:
	mem_deref(od);
}


/** Messages on `<cluster>:repl:<tag>` (repl_tags.c) */
void repl_channel_handler(const struct pl *chan, const struct pl *msg,
			  void *arg)
{
	(void)chan;
	(void)arg;

	repl_msg_apply(msg, REPL_ORIGIN_CHANNEL);
}


/* ---- repair: read a snapshot back after a refused write -------------- */


/** Never reached Redis: nobody else knows it, so it stays served here */
static void unknown_keep(uint64_t did)
{
	struct dialog *dlg = dialog_lookup(did);

	if (!dlg || !dlg->replica || !repl_is_me(dlg->owner))
		return;

	dialog_log(LOG_INFO, "repl", dlg, "unknown to the cluster, served "
		   "here without replication");
	(void)dialog_serve(dlg, cluster_node_id());
}


static void repair_reply(int err, const struct redisReply *reply, void *arg)
{
	uint64_t *did = arg;
	struct pl msg;

	if (!repl_st.up || err)
		goto out;

	if (reply->type == REDIS_REPLY_STRING) {
		msg.p = reply->str;
		msg.l = reply->len;
		repl_msg_apply(&msg, REPL_ORIGIN_REPAIR);
	}
	else if (reply->type == REDIS_REPLY_NIL) {
		unknown_keep(*did);
	}

 out:
	mem_deref(did);
}


/** Our write of did was refused: take what Redis holds instead */
void repl_repair(uint64_t did)
{
	char key[REPL_KEY_SIZE];
	uint64_t *arg;

	if (repl_key_print(key, sizeof(key), did))
		return;

	arg = mem_alloc(sizeof(*arg), NULL);
	if (!arg)
		return;

	*arg = did;
	if (repl_snapshot_get(key, repair_reply, arg))
		mem_deref(arg);
}


/* ---- tags moving ---------------------------------------------------- */


struct tag_ctx {
	const char *tag;
	bool mine;
};


/**
 * A ringing call of a tag taken from a dead node: no answer to re-home,
 * and nobody to relay one, so it ends, cleanly for both endpoints
 * (early.c), and the end is replicated. A live node's ringing calls stay
 * with it: its INVITE transactions are still there.
 */
static void orphan_end(struct dialog *dlg)
{
	(void)dialog_serve(dlg, cluster_node_id());
	if (early_end(dlg))
		dialog_log(LOG_INFO, "repl", dlg, "ringing when its node died, "
			   "with nothing replicated to end it with");
	(void)dialog_end(dlg);
}


static bool tag_handler(struct dialog *dlg, void *arg)
{
	struct tag_ctx *ctx = arg;

	if (str_cmp(dlg->shtag, ctx->tag))
		return false;

	if (ctx->mine && dlg->replica && dlg->state == DIALOG_EARLY &&
	    !cluster_node_alive(dlg->owner))
		orphan_end(dlg);
	else if (ctx->mine && dlg->replica)
		adopt(dlg);
	else if (!ctx->mine && !dlg->replica)
		dialog_hold(dlg);

	return false;
}


/**
 * shtag_holder_h: tag `tag` now belongs to `holder`: adopt its replicas
 * when that is us, hand our dialogs of it over when it is another node; a
 * released tag (no holder) leaves every dialog with its owner.
 */
void repl_shtag_changed(const char *tag, const char *holder, void *arg)
{
	struct tag_ctx ctx = {tag, repl_is_me(holder)};
	(void)arg;

	if (!repl_st.up || !str_isset(holder))
		return;

	(void)dialog_apply(tag_handler, &ctx);
	repl_tags_holder(tag, holder);
}
