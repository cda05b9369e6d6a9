/**
 * @file repl.c  Dialog replication: signed changes over pub/sub, snapshots in Redis
 *
 * Every change of a dialog this node serves (dialog.c's observer: early
 * dialog created, confirmed, CSeq/target/SDP/owner updated, ended) becomes
 * one message, "<signature> <header>\n<dialog>": a JSON header {node,
 * tag, epoch, ver, ev, did, ts} and the dialog as dialog_encode() writes
 * it (nothing after the header for "ended"). One Lua script stores it as
 * the dialog's snapshot, hash `<cluster>:dlg:<did>` {v, m} with a TTL of
 * dialog_timeout, and publishes it on `<cluster>:repl`, atomically and
 * only if two checks pass:
 *   fence    the tag's entry in `<cluster>:shtags` names this node at this
 *            epoch (or nobody holds the tag): a node that lost the tag
 *            cannot overwrite the new holder's state, even before it
 *            heard that it lost it;
 *   version  the stored version is lower: Redis's copy only moves forward.
 * So everything a replica receives is in one order, accepted, and newer
 * than what came before for that dialog; a replica still applies only
 * versions above its own, which makes snapshots and messages that cross
 * harmless. A refused write is repaired by reading the snapshot back.
 *
 * Redis down: calls go on; nothing is queued but the endings (a did, a
 * tag, a version: bounded, overflow logged and counted). On reconnect the
 * node subscribes first (redis.c), loads every snapshot (SCAN + HGET),
 * drops replicas that no longer exist anywhere, writes its own dialogs
 * again (the script makes an unchanged one a TTL refresh) and sends the
 * endings; then it is "synced". The same path loads a starting node.
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
#include <hiredis/hiredis.h>
#include "log.h"
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"

enum {
	KEY_SIZE     = 256,
	JSON_DEPTH   = 2,
	SCAN_COUNT   = 1000,
	ENDED_MAX    = 65536,
	LAG_SAMPLES  = 8192,
	SEEN_BUCKETS = 4096,
};

/*
 * KEYS[1] snapshot, KEYS[2] tags hash; ARGV: 1 tag, 2 node, 3 epoch,
 * 4 version, 5 message, 6 ttl ms, 7 channel, 8 "1" when ended.
 * Returns {1, "ok"|"same"} or {0, "fenced", epoch, holder} or
 * {0, "stale", version}.
 */
static const char put_lua[] =
	"local t = redis.call('HGET', KEYS[2], ARGV[1])\n"
	"if t then\n"
	"  local e, h = string.match(t, '^(%d+) (.*)$')\n"
	"  if h ~= '' and (h ~= ARGV[2] or e ~= ARGV[3]) then\n"
	"    return {0, 'fenced', tonumber(e), h}\n"
	"  end\n"
	"end\n"
	"local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')\n"
	"local ver = tonumber(ARGV[4])\n"
	"if v > ver then return {0, 'stale', v} end\n"
	"if v == ver then\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
	"  return {1, 'same'}\n"
	"end\n"
	"if ARGV[8] == '1' then\n"
	"  redis.call('DEL', KEYS[1])\n"
	"else\n"
	"  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'm', ARGV[5])\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
	"end\n"
	"redis.call('PUBLISH', ARGV[7], ARGV[5])\n"
	"return {1, 'ok'}\n";

static const char *ev_names[] = {"created", "confirmed", "updated", "ended"};

enum origin {
	ORIGIN_CHANNEL = 0,   /* live message */
	ORIGIN_SNAPSHOT,      /* loaded at (re)connect */
	ORIGIN_REPAIR,        /* read back after our write was refused */
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

/** An ending Redis has not seen yet */
struct ended {
	struct le le;
	uint64_t did;
	char *tag;
	uint64_t ver;
};

/** One write in flight */
struct put {
	uint64_t did;
	char *tag;
	uint64_t ver;
	bool ended;
};

/** A did seen while loading, so the sweep keeps it */
struct seen {
	struct le he;
	uint64_t did;
};

/** Loading every snapshot after (re)connect */
struct sync {
	cluster_done_h *h;
	struct hash *seen;
	unsigned pending;     /* commands in flight */
	bool scan_done;
	uint32_t loaded;
};

static struct {
	const struct rh_conf *cfg;
	struct redis_script *put;
	char chan[KEY_SIZE];
	char tags_key[KEY_SIZE];
	char dlg_prefix[KEY_SIZE];
	uint64_t ttl_ms;
	struct tmr refresh;
	struct list ended;
	uint32_t endedc;
	struct sync *sync;
	bool synced;
	bool up;
	struct {
		uint64_t sent, received, stale, dropped, fenced, conflicts,
			 skipped, dirty, ended_lost, loaded;
	} n;
	uint32_t lag[LAG_SAMPLES];
	size_t lagc;
} rp;


static void ended_destructor(void *arg)
{
	struct ended *e = arg;

	list_unlink(&e->le);
	mem_deref(e->tag);
}


static void put_destructor(void *arg)
{
	struct put *p = arg;

	mem_deref(p->tag);
}


static void seen_destructor(void *arg)
{
	struct seen *s = arg;

	hash_unlink(&s->he);
}


static void sync_destructor(void *arg)
{
	struct sync *s = arg;

	hash_flush(s->seen);
	mem_deref(s->seen);
}


static uint64_t now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}


