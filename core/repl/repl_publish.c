/**
 * @file repl_publish.c  Dialog replication: our changes, written to Redis
 *
 * Every change of a dialog this node serves (dialog.c's observer: early
 * dialog created, confirmed, CSeq/target/SDP/owner updated, ended) becomes
 * one message, "<signature> <header>\n<dialog>": a JSON header {node,
 * tag, epoch, ver, ev, did, ts} and the dialog as dialog_encode() writes
 * it (nothing after the header for "ended"). One Lua script stores the
 * dialog as its snapshot, the string `<cluster>:dlg:<did>` = "<version>
 * <record>" with a TTL of dialog_timeout, and publishes the message on
 * `<cluster>:repl:<tag>` (only the nodes listening to the tag receive it,
 * repl_tags.c), atomically and only if two checks pass (on a Redis
 * Cluster the script cannot publish on a channel of another slot than its
 * keys': the message is SPUBLISHed on the tag's master once the script
 * said "ok"; replies come in order, so the messages keep the order of the
 * writes):
 *   fence    the tag's entry in `<cluster>:shtags` names this node at this
 *            epoch (or nobody holds the tag): a node that lost the tag
 *            cannot overwrite the new holder's state, even before it
 *            heard that it lost it;
 *   version  the stored version is lower: Redis's copy only moves forward.
 * So everything a replica receives is in one order, accepted, and newer
 * than what came before for that dialog. A refused write is repaired by
 * reading the snapshot back (repl_repair(), repl_apply.c).
 *
 * Redis down: calls go on; nothing is queued but the endings (a did, a
 * tag, a version: bounded, overflow logged and counted). Other changes
 * are only counted: the sync after reconnect (repl_sync.c) sends the
 * queued endings and writes this node's dialogs again. Redis replicates
 * asynchronously, so a replica that Sentinel promotes may lack what the
 * old master took last: the endings taken in the last RECENT_MS are kept
 * and sent again to another server (the dialogs still up are written
 * again anyway).
 *
 * A snapshot's TTL is refreshed every quarter of it while its dialog is
 * served here, so only the snapshots of dialogs nobody serves expire.
 *
 * The record is the dialog alone, signed without a stamp (cluster_msg.c:
 * "<seal>\n<dialog>"): a snapshot is read by whoever loads it, at any
 * time, so the stamp's freshness means nothing there, and the dialog
 * carries what the header says (did, version, tag, owner). That is about
 * 180 B less than the message in each of Redis's snapshots, one size
 * class of its allocator down (bench/RESULTS.md, "Memory per dialog").
 * The seal costs a second HMAC, over the dialog only; the script cuts
 * the record's dialog out of the message (its offset is given), so the
 * dialog crosses the connection once. Snapshots of the release before
 * held the whole message: they are still read (repl_apply.c).
 *
 * Releases before stored a hash {v, m}. A string takes less of Redis's
 * memory than a hash whose message is longer than hash-max-listpack-value
 * (64 by default: a hash table then), and about as little as a listpack.
 * The scripts still read the hash of a node of the release before (its
 * version, its message: repl_snapshot_get()), and a write replaces it
 * with a string; such a node cannot read or overwrite a string (its
 * write is refused: WRONGTYPE), nor read the dialog format of this
 * release anyway (docs/operations.md, "Upgrading across a format change").
 */
#include <string.h>
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "jsonw.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "repl_int.h"

enum {
	ENDED_MAX = 65536,
	RECENT_MS = 10000,
};

/*
 * KEYS[1] snapshot, KEYS[2] tags hash; ARGV: 1 tag, 2 node, 3 epoch,
 * 4 version, 5 message, 6 ttl ms, 7 channel ("": the caller publishes),
 * 8 "1" when ended, 9 the record's seal, 10 where its "\n<dialog>" starts
 * in the message (from 1).
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
	"local v = 0\n"
	"local k = redis.call('TYPE', KEYS[1])['ok']\n"
	"if k == 'string' then\n"
	"  v = tonumber(string.match(redis.call('GET', KEYS[1]), '^%d+'))\n"
	"elseif k == 'hash' then\n"
	"  v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')\n"
	"end\n"
	"local ver = tonumber(ARGV[4])\n"
	"if v > ver then return {0, 'stale', v} end\n"
	"if v == ver then\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[6])\n"
	"  return {1, 'same'}\n"
	"end\n"
	"if ARGV[8] == '1' then\n"
	"  redis.call('DEL', KEYS[1])\n"
	"else\n"
	"  redis.call('SET', KEYS[1], ARGV[4] .. ' ' .. ARGV[9] ..\n"
	"    string.sub(ARGV[5], tonumber(ARGV[10])), 'PX', ARGV[6])\n"
	"end\n"
	"if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[5]) end\n"
	"return {1, 'ok'}\n";

/* KEYS[1] snapshot: its record (or message, see above), or nil */
static const char get_lua[] =
	"local k = redis.call('TYPE', KEYS[1])['ok']\n"
	"if k == 'hash' then return redis.call('HGET', KEYS[1], 'm') end\n"
	"if k ~= 'string' then return false end\n"
	"local s = redis.call('GET', KEYS[1])\n"
	"return string.sub(s, (string.find(s, ' ', 1, true) or 0) + 1)\n";

