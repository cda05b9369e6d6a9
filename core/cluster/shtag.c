/**
 * @file shtag.c  Sharing tags: one active node per tag, epochs, compare-and-set
 *
 * All tags of a cluster live in one Redis hash, `<cluster>:shtags`, field
 * = tag, value = "EPOCH HOLDER" (holder empty when nobody holds it). One
 * Lua script changes it, so every change is an atomic compare-and-set on
 * the epoch the node last saw, and every successful change raises the
 * epoch by one: there is never more than one holder per epoch, and a
 * stale holder is recognisable by its lower epoch. The operations:
 *   take     the API/policy "activate": wins if the epoch is unchanged;
 *   claim    the start-up wish: a take that also loses when the current
 *            holder is alive (its heartbeat key exists), so a starting
 *            node never steals a tag from a working one;
 *   release  give it up (holder becomes empty);
 *   assert   after Redis lost its data, restore what we hold;
 *   keep     a take by the node that holds the tag already: it only
 *            checks that it still does, the epoch stays (and nothing
 *            is published).
 * The script publishes the change on `<cluster>:shtag` in the same atomic
 * step. The message is signed by the node that asked for the change (it
 * knows the outcome in advance: its epoch + 1), so receivers verify it
 * like any other cluster message.
 *
 * A node applies tag states only forward (a higher epoch), from the
 * channel, from the replies of its own failed attempts and from a full
 * read after each (re)connect. It becomes active only through the channel
 * message (or that full read), never straight from its script's reply:
 * the channel is the same connection, in the same order, that carries
 * replication, so every dialog change the previous holder got accepted
 * before the epoch moved has been applied here before this node adopts
 * the tag's dialogs. A node that learns of a higher epoch held by another
 * node steps down at once.
 *
 * Fencing (cluster_lease.c): a take from a holder that looks dead to us
 * is fenced: the script lets it through only once the holder's lease key
 * has expired in Redis (by Redis's clock) or its connection to Redis is
 * gone (no subscriber on its probe channel, cluster_watch.c), else it
 * answers how long the lease still runs and the take waits that long
 * here, then tries again. A take from a holder that is alive (a planned
 * move) is not fenced: that holder steps down when the new epoch reaches
 * it. This node takes tags, and acts for those it holds
 * (shtag_may_act()), only while its own lease is fresh.
 *
 * At start, a tag whose hash entry names this node belongs to a previous
 * run of it: it counts as not held until shtag_claim() either claims it
 * again (config wish "active") or releases it.
 *
 * Tags sit on membership (cluster.c): reading them is a step of its
 * (re)connect sequence, added here. Whoever must follow tags changing
 * hands (replication, a layer above) adds an observer (shtag_observer.c);
 * nothing here calls up by name.
 *
 * The control routes that drive activate/release over HTTP live in
 * shtag_ctl.c; they use only the public API. The (re)connect read, the
 * start-up claim and the restore after a Redis data loss live in
 * shtag_sync.c.
 */
#include <string.h>
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "ctl.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "shtag_int.h"

enum {
	KEY_SIZE   = 256,
	JSON_DEPTH = 2,
	FENCE_WAITS = 4,       /* lease waits of one fenced take */
};

enum op { OP_TAKE = 0, OP_CLAIM, OP_RELEASE, OP_ASSERT, OP_KEEP };

static const char *op_names[] = {"take", "claim", "release", "assert",
				 "keep"};

/*
 * KEYS[1] the tags hash; ARGV: 1 tag, 2 op, 3 node, 4 epoch seen,
 * 5 signed message announcing the result, 6 channel, 7 node key prefix,
 * 8 "1" to fence (the holder looks dead to us), 9 probe channel prefix,
 * 10 the publish command (SPUBLISH on a Redis Cluster, where the channel
 * shares the keys' slot).
 * Returns {1|0, epoch, holder}: success, and the tag's state afterwards;
 * {0, epoch, holder, ms} when a fenced take must wait that long for the
 * holder's lease to run out.
 */