static bool is_me(const char *node)
{
	return node && 0 == str_cmp(node, cluster_node_id());
}


/** Only the holder of a tag replicates it (or anyone, if nobody holds it) */
static bool replicated_here(const struct dialog *dlg)
{
	const char *holder = shtag_holder(dlg->shtag);

	return !str_isset(holder) || is_me(holder);
}


static int key_print(char *buf, size_t sz, uint64_t did)
{
	char hex[DID_STRSZ];
	int err;

	err = did_encode(hex, sizeof(hex), did);
	if (err)
		return err;

	return re_snprintf(buf, sz, "%s%s", rp.dlg_prefix, hex) > 0
		? 0 : ENOMEM;
}


/* ---- sending -------------------------------------------------------- */


static int header_encode(struct mbuf *mb, uint64_t did, const char *tag,
			 uint64_t ver, const char *ev)
{
	char hex[DID_STRSZ];
	struct odict *od;
	int err;

	err = did_encode(hex, sizeof(hex), did);
	if (err)
		return err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "node", ODICT_STRING, cluster_node_id());
	err |= odict_entry_add(od, "tag", ODICT_STRING, tag ? tag : "");
	err |= odict_entry_add(od, "epoch", ODICT_INT,
			       (int64_t)shtag_epoch(tag));
	err |= odict_entry_add(od, "ver", ODICT_INT, (int64_t)ver);
	err |= odict_entry_add(od, "ev", ODICT_STRING, ev);
	err |= odict_entry_add(od, "did", ODICT_STRING, hex);
	err |= odict_entry_add(od, "ts", ODICT_INT, (int64_t)now_us());
	if (!err)
		err = mbuf_printf(mb, "%H", json_encode_odict, od);

	mem_deref(od);
	return err;
}


static void ended_add(uint64_t did, const char *tag, uint64_t ver)
{
	struct ended *e;

	if (rp.endedc >= ENDED_MAX) {
		if (!rp.n.ended_lost++)
			log_warn("repl", "more than %u calls ended while redis "
				 "was down: the oldest endings are dropped, "
				 "their snapshots expire by TTL", ENDED_MAX);
		mem_deref(list_ledata(rp.ended.head));
		--rp.endedc;
	}

	e = mem_zalloc(sizeof(*e), ended_destructor);
	if (!e || str_dup(&e->tag, tag ? tag : "")) {
		mem_deref(e);
		++rp.n.ended_lost;
		return;
	}

	e->did = did;
	e->ver = ver;
	list_append(&rp.ended, &e->le, e);
	++rp.endedc;
}


/** Redis could not take a change: keep what re-snapshotting cannot redo */
static void missed(uint64_t did, const char *tag, uint64_t ver, bool ended)
{
	if (ended)
		ended_add(did, tag, ver);
	else
		++rp.n.dirty;
}


static void repair(uint64_t did);


static void put_reply(int err, const struct redisReply *reply, void *arg)
{
	struct put *p = arg;
	const char *what;

	if (!rp.up)
		goto out;

	if (err == ECONNRESET || err == ECONNABORTED) {
		missed(p->did, p->tag, p->ver, p->ended);
		goto out;
	}

	if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[1]->type != REDIS_REPLY_STRING) {
		log_warn("repl", "write of %016llx refused: %s",
			 (unsigned long long)p->did,
			 err == EPROTO ? reply->str : "bad reply");
		goto out;
	}

	what = reply->element[1]->str;
	if (!str_cmp(what, "ok")) {
		++rp.n.sent;
		metrics_repl_sent();
	}
	else if (!str_cmp(what, "fenced")) {
		++rp.n.fenced;
		log_debug("repl", "%016llx: tag %s moved on, reading back",
			  (unsigned long long)p->did, p->tag);
		repair(p->did);
	}
	else if (!str_cmp(what, "stale")) {
		++rp.n.stale;
		repair(p->did);
	}

 out:
	mem_deref(p);
}