static const char *ev_names[] = {"created", "confirmed", "updated", "ended"};

/** An ending Redis has not seen yet, or took a moment ago */
struct ended {
	struct le le;
	uint64_t did;
	char *tag;
	uint64_t ver;
	uint64_t at;          /* jiffies Redis took it (recent ones) */
};

/** A message's record: where its "\n<dialog>" starts, and its seal */
struct rec {
	size_t at;
	char seal[CLUSTER_RECORD_SEAL + 1];
};

/** One write in flight */
struct put {
	uint64_t did;
	char *tag;
	uint64_t ver;
	bool ended;
	char *chan;           /* Redis Cluster: published by us on "ok" */
	struct mbuf *msg;
};

static struct {
	struct redis_script *put;
	struct redis_script *get;
	struct tmr refresh;
	struct list ended;    /* endings Redis has not seen yet */
	uint32_t endedc;
	struct list recent;   /* endings Redis took in the last RECENT_MS */
	uint32_t recentc;
} pub;


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
	mem_deref(p->chan);
	mem_deref(p->msg);
}


/** The envelope's fields, printed by header_print() */
struct header {
	const char *did;
	const char *tag;
	uint64_t ver;
	const char *ev;
};


/* Written straight (jsonw): an odict cost an allocation per member */
static int header_print(struct re_printf *pf, void *arg)
{
	const struct header *hd = arg;
	struct jsonw w;
	int err;

	err  = jsonw_begin(&w, pf);
	err |= jsonw_str(&w, "node", cluster_node_id());
	err |= jsonw_str(&w, "tag", hd->tag);
	err |= jsonw_uint(&w, "epoch", shtag_epoch(hd->tag));
	err |= jsonw_uint(&w, "ver", hd->ver);
	err |= jsonw_str(&w, "ev", hd->ev);
	err |= jsonw_str(&w, "did", hd->did);
	err |= jsonw_uint(&w, "ts", repl_now_us());
	err |= jsonw_end(&w);

	return err;
}


static int header_encode(struct mbuf *mb, uint64_t did, const char *tag,
			 uint64_t ver, const char *ev)
{
	char hex[DID_STRSZ];
	struct header hd = {hex, tag ? tag : "", ver, ev};
	int err;

	err = did_encode(hex, sizeof(hex), did);
	if (err)
		return err;

	return mbuf_printf(mb, "%H", header_print, &hd);
}


static struct ended *ended_alloc(uint64_t did, const char *tag,
				 uint64_t ver)
{
	struct ended *e;

	e = mem_zalloc(sizeof(*e), ended_destructor);
	if (!e || str_dup(&e->tag, tag ? tag : ""))
		return mem_deref(e);

	e->did = did;
	e->ver = ver;
	return e;
}


static void ended_add(uint64_t did, const char *tag, uint64_t ver)
{
	struct ended *e;

	if (pub.endedc >= ENDED_MAX) {
		if (!repl_st.n.ended_lost++)
			log_warn("repl", "more than %u calls ended while redis "
				 "was down: the oldest endings are dropped, "
				 "their snapshots expire by TTL", ENDED_MAX);
		mem_deref(list_ledata(pub.ended.head));
		--pub.endedc;
	}

	e = ended_alloc(did, tag, ver);
	if (!e) {
		++repl_st.n.ended_lost;
		return;
	}

	list_append(&pub.ended, &e->le, e);
	++pub.endedc;
}


