/**
 * @file cluster_fresh.c  Replay-proof cluster messages: per-sender boot, sequence and clock
 *
 * A signature proves who wrote a message, not that it is new: anyone who
 * can read the channels can publish a node's heartbeat again after that
 * node died, and keep a dead node "alive". So every message carries the
 * sender's boot id (64 random bits drawn at start), a sequence number
 * counting its messages since, and its wall clock, all under the
 * signature (cluster_msg.c). A node's messages reach every other node in
 * the order it sent them, whatever the channel: one connection sends them
 * all, and Redis delivers them to a subscriber in the order it ran them.
 * So a receiver keeps, per sender, the boot id and the highest sequence
 * seen, and drops as a replay anything not newer for that boot. On a
 * Redis Cluster that order holds per channel only (sharded pub/sub: each
 * channel on the master of its slot; and a dialog's message is published
 * once its snapshot script answered, after messages stamped later), so
 * there a sender is known per channel ("node@channel",
 * redis_msg_origin()); the cost is that a message seen on one channel may
 * be replayed once on another channel, within the clock window. A new boot
 * id is a restarted sender, accepted only with a clock past the previous
 * boot's last message; otherwise it is an old boot's message replayed. A
 * message whose clock is further than a window from ours is dropped as
 * stale: that bounds what a node that has no state yet (just started)
 * can be fed, and shows clocks drifting apart. Messages read back from
 * Redis (snapshots) are old by nature and are not checked here.
 *
 * The window is 2 x node_timeout (a heartbeat older than node_timeout
 * says nothing any more), at least WINDOW_MIN_MS: it must also hold the
 * skew between the nodes' clocks and the transit. The table of senders is
 * bounded: only signed messages add to it, and the least recently heard
 * sender makes room for a new one.
 *
 * Every dropped cluster message is counted here, by reason, in the metric
 * rehome_repl_messages_dropped_total{reason} and in the status.
 */
#include <string.h>
#include <sys/time.h>
#include <re.h>
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "cluster.h"
#include "cluster_int.h"

enum {
	WINDOW_MIN_MS = 2000,
	PEERS_MAX     = 1024,    /* per channel on a Redis Cluster */
	PEER_BUCKETS  = 64,
	PEER_ID_SZ    = 256,     /* "node@channel" */
};

/** The reasons a message is dropped, as the metric names them */
static const char *reasons[] = {
	"malformed", "unsigned", "bad_signature", "replay", "stale",
};

enum reason {
	R_MALFORMED = 0, R_UNSIGNED, R_BAD_SIGNATURE, R_REPLAY, R_STALE,
	R_COUNT
};

_Static_assert(ARRAY_SIZE(reasons) == R_COUNT, "a name per reason");

/** What a receiver knows of one sender */
struct peer {
	struct le he;
	char *node;
	struct cluster_seen seen;
	uint64_t heard;           /* jiffies of its last accepted message */
};

static struct {
	struct hash *peers;
	uint32_t peerc;
	uint64_t window;          /* ms */
	uint64_t accepted;
	uint64_t dropped[R_COUNT];
} fr;


static void peer_destructor(void *arg)
{
	struct peer *p = arg;

	hash_unlink(&p->he);
	mem_deref(p->node);
}


/** This node's wall clock in ms, the one every stamp carries */
uint64_t cluster_clock_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}


/**
 * The rule, on its own: may a message stamped st be accepted from a
 * sender of which we know `seen` (all zero: nothing yet), at our clock
 * `now`? 0 and `seen` updated, or EALREADY (replay) / ETIMEDOUT (stale).
 */
int cluster_fresh_check(struct cluster_seen *seen,
			const struct cluster_stamp *st, uint64_t now,
			uint64_t window)
{
	if (!seen || !st)
		return EINVAL;

	if (seen->boot == st->boot && st->seq <= seen->seq)
		return EALREADY;

	/* another boot: a restart has a later clock than the last one */
	if (seen->boot && seen->boot != st->boot && st->ts <= seen->ts)
		return EALREADY;

	if (st->ts + window < now || st->ts > now + window)
		return ETIMEDOUT;

	seen->ts = seen->boot == st->boot ? max(seen->ts, st->ts) : st->ts;
	seen->boot = st->boot;
	seen->seq = st->seq;
	return 0;
}


static bool node_cmp(struct le *le, void *arg)
{
	const struct peer *p = le->data;

	return 0 == pl_strcmp(arg, p->node);
}


static bool oldest_find(struct le *le, void *arg)
{
	struct peer **oldest = arg;
	struct peer *p = le->data;

	if (!*oldest || p->heard < (*oldest)->heard)
		*oldest = p;

	return false;
}