static const char cas_lua[] =
	"local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"local epoch, holder = 0, ''\n"
	"if cur then\n"
	"  local e, h = string.match(cur, '^(%d+) (.*)$')\n"
	"  epoch, holder = tonumber(e), h\n"
	"end\n"
	"local op, me, want = ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
	"local function set(e, h)\n"
	"  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d %s', e, h))\n"
	"  redis.call(ARGV[10], ARGV[6], ARGV[5])\n"
	"  return {1, e, h}\n"
	"end\n"
	"if op == 'assert' then\n"
	"  if not cur or epoch < want then return set(want, me) end\n"
	"  if epoch == want and holder == me then return {1, epoch, holder} end\n"
	"  return {0, epoch, holder}\n"
	"end\n"
	"if epoch ~= want then return {0, epoch, holder} end\n"
	"if op == 'keep' then\n"
	"  return {holder == me and 1 or 0, epoch, holder}\n"
	"end\n"
	"if op == 'release' then\n"
	"  if holder ~= me then return {0, epoch, holder} end\n"
	"  return set(want + 1, '')\n"
	"end\n"
	"if op == 'claim' and holder ~= '' and holder ~= me and\n"
	"   redis.call('EXISTS', ARGV[7] .. holder) == 1 then\n"
	"  return {0, epoch, holder}\n"
	"end\n"
	"if op == 'take' and ARGV[8] == '1' and holder ~= '' and\n"
	"   holder ~= me then\n"
	"  local ttl = redis.call('PTTL', ARGV[7] .. holder)\n"
	"  local subs = redis.call('PUBSUB', 'NUMSUB', ARGV[9] .. holder)\n"
	"  if ttl ~= -2 and subs[2] > 0 then\n"
	"    return {0, epoch, holder, math.max(ttl, 1)}\n"
	"  end\n"
	"end\n"
	"return set(want + 1, me)\n";

/** One take/claim/release/assert, from the request until its outcome */
struct req {
	struct le le;          /* st.reqs */
	struct shtag *tag;     /* tags live until shtag_close() */
	enum op op;
	uint64_t want;         /* the epoch it expects to find */
	uint64_t epoch;        /* the state that completes it */
	bool sent_ok;          /* the script succeeded; wait for the apply */
	bool fence;            /* a take from a holder that looks dead */
	unsigned waits;        /* for the holder's lease to run out */
	struct tmr tmr;        /* the next try after such a wait */
	shtag_result_h *h;     /* NULL once completed */
	void *arg;
};

static struct {
	const struct rh_conf *cfg;
	struct list tags;
	struct list reqs;
	struct redis_script *cas;
	char key[KEY_SIZE];
	char chan[KEY_SIZE];
	char node_prefix[KEY_SIZE];
	char probe_prefix[KEY_SIZE];
	shtag_change_h *changeh;
	void *arg;
	bool started;          /* claim done: "holder = me" is really us */
	bool up;
} st;


static void tag_destructor(void *arg)
{
	struct shtag *tag = arg;

	list_unlink(&tag->le);
	mem_deref(tag->name);
	mem_deref(tag->holder);
}


static void req_destructor(void *arg)
{
	struct req *req = arg;

	tmr_cancel(&req->tmr);
	list_unlink(&req->le);
}


static bool name_cmp(struct le *le, void *arg)
{
	const struct shtag *tag = le->data;

	return 0 == str_cmp(tag->name, arg);
}


struct shtag *shtag_tag_find(const char *name)
{
	if (!name)
		return NULL;

	return list_ledata(list_apply(&st.tags, true, name_cmp, (void *)name));
}