/*
 * Redis took an ending. A replica promoted by a fail-over may not have
 * had it yet (replication is asynchronous): keep it a while, to write it
 * again to a new server (repl_endings_replay()).
 */
static void recent_add(uint64_t did, const char *tag, uint64_t ver)
{
	uint64_t now = tmr_jiffies();
	struct ended *e;

	while ((e = list_ledata(pub.recent.head)) &&
	       (e->at + RECENT_MS < now || pub.recentc >= ENDED_MAX)) {
		mem_deref(e);
		--pub.recentc;
	}

	e = ended_alloc(did, tag, ver);
	if (!e)
		return;

	e->at = now;
	list_append(&pub.recent, &e->le, e);
	++pub.recentc;
}


/** Redis could not take a change: keep what re-snapshotting cannot redo */
static void missed(uint64_t did, const char *tag, uint64_t ver, bool ended)
{
	if (ended)
		ended_add(did, tag, ver);
	else
		++repl_st.n.dirty;
}


static void put_reply(int err, const struct redisReply *reply, void *arg)
{
	struct put *p = arg;
	const char *what;

	if (!repl_st.up)
		goto out;

	if (err == ECONNRESET || err == ECONNABORTED) {
		missed(p->did, p->tag, p->ver, p->ended);
		goto out;
	}

	if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[1]->type != REDIS_REPLY_STRING) {
		dialog_log_did(LOG_WARN, "repl", p->did, "write refused: %s",
			       err == EPROTO ? reply->str : "bad reply");
		goto out;
	}

	what = reply->element[1]->str;
	if (!str_cmp(what, "ok")) {
		if (p->chan)
			(void)redis_publish(p->chan, p->msg->buf, p->msg->end,
					    NULL, NULL);
		++repl_st.n.sent;
		metrics_repl_sent();
		if (p->ended)
			recent_add(p->did, p->tag, p->ver);
	}
	else if (!str_cmp(what, "fenced")) {
		++repl_st.n.fenced;
		dialog_log_did(LOG_DEBUG, "repl", p->did, "tag %s moved on, "
			       "reading back", p->tag);
		repl_repair(p->did);
	}
	else if (!str_cmp(what, "stale")) {
		++repl_st.n.stale;
		repl_repair(p->did);
	}

 out:
	mem_deref(p);
}


/* rec NULL: an ending, nothing to store */
static int put_send(struct mbuf *mb, const struct rec *rec, uint64_t did,
		    const char *tag, uint64_t ver, bool ended)
{
	char key[REPL_KEY_SIZE], chan[REPL_KEY_SIZE];
	struct put *p;
	int err;

	err = repl_key_print(key, sizeof(key), did);
	if (!err)
		err = repl_tag_chan(chan, sizeof(chan), tag);
	if (err)
		return err;

	p = mem_zalloc(sizeof(*p), put_destructor);
	if (!p)
		return ENOMEM;

	p->did = did;
	p->ver = ver;
	p->ended = ended;
	err = str_dup(&p->tag, tag ? tag : "");
	if (!err && redis_cluster_mode()) {
		p->msg = mem_ref(mb);
		err = str_dup(&p->chan, chan);
		chan[0] = '\0';
	}
	if (!err)
		err = redis_eval(pub.put, put_reply, p,
				 "2 %s %s %s %s %llu %llu %b %llu %s %s %s "
				 "%llu", key, repl_st.tags_key, p->tag,
				 cluster_node_id(),
				 (unsigned long long)shtag_epoch(tag),
				 (unsigned long long)ver, mb->buf, mb->end,
				 (unsigned long long)repl_st.ttl_ms,
				 chan, ended ? "1" : "0",
				 rec ? rec->seal : "",
				 (unsigned long long)(rec ? rec->at + 1 : 0));
	if (err)
		mem_deref(p);

	return err;
}


static int rec_seal(struct rec *rec, const struct mbuf *mb)
{
	struct pl body;

	body.p = (const char *)mb->buf + rec->at;
	body.l = mb->end - rec->at;

	return cluster_record_seal(rec->seal, sizeof(rec->seal), &body);
}


