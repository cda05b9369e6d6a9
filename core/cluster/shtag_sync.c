/**
 * @file shtag_sync.c  Sharing tags: the (re)connect read, the start-up claim, the restore
 *
 * On every (re)connect, as a step of the cluster's sequence, the whole
 * tags hash is read and every state learnt (only ever forward, shtag.c).
 * A tag this node holds that Redis no longer has (a restart without
 * persistence, a promoted replica that missed it) is written back at our
 * epoch ("assert"). After the first sequence, the tags the config wants
 * active are claimed (a take that loses to a live holder) and the ones a
 * previous run of this node held are released. Each lease renewal
 * (cluster_lease.c) brings the hash too: from it only step-downs are
 * learnt, never a tag becoming ours.
 *
 * The table and the script are shtag.c's; this file only drives them.
 */
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "conf.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "shtag_int.h"

enum {
	KEY_SIZE    = 256,
	CLAIM_TRIES = 3,
};

static struct {
	struct cluster_step *step;   /* NULL: not running */
	cluster_done_h *synch;
	char key[KEY_SIZE];
} sy;


static int state_decode(uint64_t *epochp, struct pl *holder,
			const struct pl *val)
{
	struct pl e;

	if (re_regex(val->p, val->l, "[0-9]+ [^ ]*", &e, holder) ||
	    e.p != val->p)
		return EBADMSG;

	*epochp = pl_u64(&e);
	return 0;
}



static void claim_result(int err, const char *name, bool active,
			 uint64_t epoch, const char *holder, void *arg);


static int claim(struct shtag *tag)
{
	int err;

	++tag->claims;
	err = shtag_send_claim(tag, claim_result, tag);
	if (err)
		log_warn("shtag", "%s: %s: %m", tag->name,
			 tag->wish ? "claim" : "release", err);

	return err;
}


static void claim_result(int err, const char *name, bool active,
			 uint64_t epoch, const char *holder, void *arg)
{
	struct shtag *tag = arg;
	(void)active;

	if (err == ESTALE && tag->claims < CLAIM_TRIES) {
		(void)claim(tag);
		return;
	}

	if (err == EBUSY && tag->wish)
		log_info("shtag", "%s: held by live node %s at epoch %llu, "
			 "staying backup", name, holder,
			 (unsigned long long)epoch);
	else if (err && err != ECANCELED)
		log_warn("shtag", "%s: start-up %s failed: %m", name,
			 tag->wish ? "claim" : "release", err);
}


/**
 * First sync done: claim the tags the config wants active (unless a live
 * node holds them) and release the ones a previous run of this node held.
 */
void shtag_claim(void)
{
	struct le *le;

	shtag_set_started();

	LIST_FOREACH(shtag_table(), le) {
		struct shtag *tag = le->data;

		if (tag->wish || 0 == str_cmp(tag->holder, cluster_node_id()))
			(void)claim(tag);
	}
}


static void assert_result(int err, const char *name, bool active,
			  uint64_t epoch, const char *holder, void *arg)
{
	(void)active;
	(void)arg;

	if (err && err != ECANCELED)
		log_warn("shtag", "%s: restoring failed (%m), %s holds it at "
			 "epoch %llu", name, err, holder,
			 (unsigned long long)epoch);
}


static void assert_held(void)
{
	struct le *le;

	LIST_FOREACH(shtag_table(), le) {
		struct shtag *tag = le->data;

		if (tag->active && tag->seen < tag->epoch) {
			log_warn("shtag", "%s: missing in redis, restoring "
				 "epoch %llu", tag->name,
				 (unsigned long long)tag->epoch);
			(void)shtag_send_assert(tag, assert_result, tag);
		}
	}
}


/**
 * Learn the tags of an HGETALL of the hash: all of them after a
 * (re)connect, or, from a lease renewal, only those that another node
 * now holds (stepping down is safe at any time, while becoming active
 * waits for the channel, shtag.c).
 */
static void tags_read(const struct redisReply *reply, bool all)
{
	for (size_t i = 0; i + 1 < reply->elements; i += 2) {
		const redisReply *k = reply->element[i];
		const redisReply *v = reply->element[i + 1];
		struct shtag *tag;
		struct pl val, holder;
		uint64_t epoch;
		char *hs = NULL;

		val.p = v->str;
		val.l = v->len;
		if (k->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING ||
		    state_decode(&epoch, &holder, &val))
			continue;

		if (all ? shtag_tag_get(&tag, k->str) :
		    !(tag = shtag_tag_find(k->str)))
			continue;
		if (!all && (!tag->active || !pl_isset(&holder) ||
			     0 == pl_strcmp(&holder, cluster_node_id())))
			continue;
		if (pl_strdup(&hs, &holder))
			continue;

		if (all)
			tag->seen = epoch;
		shtag_learn(tag, epoch, hs);
		mem_deref(hs);
	}
}


/** The tags as of a lease renewal (cluster_lease.c) */
void shtag_lease_reply(const struct redisReply *reply)
{
	if (sy.step && reply && reply->type == REDIS_REPLY_ARRAY)
		tags_read(reply, false);
}


static void sync_reply(int err, const struct redisReply *reply, void *arg)
{
	cluster_done_h *h = sy.synch;
	struct le *le;
	(void)arg;

	if (!sy.step || !h)
		return;
	if (err || reply->type != REDIS_REPLY_ARRAY) {
		h(err ? err : EBADMSG);
		return;
	}

	LIST_FOREACH(shtag_table(), le) {
		struct shtag *tag = le->data;

		tag->seen = 0;
	}

	tags_read(reply, true);
	assert_held();
	h(0);
}


/** cluster_sync_h, after (re)connect: read every tag's state */
static int tags_sync(cluster_done_h *h, void *arg)
{
	(void)arg;

	sy.synch = h;
	return redis_command(sync_reply, NULL, "HGETALL %s", sy.key);
}


static void redis_down(void *arg)
{
	(void)arg;

	shtag_reqs_fail(ENOTCONN);
}


int shtag_sync_init(const struct rh_conf *cfg)
{
	re_snprintf(sy.key, sizeof(sy.key), "%s:shtags", cfg->keyns);

	return cluster_sync_step_add(&sy.step, "tag", tags_sync, redis_down,
				     NULL);
}


void shtag_sync_close(void)
{
	sy.step = mem_deref(sy.step);
	sy.synch = NULL;
}