int shtag_tag_get(struct shtag **tagp, const char *name)
{
	struct shtag *tag;
	int err;

	tag = shtag_tag_find(name);
	if (tag) {
		*tagp = tag;
		return 0;
	}

	if (!str_isset(name))
		return EINVAL;

	tag = mem_zalloc(sizeof(*tag), tag_destructor);
	if (!tag)
		return ENOMEM;

	err  = str_dup(&tag->name, name);
	err |= str_dup(&tag->holder, "");
	if (err) {
		mem_deref(tag);
		return err;
	}

	list_append(&st.tags, &tag->le, tag);
	*tagp = tag;
	return 0;
}


static bool is_me(const char *node)
{
	return 0 == str_cmp(node, cluster_node_id());
}


/* ---- requests ------------------------------------------------------- */


/**
 * Tell the requester: on success the state its operation produced (the
 * tag may have moved on since: status shows that), else the state found.
 */
static void req_complete(struct req *req, int err)
{
	shtag_result_h *h = req->h;
	const struct shtag *tag = req->tag;
	bool release = req->op == OP_RELEASE;

	if (!h)
		return;

	req->h = NULL;
	list_unlink(&req->le);
	if (err)
		h(err, tag->name, tag->active, tag->epoch, tag->holder,
		  req->arg);
	else
		h(0, tag->name, !release, req->epoch,
		  release ? "" : cluster_node_id(), req->arg);
	mem_deref(req);   /* the list's reference */
}


static void reqs_complete(const struct shtag *tag, int err, bool all)
{
	struct le *le = st.reqs.head;

	while (le) {
		struct req *req = le->data;

		le = le->next;
		if (tag && req->tag != tag)
			continue;
		if (all || (req->sent_ok && req->epoch <= tag->epoch))
			req_complete(req, err);
	}
}


/* ---- state ---------------------------------------------------------- */


static void tag_set_active(struct shtag *tag, bool active)
{
	if (tag->active == active)
		return;

	tag->active = active;
	if (active)
		log_info("shtag", "%s: active here at epoch %llu", tag->name,
			 (unsigned long long)tag->epoch);
	else if (str_isset(tag->holder))
		log_info("shtag", "%s: stepped down to backup, %s holds it at "
			 "epoch %llu", tag->name, tag->holder,
			 (unsigned long long)tag->epoch);
	else
		log_info("shtag", "%s: released at epoch %llu", tag->name,
			 (unsigned long long)tag->epoch);

	if (st.changeh)
		st.changeh(tag->name, active, tag->epoch, st.arg);
}


/** Learn a tag's state; only ever forward, to a higher epoch. */
void shtag_learn(struct shtag *tag, uint64_t epoch, const char *holder)
{
	char *h = NULL;
	bool moved;

	if (epoch <= tag->epoch)
		return;

	if (str_dup(&h, holder ? holder : ""))
		return;

	moved = 0 != str_cmp(h, tag->holder);
	mem_deref(tag->holder);
	tag->holder = h;
	tag->epoch = epoch;

	/* dialogs first (adopt or hand over), then whoever re-homes them */
	if (moved)
		shtag_observers_tell(tag->name, tag->holder);
	tag_set_active(tag, st.started && is_me(h));
	metrics_shtag_set(tag->name, tag->epoch, tag->active);
	reqs_complete(tag, 0, false);
}


static void msg_handler(const struct pl *chan, const struct pl *msg,
			void *arg)
{
	struct odict *od = NULL;
	struct shtag *tag;
	const char *name, *holder;
	struct pl body;
	uint64_t epoch;
	(void)chan;
	(void)arg;

	if (cluster_msg_open(&body, msg))
		return;   /* counted */

	if (json_decode_odict(&od, 4, body.p, body.l, JSON_DEPTH))
		goto bad;

	name = odict_string(od, "tag");
	holder = odict_string(od, "holder");
	if (!name || !holder || !odict_get_number(od, &epoch, "epoch"))
		goto bad;

	if (!shtag_tag_get(&tag, name))
		shtag_learn(tag, epoch, holder);
	goto out;

 bad:
	metrics_repl_dropped("malformed");
 out:
	mem_deref(od);
}