static int put_send(struct mbuf *mb, uint64_t did, const char *tag,
		    uint64_t ver, bool ended)
{
	char key[KEY_SIZE];
	struct put *p;
	int err;

	err = key_print(key, sizeof(key), did);
	if (err)
		return err;

	p = mem_zalloc(sizeof(*p), put_destructor);
	if (!p)
		return ENOMEM;

	p->did = did;
	p->ver = ver;
	p->ended = ended;
	err = str_dup(&p->tag, tag ? tag : "");
	if (!err)
		err = redis_eval(rp.put, put_reply, p,
				 "2 %s %s %s %s %llu %llu %b %llu %s %s", key,
				 rp.tags_key, p->tag, cluster_node_id(),
				 (unsigned long long)shtag_epoch(tag),
				 (unsigned long long)ver, mb->buf, mb->end,
				 (unsigned long long)rp.ttl_ms, rp.chan,
				 ended ? "1" : "0");
	if (err)
		mem_deref(p);

	return err;
}


static int publish(const struct dialog *dlg, const char *ev)
{
	bool ended = dlg->state == DIALOG_ENDED;
	struct mbuf *mb = NULL;
	int err;

	err = cluster_msg_alloc(&mb);
	if (!err)
		err = header_encode(mb, dlg->did, dlg->shtag, dlg->version, ev);
	if (!err && !ended)
		err = mbuf_printf(mb, "\n%H", dialog_encode, dlg);
	if (!err)
		err = cluster_msg_seal(mb);
	if (!err)
		err = put_send(mb, dlg->did, dlg->shtag, dlg->version, ended);

	mem_deref(mb);
	return err;
}


static int ended_send(const struct ended *e)
{
	struct mbuf *mb = NULL;
	int err;

	err = cluster_msg_alloc(&mb);
	if (!err)
		err = header_encode(mb, e->did, e->tag, e->ver, "ended");
	if (!err)
		err = cluster_msg_seal(mb);
	if (!err)
		err = put_send(mb, e->did, e->tag, e->ver, true);

	mem_deref(mb);
	return err;
}


/** dialog.c's observer: every change of a dialog served here. */
static void change_handler(struct dialog *dlg, enum dialog_event ev)
{
	bool ended = ev == DIALOG_EV_ENDED;
	int err;

	if (!replicated_here(dlg)) {
		/* the fence would refuse it anyway */
		++rp.n.skipped;
		log_debug("repl", "%016llx: tag %s is held by %s, not "
			  "replicated", (unsigned long long)dlg->did,
			  dlg->shtag, shtag_holder(dlg->shtag));
		return;
	}

	err = publish(dlg, ev_names[ev]);
	if (err)
		missed(dlg->did, dlg->shtag, dlg->version, ended);
}


/* ---- receiving ------------------------------------------------------ */


static void lag_sample(uint64_t ts)
{
	uint64_t now = now_us();

	if (!ts || ts > now)
		return;

	rp.lag[rp.lagc++ % LAG_SAMPLES] = (uint32_t)min(now - ts,
							(uint64_t)UINT32_MAX);
}


static bool seen_cmp(struct le *le, void *arg)
{
	const struct seen *s = le->data;

	return s->did == *(uint64_t *)arg;
}


static bool seen_has(const struct sync *sync, uint64_t did)
{
	return NULL != hash_lookup(sync->seen, (uint32_t)did, seen_cmp, &did);
}


static void seen_add(uint64_t did)
{
	struct seen *s;

	if (!rp.sync || seen_has(rp.sync, did))
		return;

	s = mem_zalloc(sizeof(*s), seen_destructor);
	if (!s)
		return;

	s->did = did;
	hash_append(rp.sync->seen, (uint32_t)did, &s->he, s);
}


static void adopt(struct dialog *dlg)
{
	if (dialog_atom_str(&dlg->owner, cluster_node_id()))
		return;

	dlg->replica = false;
	dialog_changed(dlg, DIALOG_EV_UPDATED);
}


