/**
 * @file repl_sync.c  Dialog replication: loading every snapshot at (re)connect
 *
 * On reconnect the node subscribes first (redis.c), then the cluster runs
 * its (re)connect sequence, where repl.c added repl_sync() after the
 * tags' step: it sends the endings queued while Redis was down (and,
 * on another server than before, those the last one took lately), so
 * that their snapshots are gone before it loads every snapshot (SCAN +
 * a read of each, applied as any message), drops replicas that no longer exist
 * anywhere (ended while this node was not listening) and writes its own
 * dialogs again (the script makes an unchanged one a TTL refresh); then
 * it reports the node "synced" to the cluster. A Sentinel fail-over is
 * such a reconnect: the promoted replica gets back whatever it missed.
 * The same path loads a starting node.
 *
 * The dids met while loading are kept in a hash for the sweep, with the
 * ones that ended meanwhile: the channel and the snapshots come over two
 * connections, so the "ended" of a call may arrive before the reply to
 * the read that Redis ran just before the call's snapshot was deleted;
 * that late snapshot must not bring the call back (a did is never used
 * twice, so an ended did stays ended). Commands
 * in flight hold a reference to their sync; when Redis goes down (or a
 * new sync starts) the current one is let go, and late replies see that
 * they belong to a sync that is no longer current and do nothing.
 *
 * A node loads only the sharing tags it listens to (repl_tags.c): the
 * others' snapshots are read and skipped (repl_msg_apply). A tag it
 * starts listening to while up (one it takes without backing it up) is
 * loaded the same way once its channel is confirmed, by a load of its
 * own (repl_sync_tag): no sweep, no re-write, its dids kept like the full
 * load's so that an ending heard meanwhile wins too. The snapshots'
 * keys do not say their tag, so such a load reads every snapshot.
 */
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "redis.h"
#include "cluster.h"
#include "repl.h"
#include "repl_int.h"

enum {
	SCAN_COUNT   = 1000,
	SEEN_BUCKETS = 4096,
};

/** A did seen while loading, so the sweep keeps it (unless it ended) */
struct seen {
	struct le he;
	uint64_t did;
	bool ended;
};

/** Loading every snapshot after (re)connect, or one tag's */
struct sync {
	struct le le;         /* syncs, while live */
	cluster_done_h *h;    /* the full load's end */
	repl_sync_tag_h *tagh; /* one tag's load's end */
	char *tag;
	struct hash *seen;
	unsigned pending;     /* commands in flight */
	bool scan_done;
	uint32_t loaded;
};

static struct sync *current;   /* the full load under way, if any */
static struct list syncs;      /* every load under way, current too */


static void seen_destructor(void *arg)
{
	struct seen *s = arg;

	hash_unlink(&s->he);
}


static void sync_destructor(void *arg)
{
	struct sync *s = arg;

	list_unlink(&s->le);
	hash_flush(s->seen);
	mem_deref(s->seen);
	mem_deref(s->tag);
}


static bool seen_cmp(struct le *le, void *arg)
{
	const struct seen *s = le->data;

	return s->did == *(uint64_t *)arg;
}


static struct seen *seen_find(const struct sync *sync, uint64_t did)
{
	return list_ledata(hash_lookup(sync->seen, (uint32_t)did, seen_cmp,
				       &did));
}


static bool seen_has(const struct sync *sync, uint64_t did)
{
	return NULL != seen_find(sync, did);
}


static bool sync_live(const struct sync *sync)
{
	return sync->le.list != NULL;
}


/** Let a load go: replies still in flight see it is no longer live */
static void *sync_drop(struct sync *sync)
{
	if (sync)
		list_unlink(&sync->le);

	return mem_deref(sync);
}


static void seen_add(struct sync *sync, uint64_t did, bool ended, bool *was)
{
	struct seen *s;

	s = seen_find(sync, did);
	if (s) {
		*was |= s->ended;
		s->ended |= ended;
		return;
	}

	s = mem_zalloc(sizeof(*s), seen_destructor);
	if (!s)
		return;

	s->did = did;
	s->ended = ended;
	hash_append(sync->seen, (uint32_t)did, &s->he, s);
}


/**
 * A message about did is being applied: while loading, the sweep keeps
 * it. Returns true if the did ended during a load under way already.
 */
bool repl_sync_seen(uint64_t did, bool ended)
{
	bool was = false;
	struct le *le;

	LIST_FOREACH(&syncs, le)
		seen_add(le->data, did, ended, &was);

	return was;
}


static bool sweep_handler(struct dialog *dlg, void *arg)
{
	struct sync *sync = arg;

	if (dlg->replica && !seen_has(sync, dlg->did))
		dialog_remove(dlg);   /* ended while we were not listening */

	return false;
}


static bool reput_handler(struct dialog *dlg, void *arg)
{
	(void)arg;

	if (!dlg->replica && repl_replicated_here(dlg) &&
	    repl_publish(dlg, "sync"))
		++repl_st.n.dirty;

	return false;
}