/* ---- the script ----------------------------------------------------- */


static int announce(struct mbuf **mbp, const struct shtag *tag,
		    uint64_t epoch, const char *holder)
{
	struct odict *od = NULL;
	struct mbuf *mb = NULL;
	int err;

	err  = odict_alloc(&od, 4);
	err |= cluster_msg_alloc(&mb);
	if (err)
		goto out;

	err  = odict_entry_add(od, "tag", ODICT_STRING, tag->name);
	err |= odict_entry_add(od, "epoch", ODICT_INT, (int64_t)epoch);
	err |= odict_entry_add(od, "holder", ODICT_STRING, holder);
	if (!err)
		err = mbuf_printf(mb, "%H", json_encode_odict, od);
	if (!err)
		err = cluster_msg_seal(mb);

 out:
	mem_deref(od);
	if (err)
		mem_deref(mb);
	else
		*mbp = mb;
	return err;
}


static int reply_decode(bool *okp, uint64_t *epochp, const char **holderp,
			uint64_t *waitp, const struct redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->elements > 4 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    (r->elements == 4 && r->element[3]->type != REDIS_REPLY_INTEGER))
		return EBADMSG;

	*okp = r->element[0]->integer == 1;
	*epochp = (uint64_t)r->element[1]->integer;
	*holderp = r->element[2]->str;
	*waitp = r->elements == 4 ? (uint64_t)r->element[3]->integer : 0;
	return 0;
}


static int req_send(struct req *req);


static void wait_handler(void *arg)
{
	struct req *req = arg;
	int err;

	err = req_send(req);
	if (err)
		req_complete(req, err);
}


/**
 * A fenced take found the holder's lease still running: try again once
 * it has run out, unless the holder proved alive meanwhile.
 */
static bool req_wait(struct req *req, uint64_t ms)
{
	if (req->waits++ >= FENCE_WAITS ||
	    cluster_node_alive(req->tag->holder))
		return false;

	log_info("shtag", "%s: %s's lease runs %llu ms more, waiting",
		 req->tag->name, req->tag->holder, (unsigned long long)ms);
	tmr_start(&req->tmr, ms + 1, wait_handler, req);
	return true;
}


static void cas_reply(int err, const struct redisReply *reply, void *arg)
{
	struct req *req = arg;
	const char *holder;
	uint64_t epoch, wait;
	bool ok;

	if (!req->h || !st.up)
		goto out;

	if (!err)
		err = reply_decode(&ok, &epoch, &holder, &wait, reply);
	if (err) {
		if (err == EPROTO)
			log_warn("shtag", "%s %s: %s", op_names[req->op],
				 req->tag->name, reply->str);
		req_complete(req, err == ECONNRESET ? ENOTCONN : err);
		goto out;
	}

	if (!ok) {
		shtag_learn(req->tag, epoch, holder);
		if (!wait || epoch != req->want || !req_wait(req, wait))
			req_complete(req, epoch != req->want ? ESTALE : EBUSY);
		goto out;
	}

	/* wait for the channel, unless that already came (or never comes) */
	req->sent_ok = true;
	req->epoch = epoch;
	if (req->tag->epoch >= epoch)
		req_complete(req, 0);

 out:
	mem_deref(req);   /* the reply's reference */
}


