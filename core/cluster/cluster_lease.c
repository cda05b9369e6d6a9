/**
 * @file cluster_lease.c  Fencing: a node acts for its tags only while its lease is fresh
 *
 * The lease is the heartbeat key `<cluster>:node:<id>` (cluster.c): every
 * heartbeat (node_timeout/5) renews it with PX node_timeout, through a
 * script that also returns the tags hash. This node counts its lease from
 * the moment it *sent* the renewal, not from when Redis ran it, and ends
 * it a margin (node_timeout/10) early:
 *
 *     here:   sent + node_timeout - margin
 *     Redis:  ran  + node_timeout             (ran >= sent)
 *
 * so the lease runs out here before the key expires in Redis, whatever
 * the delays in between, as long as the two clocks run at about the same
 * rate (the margin covers that). A node that looks dead may have its tags
 * taken only once that key has expired in Redis, by Redis's own clock
 * (the take script, shtag.c), or once its connection to Redis is gone
 * (cluster_watch.c). A node that cannot renew (Redis unreachable, the
 * process paused, the network cut) has thus stopped acting before anyone
 * may take its tags. Acting is sending re-INVITEs, BYEs of its own
 * (dialog_timeout), moving calls and taking tags (shtag_may_act(),
 * cluster_lease_valid()); requests of the endpoints are relayed all the
 * same. The lease ends at once when our Redis connection breaks.
 *
 * The reply carries the tags: one that moved on to another node at a
 * higher epoch is stepped down from before the renewal counts, so a node
 * that comes back from a pause or a cut never acts on a stale tag, even
 * before the channel tells it.
 *
 * Trade-off, with fast detection (cluster_watch.c): a paused process
 * keeps its TCP connections, a killed one does not. A dead connection is
 * taken as proof of death at once (fail-over well within a second); a
 * silent node is given the whole node_timeout, so a busy or briefly
 * paused node (less than node_timeout minus a heartbeat) loses nothing,
 * and one paused longer has stopped acting before the key expires.
 */
#include <string.h>
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "conf.h"
#include "redis.h"
#include "cluster.h"
#include "cluster_int.h"
#include "shtag.h"
#include "shtag_int.h"

enum {
	KEY_SIZE      = 256,
	MARGIN_DIV    = 10,        /* margin = node_timeout / 10 */
	MARGIN_MIN_MS = 10,
};

/* KEYS: 1 the node key, 2 the tags hash; ARGV: 1 value, 2 PX ms */
static const char renew_lua[] =
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
	"return redis.call('HGETALL', KEYS[2])\n";

/** One renewal in flight: when it was sent */
struct renewal {
	uint64_t sent;
};

static struct {
	const struct rh_conf *cfg;
	struct redis_script *script;
	struct tmr tmr;            /* at the lease's end */
	char key[KEY_SIZE];
	char tags_key[KEY_SIZE];
	uint64_t end;              /* jiffies; 0: none */
	uint32_t margin;
	bool lapsed;               /* ran out (told once) */
} ls;


static void end_handler(void *arg)
{
	(void)arg;

	ls.lapsed = true;
	log_warn("cluster", "lease not renewed for %u ms: not acting for "
		 "any tag until it is", ls.cfg->node_timeout - ls.margin);
}


static void renew_reply(int err, const struct redisReply *reply, void *arg)
{
	struct renewal *rn = arg;
	uint64_t sent = rn->sent;
	uint64_t end, now = tmr_jiffies();

	mem_deref(rn);

	/* (also called with an error as Redis closes, after lease_close) */
	if (err || !ls.cfg || reply->type != REDIS_REPLY_ARRAY ||
	    !redis_is_up())
		return;

	end = sent + ls.cfg->node_timeout - ls.margin;

	/* the tags first: never act on one that has moved on */
	shtag_lease_reply(reply);

	if (end <= ls.end || end <= now)
		return;

	ls.end = end;
	tmr_start(&ls.tmr, end - now, end_handler, NULL);
	if (ls.lapsed) {
		ls.lapsed = false;
		log_info("cluster", "lease renewed: acting for tags again");
	}
}


/** Renew the lease, the key holding `val` (the heartbeat). */
int cluster_lease_renew(const struct mbuf *val)
{
	struct renewal *rn;
	int err;

	if (!val)
		return EINVAL;

	rn = mem_zalloc(sizeof(*rn), NULL);
	if (!rn)
		return ENOMEM;

	rn->sent = tmr_jiffies();
	err = redis_eval(ls.script, renew_reply, rn, "2 %s %s %b %u", ls.key,
			 ls.tags_key, val->buf, val->end,
			 ls.cfg->node_timeout);
	if (err)
		mem_deref(rn);

	return err;
}


/** Our Redis connection broke: no renewal can be proven, stop now. */
void cluster_lease_drop(void)
{
	if (ls.end && !ls.lapsed)
		log_warn("cluster", "redis connection lost: not acting for "
			 "any tag until the lease is renewed");

	ls.end = 0;
	ls.lapsed = true;
	tmr_cancel(&ls.tmr);
}


/**
 * This node may act for the tags it holds: its lease is fresh. Always
 * true without a cluster.
 */
bool cluster_lease_valid(void)
{
	if (!cluster_enabled())
		return true;

	return redis_is_up() && tmr_jiffies() < ls.end;
}


int cluster_lease_init(const struct rh_conf *cfg)
{
	memset(&ls, 0, sizeof(ls));
	ls.cfg = cfg;
	ls.margin = max(cfg->node_timeout / MARGIN_DIV,
			(uint32_t)MARGIN_MIN_MS);
	re_snprintf(ls.key, sizeof(ls.key), "%s:node:%s", cfg->keyns,
		    cfg->node_id);
	re_snprintf(ls.tags_key, sizeof(ls.tags_key), "%s:shtags",
		    cfg->keyns);

	return redis_script_add(&ls.script, renew_lua);
}


void cluster_lease_close(void)
{
	tmr_cancel(&ls.tmr);
	memset(&ls, 0, sizeof(ls));
}