static void drop_local(struct dialog *dlg)
{
	dlg->replica = true;   /* stop replicating it, whoever holds it */
	dialog_remove(dlg);
}


static void apply(const struct env *env, const struct pl *json,
		  enum origin origin)
{
	struct dialog *local = dialog_lookup(env->did);
	struct dialog *dlg = NULL;
	int err;

	seen_add(env->did);

	if (origin != ORIGIN_REPAIR && local && env->ver <= local->version)
		return;

	/* Redis accepted it, so it is the truth, even about ours */
	if (local && !local->replica) {
		++rp.n.conflicts;
		log_info("repl", "%016llx: %s took it over (version %llu)",
			 (unsigned long long)env->did, env->node,
			 (unsigned long long)env->ver);
	}

	if (!env->ended) {
		err = dialog_decode(&dlg, json->p, json->l);
		if (err || dlg->did != env->did) {
			++rp.n.dropped;
			metrics_repl_dropped("bad_dialog");
			mem_deref(dlg);
			return;
		}
		dlg->replica = true;
	}

	if (local)
		drop_local(local);

	++rp.n.received;
	metrics_repl_received();
	if (origin == ORIGIN_CHANNEL)
		lag_sample(env->ts);

	if (!dlg)
		return;

	/* ours from a previous run, of a tag that is still ours */
	if (!dialog_insert(dlg) && is_me(dlg->owner) && replicated_here(dlg))
		adopt(dlg);
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


static void msg_apply(const struct pl *msg, enum origin origin)
{
	struct odict *od = NULL;
	struct env env = {0};
	struct pl body, head, json = PL_INIT;
	const char *nl;
	int err;

	err = cluster_msg_open(&body, msg);
	if (err) {
		++rp.n.dropped;
		metrics_repl_dropped(err == EACCES ? "bad_signature"
				     : "unsigned");
		if (origin == ORIGIN_CHANNEL)
			log_debug("repl", "message dropped: %s",
				  err == EACCES ? "bad signature"
				  : "unsigned");
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
		++rp.n.dropped;
		metrics_repl_dropped("malformed");
		goto out;
	}

	if (origin == ORIGIN_CHANNEL && is_me(env.node))
		goto out;   /* our own, echoed */

	apply(&env, &json, origin);

 out:
	mem_deref(od);
}


static void channel_handler(const struct pl *chan, const struct pl *msg,
			    void *arg)
{
	(void)chan;
	(void)arg;

	msg_apply(msg, ORIGIN_CHANNEL);
}


/* ---- repair: read a snapshot back after a refused write -------------- */


/** Never reached Redis: nobody else knows it, so it stays served here */
static void unknown_keep(uint64_t did)
{
	struct dialog *dlg = dialog_lookup(did);

	if (!dlg || !dlg->replica || !is_me(dlg->owner))
		return;

	log_info("repl", "%016llx: unknown to the cluster, served here "
		 "without replication", (unsigned long long)did);
	dlg->replica = false;
}


static void repair_reply(int err, const struct redisReply *reply, void *arg)
{
	uint64_t *did = arg;
	struct pl msg;

	if (!rp.up || err)
		goto out;

	if (reply->type == REDIS_REPLY_STRING) {
		msg.p = reply->str;
		msg.l = reply->len;
		msg_apply(&msg, ORIGIN_REPAIR);
	}
	else if (reply->type == REDIS_REPLY_NIL) {
		unknown_keep(*did);
	}

 out:
	mem_deref(did);
}


static void repair(uint64_t did)
{
	char key[KEY_SIZE];
	uint64_t *arg;

	if (key_print(key, sizeof(key), did))
		return;

	arg = mem_alloc(sizeof(*arg), NULL);
	if (!arg)
		return;

	*arg = did;
	if (redis_command(repair_reply, arg, "HGET %s m", key))
		mem_deref(arg);
}


/* ---- (re)connect: load everything, then write ours again ------------- */


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

	if (!dlg->replica && replicated_here(dlg) && publish(dlg, "sync"))
		++rp.n.dirty;

	return false;
}