static void sync_finish(struct sync *sync)
{
	cluster_done_h *h = sync->h;

	if (sync->tagh) {
		repl_sync_tag_h *tagh = sync->tagh;

		log_info("repl", "tag %s: %u snapshots read", sync->tag,
			 sync->loaded);
		tagh(sync->tag);
		sync_drop(sync);
		return;
	}

	(void)dialog_apply(sweep_handler, sync);
	(void)dialog_apply(reput_handler, NULL);

	repl_st.n.loaded = sync->loaded;
	log_info("repl", "synced: %u snapshots loaded, %u dialogs here, %llu "
		 "changes made while redis was down re-written",
		 sync->loaded, dialog_count(),
		 (unsigned long long)repl_st.n.dirty);

	repl_st.n.dirty = 0;
	cluster_set_synced(true);
	repl_tags_loaded();
	current = sync_drop(current);
	h(0);
}


static void sync_check(struct sync *sync)
{
	if (sync_live(sync) && sync->scan_done && !sync->pending)
		sync_finish(sync);
}


static void snapshot_reply(int err, const struct redisReply *reply,
			   void *arg)
{
	struct sync *sync = arg;
	struct pl msg;

	--sync->pending;

	if (sync_live(sync) && !err && reply->type == REDIS_REPLY_STRING) {
		msg.p = reply->str;
		msg.l = reply->len;
		++sync->loaded;
		repl_msg_apply(&msg, REPL_ORIGIN_SNAPSHOT);
	}

	sync_check(sync);
	mem_deref(sync);
}


static int scan_send(struct sync *sync, const char *cursor);


static void scan_reply(int err, const struct redisReply *reply, void *arg)
{
	struct sync *sync = arg;
	const redisReply *cursor, *keys;

	--sync->pending;

	if (!sync_live(sync) || err || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2)
		goto out;

	cursor = reply->element[0];
	keys = reply->element[1];
	if (cursor->type != REDIS_REPLY_STRING ||
	    keys->type != REDIS_REPLY_ARRAY)
		goto out;

	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING)
			continue;

		if (repl_snapshot_get(keys->element[i]->str, snapshot_reply,
				      mem_ref(sync))) {
			mem_deref(sync);
			goto out;
		}
		++sync->pending;
	}

	if (0 == str_cmp(cursor->str, "0"))
		sync->scan_done = true;
	else
		(void)scan_send(sync, cursor->str);

	sync_check(sync);

 out:
	mem_deref(sync);
}


static int scan_send(struct sync *sync, const char *cursor)
{
	int err;

	err = redis_command(scan_reply, mem_ref(sync), "SCAN %s MATCH %s* "
			    "COUNT %u", cursor, repl_st.dlg_prefix,
			    SCAN_COUNT);
	if (err) {
		mem_deref(sync);
		return err;
	}

	++sync->pending;
	return 0;
}


static int sync_alloc(struct sync **syncp)
{
	struct sync *sync;
	int err;

	sync = mem_zalloc(sizeof(*sync), sync_destructor);
	if (!sync)
		return ENOMEM;

	err = hash_alloc(&sync->seen, SEEN_BUCKETS);
	if (err) {
		mem_deref(sync);
		return err;
	}

	list_append(&syncs, &sync->le, sync);
	*syncp = sync;
	return 0;
}


/**
 * cluster_sync_h, after (re)connect, subscribed already: load every
 * snapshot, then write this node's dialogs and pending endings; h(0) once
 * synced.
 */
int repl_sync(cluster_done_h *h, void *arg)
{
	struct sync *sync;
	int err;
	(void)arg;

	if (!h)
		return EINVAL;
	if (!repl_st.up)
		return ENOTSUP;

	err = sync_alloc(&sync);
	if (err)
		return err;

	sync->h = h;
	sync_drop(current);
	current = sync;
	cluster_set_synced(false);

	/* endings first: the load must not bring those calls back */
	if (redis_new_server())
		repl_endings_replay();
	repl_endings_send();

	err = scan_send(sync, "0");
	if (err)
		current = sync_drop(sync);

	return err;
}


/**
 * Load the snapshots of tag, whose channel was just confirmed: h(tag)
 * once they are applied. Not called if Redis goes away first (the full
 * load after reconnect covers the tag then).
 */
int repl_sync_tag(const char *tag, repl_sync_tag_h *h)
{
	struct sync *sync;
	int err;

	if (!tag || !h)
		return EINVAL;
	if (!repl_st.up)
		return ENOTSUP;

	err = sync_alloc(&sync);
	if (err)
		return err;

	sync->tagh = h;
	err = str_dup(&sync->tag, tag);
	if (!err)
		err = scan_send(sync, "0");
	if (err)
		sync_drop(sync);

	return err;
}


/** cluster_down_h: Redis went away (the cluster is not synced then) */
void repl_sync_stop(void *arg)
{
	(void)arg;

	current = NULL;   /* callbacks in flight see every load gone */
	while (syncs.head)
		sync_drop(syncs.head->data);
}