/** Write dlg's current version (or its ending) as a change of kind ev */
int repl_publish(const struct dialog *dlg, const char *ev)
{
	bool ended = dlg->state == DIALOG_ENDED;
	struct mbuf *mb = NULL;
	struct rec rec;
	int err;

	err = cluster_msg_alloc(&mb);
	if (!err)
		err = header_encode(mb, dlg->did, dlg->shtag, dlg->version, ev);
	if (!err && !ended) {
		rec.at = mb->pos;
		err = mbuf_printf(mb, "\n%H", dialog_encode, dlg);
	}
	if (!err)
		err = cluster_msg_seal(mb);
	if (!err && !ended)
		err = rec_seal(&rec, mb);
	if (!err)
		err = put_send(mb, ended ? NULL : &rec, dlg->did, dlg->shtag,
			       dlg->version, ended);

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
		err = put_send(mb, NULL, e->did, e->tag, e->ver, true);

	mem_deref(mb);
	return err;
}


/** Send the endings queued while Redis was down, oldest first */
void repl_endings_send(void)
{
	struct le *le;

	while ((le = pub.ended.head)) {
		if (ended_send(le->data))
			break;
		mem_deref(le->data);
		--pub.endedc;
	}
}


/**
 * Redis is another server than before (a replica promoted by a
 * fail-over): the endings the last one took lately go out again, ahead
 * of those it never saw, so the new server cannot bring those calls back.
 */
void repl_endings_replay(void)
{
	uint32_t n = 0;
	struct le *le;

	while ((le = list_tail(&pub.recent)) && pub.endedc < ENDED_MAX) {
		list_unlink(le);
		list_prepend(&pub.ended, le, le->data);
		--pub.recentc;
		++pub.endedc;
		++n;
	}

	list_flush(&pub.recent);
	pub.recentc = 0;
	if (n)
		log_info("repl", "another redis server: the %u calls that "
			 "ended last are written as ended again", n);
}


uint32_t repl_endings_pending(void)
{
	return pub.endedc;
}


/** dialog.c's observer: every change of a dialog served here. */
static void change_handler(struct dialog *dlg, enum dialog_event ev)
{
	bool ended = ev == DIALOG_EV_ENDED;
	int err;

	if (!repl_replicated_here(dlg)) {
		/* the fence would refuse it anyway */
		++repl_st.n.skipped;
		dialog_log(LOG_DEBUG, "repl", dlg, "tag %s is held by %s, "
			   "not replicated", dlg->shtag,
			   shtag_holder(dlg->shtag));
		return;
	}

	err = repl_publish(dlg, ev_names[ev]);
	if (err)
		missed(dlg->did, dlg->shtag, dlg->version, ended);
}


/* ---- snapshot TTL --------------------------------------------------- */


static bool refresh_handler(struct dialog *dlg, void *arg)
{
	char key[REPL_KEY_SIZE];
	(void)arg;

	if (!dlg->replica && repl_replicated_here(dlg) &&
	    !repl_key_print(key, sizeof(key), dlg->did))
		(void)redis_command(NULL, NULL, "PEXPIRE %s %llu", key,
				    (unsigned long long)repl_st.ttl_ms);

	return false;
}


static void refresh_tmr(void *arg)
{
	(void)arg;

	tmr_start(&pub.refresh, repl_st.ttl_ms / 4, refresh_tmr, NULL);
	if (cluster_synced())
		(void)dialog_apply(refresh_handler, NULL);
}


/* ---- life cycle ----------------------------------------------------- */


/**
 * Read a snapshot: h gets its message (a string reply) or nil
 *
 * @param key  The snapshot's key (repl_key_print())
 * @param h    Reply handler
 * @param arg  Handler argument
 *
 * @return 0 if success, otherwise errorcode
 */
int repl_snapshot_get(const char *key, redis_reply_h *h, void *arg)
{
	if (!key || !h)
		return EINVAL;

	return redis_eval(pub.get, h, arg, "1 %s", key);
}


/** Load the scripts; writing starts with repl_publish_start() */
int repl_publish_init(void)
{
	int err;

	memset(&pub, 0, sizeof(pub));

	err = redis_script_add(&pub.put, put_lua);
	if (!err)
		err = redis_script_add(&pub.get, get_lua);

	return err;
}


/** Start writing: observe dialog changes, refresh snapshot TTLs */
void repl_publish_start(void)
{
	dialog_set_observer(change_handler);
	tmr_start(&pub.refresh, repl_st.ttl_ms / 4, refresh_tmr, NULL);
}


void repl_publish_close(void)
{
	dialog_set_observer(NULL);
	tmr_cancel(&pub.refresh);
	list_flush(&pub.ended);
	list_flush(&pub.recent);
	memset(&pub, 0, sizeof(pub));
}
