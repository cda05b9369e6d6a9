/**
 * @file repl_metrics.c  Dialogs no other node could continue: rehome_dialogs_unprotected
 *
 * A dialog is *protected* when, were this node to stop now, another node
 * could take its tag and go on serving it from its replica. This gauge
 * counts the dialogs this node serves (not replicas; early or confirmed,
 * not ending) that are not, each under the first reason that holds:
 *
 *   redis_down          Redis is down here: its changes are not written
 *   no_tag              it has no sharing tag, which is what moves
 *   tag_not_held        nobody holds its tag: nobody is set to take over
 *   tag_held_elsewhere  another node holds its tag, so it is not
 *                       replicated at all (repl_replicated_here())
 *   no_backup           no other node is up and synced to hold replicas
 *
 * Every reason is printed at each scrape, zeros included, so that the sum
 * is always defined; "HA lost" is that sum above 0 (docs/metrics.md).
 * The counts come from the dialog module's one walk (dialog_tally) and
 * the holders from the cluster layer, at each scrape: nothing is kept.
 */
#include <re.h>
#include "metrics.h"
#include "cseq.h"
#include "dialog.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "repl_int.h"

enum unprotected {
	UNPROT_REDIS_DOWN = 0,
	UNPROT_NO_TAG,
	UNPROT_TAG_NOT_HELD,
	UNPROT_TAG_ELSEWHERE,
	UNPROT_NO_BACKUP,
	UNPROT_NONE,            /* protected */
};

static const char *reason_names[] = {
	"redis_down", "no_tag", "tag_not_held", "tag_held_elsewhere",
	"no_backup",
};

_Static_assert(ARRAY_SIZE(reason_names) == UNPROT_NONE, "a name per reason");

struct unprot_ctx {
	bool redis_up;
	bool backup;
	uint32_t n[UNPROT_NONE];
};


/** Another node up (not draining) and synced: it holds our replicas */
static bool backup_handler(const struct cluster_node *node, void *arg)
{
	(void)arg;

	return !node->self && node->state == CLUSTER_NODE_UP && node->synced;
}


static enum unprotected reason_get(const struct unprot_ctx *ctx,
				   const char *shtag)
{
	const char *holder;

	if (!ctx->redis_up)
		return UNPROT_REDIS_DOWN;
	if (!str_isset(shtag))
		return UNPROT_NO_TAG;

	holder = shtag_holder(shtag);
	if (!str_isset(holder))
		return UNPROT_TAG_NOT_HELD;
	if (!repl_is_me(holder))
		return UNPROT_TAG_ELSEWHERE;

	return ctx->backup ? UNPROT_NONE : UNPROT_NO_BACKUP;
}


static bool shtag_handler(const char *shtag, const struct dialog_counts *n,
			  void *arg)
{
	struct unprot_ctx *ctx = arg;
	enum unprotected r = reason_get(ctx, shtag);

	if (r != UNPROT_NONE)
		ctx->n[r] += dialog_counts_live(n);

	return false;
}


/** metrics_collector_h: rehome_dialogs_unprotected{reason} */
int repl_metrics_print(struct re_printf *pf, void *arg)
{
	struct unprot_ctx ctx = {0};
	struct list tallies = LIST_INIT;
	int err;
	(void)arg;

	err = dialog_tally(&tallies);
	if (err)
		return err;

	ctx.redis_up = redis_is_up();
	ctx.backup = NULL != cluster_node_apply(backup_handler, NULL);
	dialog_tally_by_shtag(&tallies, shtag_handler, &ctx);
	list_flush(&tallies);

	err = metrics_family_print(pf, "rehome_dialogs_unprotected", "gauge",
				   "Dialogs served here that no other node "
				   "could continue, by reason");
	for (size_t r = 0; r < ARRAY_SIZE(reason_names) && !err; r++) {
		err = re_hprintf(pf, "rehome_dialogs_unprotected"
				 "{reason=\"%s\"} %u\n",
				 reason_names[r], ctx.n[r]);
	}

	return err;
}
