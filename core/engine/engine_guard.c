/**
 * @file engine_guard.c  A new call only where it is protected
 *
 * A call survives its node only if that node holds the call's sharing
 * tag: only the holder replicates, and only a tag's holder is taken over.
 * So a new INVITE whose tag (the policy's choice, else default_shtag) is
 * held here goes on; else, if this node holds the tag's sub-tag
 * "<tag>.<node>" (the calls a move or drain handed it), the call goes
 * there. Otherwise, when another node is up (not draining) and holds the
 * tag, the INVITE is answered 503 with a short Retry-After: the upstream
 * tries its next server (RFC 3263), the active node, and does not write
 * this one off for long, since it may become the active one soon. A node
 * that has not synced once since it started refuses every call: it does
 * not know the tags yet. A Redis outage later does not stop the holder:
 * its calls are written to Redis when it is back.
 *
 * Left: nobody holds the tag, or its holder is draining or down. No node
 * can protect the call then; refusing it would refuse it everywhere, so
 * it is served, with a warning (at most one a second), and counted by
 * rehome_dialogs_unprotected until a node takes the tag.
 */
#include <re.h>
#include "log.h"
#include "conf.h"
#include "proxy.h"
#include "cluster.h"
#include "shtag.h"
#include "engine.h"

enum {
	RETRY_AFTER_S = 1,      /* Retry-After of the 503 */
	WARN_EVERY_MS = 1000,
};

static uint64_t warned;     /* jiffies of the last warning */
static bool synced_once;


static void refuse(struct proxy_route *rt, const char *why)
{
	rt->reject = 503;
	rt->retry_after = RETRY_AFTER_S;
	str_ncpy(rt->reason, "Service Unavailable", sizeof(rt->reason));
	log_debug("engine", "new call refused: %s", why);
}


/** Route a new call to a tag held here, or refuse it (see above). */
void engine_guard_route(struct proxy_route *rt, const struct rh_conf *cfg)
{
	const char *tag = rt->shtag[0] ? rt->shtag : cfg->default_shtag;
	const struct cluster_node *node;
	char sub[sizeof(rt->shtag)];
	const char *holder;
	uint64_t now;

	if (rt->reject || !cluster_enabled() || !str_isset(tag))
		return;

	if (!synced_once && !(synced_once = cluster_synced())) {
		refuse(rt, "not synced yet");
		return;
	}

	if (shtag_is_active(tag))
		return;

	if (re_snprintf(sub, sizeof(sub), "%s.%s", tag, cfg->node_id) > 0 &&
	    shtag_is_active(sub)) {
		str_ncpy(rt->shtag, sub, sizeof(rt->shtag));
		return;
	}

	holder = shtag_holder(tag);
	node = str_isset(holder) ? cluster_node_find(holder) : NULL;
	if (node && !node->self && node->state == CLUSTER_NODE_UP) {
		refuse(rt, "another node holds its tag");
		return;
	}

	now = tmr_jiffies();
	if (!warned || now - warned >= WARN_EVERY_MS) {
		warned = now;
		log_warn("engine", "new call in tag %s served unprotected: %s",
			 tag, node ? "its holder is not up" :
			 "nobody holds it");
	}
}
