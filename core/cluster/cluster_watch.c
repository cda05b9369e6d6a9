/**
 * @file cluster_watch.c  Fast detection: a node whose Redis connection closed is down at once
 *
 * Every node subscribes to a channel of its own, `<cluster>:probe:<id>`
 * (its watchdog's, redis.c). When its process dies the kernel closes its
 * sockets and Redis drops the subscription at once, so every WATCH_MS
 * each node asks Redis `PUBSUB NUMSUB` of every other node it has heard
 * since its own Redis session began: none left means that node's
 * connection is gone, and it is down now, without waiting for
 * node_timeout. Redis stays the judge: the take script checks the same
 * sign itself before it lets a tag go (shtag.c).
 *
 * A node merely busy or paused keeps its connection, so nothing here
 * fires for it; only its heartbeats stopping for node_timeout do
 * (cluster.c), and by then its lease has run out (cluster_lease.c). A
 * node we have not heard since our own reconnect is not judged, as its
 * subscription may not be back yet after a Redis restart. Cost: one
 * command per other node every WATCH_MS. A host that vanishes without
 * closing its sockets (power loss, a cut cable) is found by node_timeout
 * only.
 */
#include <re.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "conf.h"
#include "redis.h"
#include "cluster.h"
#include "cluster_int.h"

enum {
	WATCH_MS = 50,
	KEY_SIZE = 256,
};

static struct {
	struct tmr tmr;
	char prefix[KEY_SIZE];
} w;


static void numsub_reply(int err, const struct redisReply *reply, void *arg)
{
	char *id = arg;

	if (!err && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 2 &&
	    reply->element[1]->type == REDIS_REPLY_INTEGER &&
	    reply->element[1]->integer == 0)
		cluster_node_gone(id, "its redis connection closed");

	mem_deref(id);
}


static bool node_ask(const struct cluster_node *node, void *arg)
{
	char *id = NULL;
	(void)arg;

	if (node->self || !node->watched ||
	    node->state == CLUSTER_NODE_DOWN || str_dup(&id, node->id))
		return false;

	if (redis_command(numsub_reply, id, "PUBSUB NUMSUB %s%s", w.prefix,
			  node->id))
		mem_deref(id);

	return false;
}


static void watch_handler(void *arg)
{
	(void)arg;

	tmr_start(&w.tmr, WATCH_MS, watch_handler, NULL);

	if (redis_is_up())
		(void)cluster_node_apply(node_ask, NULL);
}


int cluster_watch_init(const struct rh_conf *cfg)
{
	re_snprintf(w.prefix, sizeof(w.prefix), "%s:probe:", cfg->keyns);
	tmr_start(&w.tmr, WATCH_MS, watch_handler, NULL);

	return 0;
}


void cluster_watch_close(void)
{
	tmr_cancel(&w.tmr);
}