/** Run the script for a request (again, after a wait) */
static int req_send(struct req *req)
{
	const struct shtag *tag = req->tag;
	struct mbuf *mb = NULL;
	int err;

	if (!redis_is_up())
		return ENOTCONN;

	err = announce(&mb, tag, req->epoch, req->op == OP_RELEASE ? "" :
		       cluster_node_id());
	if (err)
		goto out;

	err = redis_eval(st.cas, cas_reply, mem_ref(req),
			 "1 %s %s %s %s %llu %b %s %s %s %s %s", st.key,
			 tag->name, op_names[req->op], cluster_node_id(),
			 (unsigned long long)req->want, mb->buf, mb->end,
			 st.chan, st.node_prefix, req->fence ? "1" : "0",
			 st.probe_prefix, redis_publish_cmd());
	if (err)
		mem_deref(req);   /* the reply's reference, never taken */

 out:
	mem_deref(mb);
	return err;
}


static int cas_send(struct shtag *tag, enum op op, shtag_result_h *h,
		    void *arg)
{
	struct req *req;
	int err;

	if (!redis_is_up())
		return ENOTCONN;

	req = mem_zalloc(sizeof(*req), req_destructor);
	if (!req)
		return ENOMEM;

	req->tag = tag;
	req->op = op;
	req->want = tag->epoch;
	req->epoch = op == OP_ASSERT || op == OP_KEEP ? req->want :
		req->want + 1;
	req->fence = op == OP_TAKE && str_isset(tag->holder) &&
		!is_me(tag->holder) && !cluster_node_alive(tag->holder);
	req->h = h;
	req->arg = arg;

	err = req_send(req);
	if (err) {
		mem_deref(req);
		return err;
	}

	list_append(&st.reqs, &req->le, req);
	return 0;
}


/** The start-up claim: claim the tag, or release it (shtag_sync.c) */
int shtag_send_claim(struct shtag *tag, shtag_result_h *h, void *arg)
{
	return cas_send(tag, tag->wish ? OP_CLAIM : OP_RELEASE, h, arg);
}


/** Write back a tag Redis lost, at our epoch (shtag_sync.c) */
int shtag_send_assert(struct shtag *tag, shtag_result_h *h, void *arg)
{
	return cas_send(tag, OP_ASSERT, h, arg);
}


/** Every request under way ends with err (Redis went away, closing) */
void shtag_reqs_fail(int err)
{
	reqs_complete(NULL, err, true);
}


/** The tag table, in the order first seen */
struct list *shtag_table(void)
{
	return &st.tags;
}


/** The start-up claim began: "holder = me" is really this run */
void shtag_set_started(void)
{
	st.started = true;
}


/* ---- API ------------------------------------------------------------ */


static int request(const char *name, enum op op, shtag_result_h *h,
		   void *arg)
{
	struct shtag *tag;
	int err;

	if (!name || !h)
		return EINVAL;
	if (!st.up)
		return ENOTSUP;
	if (!cluster_synced())
		return EAGAIN;
	if (op == OP_TAKE && !cluster_lease_valid())
		return ENOTCONN;

	err = shtag_tag_get(&tag, name);
	if (err)
		return err;

	return cas_send(tag, op, h, arg);
}


/**
 * Take tag `name` (compare-and-set on the epoch this node knows). The
 * handler is called once the outcome is applied here. ENOTSUP without a
 * cluster, EAGAIN before the node is synced, ENOTCONN while Redis is down.
 */
int shtag_activate(const char *name, shtag_result_h *h, void *arg)
{
	return request(name, shtag_is_active(name) ? OP_KEEP : OP_TAKE, h,
		       arg);
}


/** Give tag `name` up; EBUSY (in h) when this node does not hold it. */
int shtag_release(const char *name, shtag_result_h *h, void *arg)
{
	return request(name, OP_RELEASE, h, arg);
}


/** Without a cluster a single node serves every tag. */
bool shtag_is_active(const char *name)
{
	const struct shtag *tag;

	if (!st.up)
		return true;

	tag = shtag_tag_find(name);
	return tag && tag->active;
}


/**
 * This node may act for tag `name` (re-INVITEs, its own BYEs, moves):
 * it holds the tag and its lease is fresh (cluster_lease.c).
 */
bool shtag_may_act(const char *name)
{
	return shtag_is_active(name) && cluster_lease_valid();
}