static void sync_finish(struct sync *sync)
{
	cluster_done_h *h = sync->h;
	struct le *le;

	(void)dialog_apply(sweep_handler, sync);
	(void)dialog_apply(reput_handler, NULL);

	while ((le = rp.ended.head)) {
		if (ended_send(le->data))
			break;
		mem_deref(le->data);
		--rp.endedc;
	}

	rp.n.loaded = sync->loaded;
	log_info("repl", "synced: %u snapshots loaded, %u dialogs here, %llu "
		 "changes made while redis was down re-written",
		 sync->loaded, dialog_count(), (unsigned long long)rp.n.dirty);

	rp.n.dirty = 0;
	rp.synced = true;
	rp.sync = mem_deref(rp.sync);
	h(0);
}


static void sync_check(struct sync *sync)
{
	if (sync == rp.sync && sync->scan_done && !sync->pending)
		sync_finish(sync);
}


static void snapshot_reply(int err, const struct redisReply *reply,
			   void *arg)
{
	struct sync *sync = arg;
	struct pl msg;

	--sync->pending;

	if (sync == rp.sync && !err && reply->type == REDIS_REPLY_STRING) {
		msg.p = reply->str;
		msg.l = reply->len;
		++sync->loaded;
		msg_apply(&msg, ORIGIN_SNAPSHOT);
	}

	sync_check(sync);
	mem_deref(sync);
}


static int scan_send(struct sync *sync, const char *cursor);


static void scan_reply(int err, const struct redisReply *reply, void *arg)
{
	struct sync *sync = arg;
	const redisReply *cur, *keys;

	--sync->pending;

	if (sync != rp.sync || err || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2)
		goto out;

	cur = reply->element[0];
	keys = reply->element[1];
	if (cur->type != REDIS_REPLY_STRING ||
	    keys->type != REDIS_REPLY_ARRAY)
		goto out;

	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING)
			continue;

		if (redis_command(snapshot_reply, mem_ref(sync), "HGET %s m",
				  keys->element[i]->str)) {
			mem_deref(sync);
			goto out;
		}
		++sync->pending;
	}

	if (0 == str_cmp(cur->str, "0"))
		sync->scan_done = true;
	else
		(void)scan_send(sync, cur->str);

	sync_check(sync);

 out:
	mem_deref(sync);
}


static int scan_send(struct sync *sync, const char *cursor)
{
	int err;

	err = redis_command(scan_reply, mem_ref(sync), "SCAN %s MATCH %s* "
			    "COUNT %u", cursor, rp.dlg_prefix, SCAN_COUNT);
	if (err) {
		mem_deref(sync);
		return err;
	}

	++sync->pending;
	return 0;
}


/**
 * After (re)connect, subscribed already: load every snapshot, then write
 * this node's dialogs and pending endings; h(0) once synced.
 */
int repl_sync(cluster_done_h *h)
{
	struct sync *sync;
	int err;

	if (!h)
		return EINVAL;
	if (!rp.up)
		return ENOTSUP;

	sync = mem_zalloc(sizeof(*sync), sync_destructor);
	if (!sync)
		return ENOMEM;

	sync->h = h;
	err = hash_alloc(&sync->seen, SEEN_BUCKETS);
	if (err)
		goto out;

	mem_deref(rp.sync);
	rp.sync = sync;
	rp.synced = false;

	err = scan_send(sync, "0");

 out:
	if (err) {
		if (rp.sync == sync)
			rp.sync = NULL;
		mem_deref(sync);
	}
	return err;
}


void repl_redis_down(void)
{
	rp.synced = false;
	rp.sync = mem_deref(rp.sync);   /* callbacks in flight see it gone */
}


/* ---- tags moving ---------------------------------------------------- */


struct tag_ctx {
	const char *tag;
	bool mine;
};


static bool tag_handler(struct dialog *dlg, void *arg)
{
	struct tag_ctx *ctx = arg;

	if (str_cmp(dlg->shtag, ctx->tag))
		return false;

	if (ctx->mine && dlg->replica)
		adopt(dlg);
	else if (!ctx->mine && !dlg->replica)
		dlg->replica = true;

	return false;
}


/**
 * Tag `tag` now belongs to `holder` (shtag.c): adopt its replicas when
 * that is us, hand our dialogs of it over when it is another node; a
 * released tag (no holder) leaves every dialog with its owner.
 */
