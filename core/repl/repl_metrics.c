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
 *   no_backup           no other node is up and synced and listens to its
 *                       tag (repl_tags.c), to hold replicas
 *
 * Every reason is printed at each scrape, zeros included, so that the sum
 * is always defined; "HA lost" is that sum above 0 (docs/metrics.md).
 * The counts come from the dialog module's one walk (dialog_tally) and
 * the holders from the cluster layer, at each scrape: nothing is kept.
 * The same counts are in the status ("repl": {"unprotected"}), and a
 * watch counts them every WATCH_MS to log a warning when dialogs become
 * unprotected (again when the reasons change) and a line when none is
 * left: an operator without a scraper still hears of it.
 */
#include <string.h>
#include <re.h>
#include "log.h"
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

enum {
	WATCH_MS = 1000,
};

struct unprot_ctx {
	bool redis_up;
	uint32_t n[UNPROT_NONE];
};

static struct {
	struct tmr tmr;
	uint32_t n[UNPROT_NONE];    /* as last logged */
} watch;


/** Another node up (not draining), synced, listening to tag `arg` */
static bool backup_handler(const struct cluster_node *node, void *arg)
{
	return !node->self && node->state == CLUSTER_NODE_UP && node->synced &&
		repl_tags_node_listens(node, arg);
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

	return cluster_node_apply(backup_handler, (void *)shtag) ? UNPROT_NONE
		: UNPROT_NO_BACKUP;
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


/** The unprotected dialogs served here, by reason */
static int unprot_count(struct unprot_ctx *ctx)
{
	struct list tallies = LIST_INIT;
	int err;

	memset(ctx, 0, sizeof(*ctx));
	err = dialog_tally(&tallies);
	if (err)
		return err;

	ctx->redis_up = redis_is_up();
	dialog_tally_by_shtag(&tallies, shtag_handler, ctx);
	list_flush(&tallies);
	return 0;
}


static uint32_t unprot_total(const uint32_t *n)
{
	uint32_t total = 0;

	for (size_t r = 0; r < UNPROT_NONE; r++)
		total += n[r];

	return total;
}


/** metrics_collector_h: rehome_dialogs_unprotected{reason} */
int repl_metrics_print(struct re_printf *pf, void *arg)
{
	struct unprot_ctx ctx;
	int err;
	(void)arg;

	err = unprot_count(&ctx);
	if (err)
		return err;

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


/** Add "unprotected": {"total", one count per reason} to od */
int repl_unprotected_status(struct odict *od)
{
	struct unprot_ctx ctx;
	struct odict *o;
	int err;

	err = unprot_count(&ctx);
	if (err)
		return err;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	err = odict_entry_add(o, "total", ODICT_INT,
			      (int64_t)unprot_total(ctx.n));
	for (size_t r = 0; r < ARRAY_SIZE(reason_names) && !err; r++)
		err = odict_entry_add(o, reason_names[r], ODICT_INT,
				      (int64_t)ctx.n[r]);
	if (!err)
		err = odict_entry_add(od, "unprotected", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}


static int reasons_print(struct re_printf *pf, const uint32_t *n)
{
	const char *sep = "";
	int err = 0;

	for (size_t r = 0; r < UNPROT_NONE; r++) {
		if (!n[r])
			continue;
		err |= re_hprintf(pf, "%s%s %u", sep, reason_names[r], n[r]);
		sep = ", ";
	}

	return err;
}


/** Log when the set of reasons changes: it is what an operator acts on */
static void watch_handler(void *arg)
{
	struct unprot_ctx ctx;
	uint32_t total;
	bool changed = false;
	(void)arg;

	tmr_start(&watch.tmr, WATCH_MS, watch_handler, NULL);
	if (unprot_count(&ctx))
		return;

	for (size_t r = 0; r < UNPROT_NONE; r++)
		changed |= !ctx.n[r] != !watch.n[r];

	if (!changed)
		return;

	total = unprot_total(ctx.n);
	if (total)
		log_warn("repl", "%u dialogs served here are not protected "
			 "(no other node could continue them): %H", total,
			 reasons_print, ctx.n);
	else
		log_info("repl", "every dialog served here is protected "
			 "again");

	memcpy(watch.n, ctx.n, sizeof(watch.n));
}


void repl_metrics_start(void)
{
	memset(watch.n, 0, sizeof(watch.n));
	tmr_start(&watch.tmr, WATCH_MS, watch_handler, NULL);
}


void repl_metrics_stop(void)
{
	tmr_cancel(&watch.tmr);
}