uint64_t shtag_epoch(const char *name)
{
	const struct shtag *tag = shtag_tag_find(name);

	return tag ? tag->epoch : 0;
}


/** The tag's holder as last known, "" for nobody; NULL if never seen. */
const char *shtag_holder(const char *name)
{
	const struct shtag *tag = shtag_tag_find(name);

	return tag ? tag->holder : NULL;
}


/** One handler, told when this node becomes active or stops being so. */
void shtag_set_handler(shtag_change_h *h, void *arg)
{
	st.changeh = h;
	st.arg = arg;
}


void shtag_apply(shtag_apply_h *h, void *arg)
{
	struct le *le;

	if (!h)
		return;

	LIST_FOREACH(&st.tags, le) {
		const struct shtag *tag = le->data;

		if (h(tag->name, tag->active, tag->epoch, tag->holder, arg))
			break;
	}
}


/** Add "shtags": [{name, active, epoch, holder, wish}] to od. */
int shtag_status(struct odict *od)
{
	struct odict *arr;
	struct le *le;
	unsigned i = 0;
	int err;

	err = odict_alloc(&arr, 8);
	if (err)
		return err;

	LIST_FOREACH(&st.tags, le) {
		const struct shtag *tag = le->data;
		struct odict *o;
		char key[CTL_INDEX_SZ];

		err = odict_alloc(&o, 8);
		if (err)
			break;

		re_snprintf(key, sizeof(key), "%u", i++);
		err  = odict_entry_add(o, "name", ODICT_STRING, tag->name);
		err |= odict_entry_add(o, "active", ODICT_BOOL, tag->active);
		err |= odict_entry_add(o, "epoch", ODICT_INT,
				       (int64_t)tag->epoch);
		err |= odict_entry_add(o, "holder", ODICT_STRING,
				       tag->holder);
		err |= odict_entry_add(o, "wish", ODICT_STRING,
				       tag->wish ? "active" : "backup");
		if (!err)
			err = odict_entry_add(arr, key, ODICT_OBJECT, o);
		mem_deref(o);
		if (err)
			break;
	}

	if (!err)
		err = odict_entry_add(od, "shtags", ODICT_ARRAY, arr);

	mem_deref(arr);
	return err;
}


/* ---- life cycle ----------------------------------------------------- */


static int wishes_init(const struct rh_conf *cfg)
{
	for (size_t i = 0; i < cfg->shtagc; i++) {
		struct shtag *tag;
		int err;

		err = shtag_tag_get(&tag, cfg->shtag[i].name);
		if (err)
			return err;

		tag->wish = cfg->shtag[i].active;
	}

	return 0;
}


int shtag_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;
	if (st.up)
		return EALREADY;

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	re_snprintf(st.key, sizeof(st.key), "%s:shtags", cfg->keyns);
	re_snprintf(st.chan, sizeof(st.chan), "%s:shtag", cfg->keyns);
	re_snprintf(st.node_prefix, sizeof(st.node_prefix), "%s:node:",
		    cfg->keyns);
	re_snprintf(st.probe_prefix, sizeof(st.probe_prefix), "%s:probe:",
		    cfg->keyns);

	err = wishes_init(cfg);
	if (err)
		goto out;

	err = redis_script_add(&st.cas, cas_lua);
	if (err)
		goto out;

	err = redis_subscribe(st.chan, msg_handler, NULL);
	if (err)
		goto out;

	err = shtag_ctl_init();
	if (err)
		goto out;

	err = shtag_sync_init(cfg);
	if (err)
		goto out;

	st.up = true;

 out:
	if (err)
		shtag_close();
	return err;
}


void shtag_close(void)
{
	shtag_reqs_fail(ECANCELED);
	shtag_sync_close();
	list_flush(&st.tags);
	shtag_observers_close();
	memset(&st, 0, sizeof(st));
}