void repl_shtag_changed(const char *tag, const char *holder)
{
	struct tag_ctx ctx = {tag, is_me(holder)};

	if (!rp.up || !str_isset(holder))
		return;

	(void)dialog_apply(tag_handler, &ctx);
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

	if (!rp.up)
		return dlg->replica ? REPL_HOLD : REPL_SERVE;

	auth = dlg->owner;
	if (is_me(auth))
		return dlg->replica ? REPL_HOLD : REPL_SERVE;

	if (nodep)
		*nodep = auth;

	return cluster_node_alive(auth) ? REPL_RELAY : REPL_HOLD;
}


bool repl_synced(void)
{
	return rp.synced;
}


/* ---- snapshot TTL --------------------------------------------------- */


static bool refresh_handler(struct dialog *dlg, void *arg)
{
	char key[KEY_SIZE];
	(void)arg;

	if (!dlg->replica && replicated_here(dlg) &&
	    !key_print(key, sizeof(key), dlg->did))
		(void)redis_command(NULL, NULL, "PEXPIRE %s %llu", key,
				    (unsigned long long)rp.ttl_ms);

	return false;
}


static void refresh_tmr(void *arg)
{
	(void)arg;

	tmr_start(&rp.refresh, rp.ttl_ms / 4, refresh_tmr, NULL);
	if (rp.synced)
		(void)dialog_apply(refresh_handler, NULL);
}


/* ---- status --------------------------------------------------------- */


static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}


static int lag_status(struct odict *od)
{
	size_t n = min(rp.lagc, (size_t)LAG_SAMPLES);
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

		memcpy(v, rp.lag, n * sizeof(*v));
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


/** Add "repl": {synced, counters, lag_us{samples,p50,p99,max}} to od. */
int repl_status(struct odict *od)
{
	struct odict *o;
	int err;

	err = odict_alloc(&o, 16);
	if (err)
		return err;

	err  = odict_entry_add(o, "synced", ODICT_BOOL, rp.synced);
	err |= odict_entry_add(o, "sent", ODICT_INT, (int64_t)rp.n.sent);
	err |= odict_entry_add(o, "received", ODICT_INT,
			       (int64_t)rp.n.received);
	err |= odict_entry_add(o, "dropped", ODICT_INT,
			       (int64_t)rp.n.dropped);
	err |= odict_entry_add(o, "stale", ODICT_INT, (int64_t)rp.n.stale);
	err |= odict_entry_add(o, "fenced", ODICT_INT, (int64_t)rp.n.fenced);
	err |= odict_entry_add(o, "conflicts", ODICT_INT,
			       (int64_t)rp.n.conflicts);
	err |= odict_entry_add(o, "not_replicated", ODICT_INT,
			       (int64_t)rp.n.skipped);
	err |= odict_entry_add(o, "pending_resnapshot", ODICT_INT,
			       (int64_t)rp.n.dirty);
	err |= odict_entry_add(o, "pending_endings", ODICT_INT,
			       (int64_t)rp.endedc);
	err |= odict_entry_add(o, "endings_lost", ODICT_INT,
			       (int64_t)rp.n.ended_lost);
	err |= odict_entry_add(o, "snapshots_loaded", ODICT_INT,
			       (int64_t)rp.n.loaded);
	if (!err)
		err = lag_status(o);
	if (!err)
		err = odict_entry_add(od, "repl", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}


/* ---- life cycle ----------------------------------------------------- */


int repl_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;
	if (rp.up)
		return EALREADY;

	memset(&rp, 0, sizeof(rp));
	rp.cfg = cfg;
	rp.ttl_ms = (uint64_t)cfg->dialog_timeout * 1000;
	re_snprintf(rp.chan, sizeof(rp.chan), "%s:repl", cfg->cluster);
	re_snprintf(rp.tags_key, sizeof(rp.tags_key), "%s:shtags",
		    cfg->cluster);
	re_snprintf(rp.dlg_prefix, sizeof(rp.dlg_prefix), "%s:dlg:",
		    cfg->cluster);

	err = redis_script_add(&rp.put, put_lua);
	if (err)
		return err;

	err = redis_subscribe(rp.chan, channel_handler, NULL);
	if (err)
		return err;

	dialog_set_observer(change_handler);
	tmr_start(&rp.refresh, rp.ttl_ms / 4, refresh_tmr, NULL);
	rp.up = true;

	return 0;
}


void repl_close(void)
{
	if (!rp.up)
		return;

	dialog_set_observer(NULL);
	tmr_cancel(&rp.refresh);
	list_flush(&rp.ended);
	mem_deref(rp.sync);
	memset(&rp, 0, sizeof(rp));
}