static int peer_get(struct peer **pp, const struct pl *node)
{
	uint32_t key = hash_joaat_pl(node);
	struct peer *p;
	int err;

	p = list_ledata(hash_lookup(fr.peers, key, node_cmp, (void *)node));
	if (p) {
		*pp = p;
		return 0;
	}

	if (fr.peerc >= PEERS_MAX) {
		struct peer *oldest = NULL;

		(void)hash_apply(fr.peers, oldest_find, &oldest);
		mem_deref(oldest);
		--fr.peerc;
	}

	p = mem_zalloc(sizeof(*p), peer_destructor);
	if (!p)
		return ENOMEM;

	err = pl_strdup(&p->node, node);
	if (err) {
		mem_deref(p);
		return err;
	}

	hash_append(fr.peers, key, &p->he, p);
	++fr.peerc;
	*pp = p;
	return 0;
}


/* The sender of st, per channel on a Redis Cluster (its order is) */
static int peer_of(struct peer **pp, const struct cluster_stamp *st)
{
	const char *origin = redis_msg_origin();
	char id[PEER_ID_SZ];
	struct pl pl;

	if (!*origin)
		return peer_get(pp, &st->node);

	if (re_snprintf(id, sizeof(id), "%r@%s", &st->node, origin) < 0)
		return ENOMEM;

	pl_set_str(&pl, id);
	return peer_get(pp, &pl);
}


/** Count a dropped message: EPROTO malformed, EBADMSG unsigned, ... */
void cluster_fresh_dropped(int err)
{
	enum reason r;

	switch (err) {

	case EBADMSG:   r = R_UNSIGNED;      break;
	case EACCES:    r = R_BAD_SIGNATURE; break;
	case EALREADY:  r = R_REPLAY;        break;
	case ETIMEDOUT: r = R_STALE;         break;
	default:        r = R_MALFORMED;     break;
	}

	++fr.dropped[r];
	metrics_repl_dropped(reasons[r]);
}


/* The first drop of each kind is a warning, the others go to debug */
static void drop_log(const struct cluster_stamp *st, int err, uint64_t now)
{
	enum reason r = err == EALREADY ? R_REPLAY : R_STALE;
	enum log_level lvl = fr.dropped[r] == 1 ? LOG_WARN : LOG_DEBUG;

	if (lvl < log_get_level())
		return;

	if (r == R_REPLAY)
		log_msg(lvl, "cluster", "message from %r dropped: a replay "
			"(boot %016llx, seq %llu)", &st->node,
			(unsigned long long)st->boot,
			(unsigned long long)st->seq);
	else
		log_msg(lvl, "cluster", "message from %r dropped: its clock "
			"is %lld ms off ours (window %llu ms); are the nodes' "
			"clocks synchronised?", &st->node,
			(long long)(st->ts - now),
			(unsigned long long)fr.window);
}


/**
 * A live message with a good signature: keep it if it is newer than
 * everything its sender sent before, else count and drop it.
 */
int cluster_fresh_accept(const struct cluster_stamp *st)
{
	uint64_t now = cluster_clock_ms();
	struct peer *p;
	int err;

	if (!st)
		return EINVAL;

	err = peer_of(&p, st);
	if (err)
		return err;

	err = cluster_fresh_check(&p->seen, st, now, fr.window);
	if (err) {
		cluster_fresh_dropped(err);
		drop_log(st, err, now);
		return err;
	}

	p->heard = tmr_jiffies();
	++fr.accepted;
	return 0;
}


/**
 * Start with our own boot known: a message of an earlier run of this
 * node, published again, is a replay.
 */
int cluster_fresh_init(const struct cluster_stamp *self,
		       uint32_t node_timeout)
{
	struct peer *p;
	int err;

	memset(&fr, 0, sizeof(fr));
	fr.window = max(2 * (uint64_t)node_timeout, (uint64_t)WINDOW_MIN_MS);

	err = hash_alloc(&fr.peers, PEER_BUCKETS);
	if (err)
		return err;

	err = peer_get(&p, &self->node);
	if (err)
		return err;

	p->seen.boot = self->boot;
	p->seen.ts = self->ts;
	return 0;
}


void cluster_fresh_close(void)
{
	hash_flush(fr.peers);
	fr.peers = mem_deref(fr.peers);
	memset(&fr, 0, sizeof(fr));
}


/** Add "messages": {accepted, window_ms, dropped: {reason: n}} to od */
int cluster_fresh_status(struct odict *od)
{
	struct odict *o = NULL, *d = NULL;
	int err;

	err  = odict_alloc(&o, 4);
	err |= odict_alloc(&d, 8);
	if (err)
		goto out;

	for (size_t i = 0; i < R_COUNT && !err; i++)
		err = odict_entry_add(d, reasons[i], ODICT_INT,
				      (int64_t)fr.dropped[i]);

	err |= odict_entry_add(o, "accepted", ODICT_INT,
			       (int64_t)fr.accepted);
	err |= odict_entry_add(o, "window_ms", ODICT_INT,
			       (int64_t)fr.window);
	err |= odict_entry_add(o, "dropped", ODICT_OBJECT, d);
	if (!err)
		err = odict_entry_add(od, "messages", ODICT_OBJECT, o);

 out:
	mem_deref(d);
	mem_deref(o);
	return err;
}
