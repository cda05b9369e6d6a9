/**
 * @file dialog_ctl.c  The dialog table in the control API and the metrics
 *
 * GET /v1/dialogs lists dialog views (dialog_view.c), "dialogs" in GET
 * /v1/status gives the counts by state and by sharing tag, and the
 * rehome_dialogs / rehome_dialog_replicas gauges print the same counts
 * for Prometheus. ctl sits below the dialog module and knows nothing of
 * dialogs, so this file plugs into it: a route, a status hook and a
 * metrics collector.
 *
 * Trade-off: every request walks the table in the SIP loop, so a scrape
 * of a huge table delays SIP for the length of the walk; the listing is
 * therefore limited (default 100, at most 10000 per call).
 */
#include <string.h>
#include <re.h>
#include "conf.h"
#include "json.h"
#include "ctl.h"
#include "metrics.h"
#include "dialog.h"

enum {
	DIALOGS_DEFAULT = 100,
	DIALOGS_MAX     = 10000,
	LIMIT_SZ        = 16,     /* ?limit= value */
};


/* ---- GET /v1/dialogs ------------------------------------------------- */


static int limit_get(uint32_t *limit, const struct http_msg *msg)
{
	struct pl digits;
	char buf[LIMIT_SZ];

	*limit = DIALOGS_DEFAULT;

	if (ctl_query_get(buf, sizeof(buf), msg, "limit"))
		return 0;

	if (re_regex(buf, strlen(buf), "[0-9]+", &digits) ||
	    digits.p != buf || digits.l != strlen(buf) || digits.l > 6)
		return EINVAL;

	*limit = pl_u32(&digits);
	return *limit >= 1 && *limit <= DIALOGS_MAX ? 0 : EINVAL;
}


/** {"dialogs": [view...], "count": N, "truncated": bool} */
static void dialogs_handler(struct http_conn *conn, const struct ctl_req *req,
			    void *arg)
{
	struct odict *od = NULL, *arr = NULL;
	bool truncated = false;
	const char *shtag = NULL;
	char buf[CONF_SHTAG_SZ];
	uint32_t limit;
	size_t count;
	int err;
	(void)arg;

	if (limit_get(&limit, req->msg)) {
		(void)ctl_reply_error(conn, 400, "limit must be 1..%u",
				      DIALOGS_MAX);
		return;
	}

	if (!ctl_query_get(buf, sizeof(buf), req->msg, "tag"))
		shtag = buf;

	err = odict_alloc(&od, 4);
	if (err)
		goto out;

	err = dialog_view_list(&arr, &truncated, shtag, limit);
	if (err)
		goto out;

	count = odict_count(arr, false);
	err |= json_child_add(od, "dialogs", ODICT_ARRAY, arr);
	err |= json_int_add(od, "count", count);
	err |= json_bool_add(od, "truncated", truncated);

 out:
	if (err)
		(void)ctl_reply_error(conn, 500, "dialogs: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/* ---- "dialogs" in GET /v1/status ------------------------------------- */


/** "served", one key per state, "replicas" */
static int counts_add(struct odict *od, const struct dialog_counts *n)
{
	int err = 0;

	err |= json_int_add(od, "served", dialog_counts_served(n));
	for (int st = 0; st < DIALOG_STATES; st++)
		err |= json_int_add(od, dialog_state_name(st), n->state[st]);
	err |= json_int_add(od, "replicas", n->replicas);

	return err;
}


struct by_shtag_ctx {
	struct odict *od;
	int err;
};


static bool shtag_status_handler(const char *shtag,
				 const struct dialog_counts *n, void *arg)
{
	struct by_shtag_ctx *ctx = arg;
	struct odict *od = NULL;

	ctx->err = odict_alloc(&od, 8);
	if (!ctx->err)
		ctx->err = counts_add(od, n);
	ctx->err |= json_child_add(ctx->od, shtag, ODICT_OBJECT, od);

	return ctx->err != 0;
}


/** "dialogs": totals by state and the same per sharing tag */
static int status_add(struct odict *status, void *arg)
{
	struct by_shtag_ctx ctx = {NULL, 0};
	struct list tallies = LIST_INIT;
	struct dialog_counts all;
	struct odict *od = NULL;
	int err;
	(void)arg;

	err = dialog_tally(&tallies);
	if (err)
		return err;

	err = odict_alloc(&od, 8) | odict_alloc(&ctx.od, 16);
	if (err)
		goto out;

	dialog_tally_by_shtag(&tallies, shtag_status_handler, &ctx);
	dialog_tally_sum(&all, &tallies, NULL, NULL);

	err |= ctx.err;
	err |= json_int_add(od, "total", dialog_count());
	err |= counts_add(od, &all);
	err |= json_child_add(od, "by_shtag", ODICT_OBJECT, mem_ref(ctx.od));
	err |= json_child_add(status, "dialogs", ODICT_OBJECT, mem_ref(od));

 out:
	mem_deref(ctx.od);
	mem_deref(od);
	list_flush(&tallies);
	return err;
}


/* ---- metrics ---------------------------------------------------------- */


struct print_ctx {
	struct re_printf *pf;
	int err;
};


static bool states_print_handler(const char *shtag,
				 const struct dialog_counts *n, void *arg)
{
	struct print_ctx *ctx = arg;

	for (int st = 0; st < DIALOG_STATES && !ctx->err; st++) {
		const char *lv[] = {"shtag", shtag,
				    "state", dialog_state_name(st), NULL};

		ctx->err = re_hprintf(ctx->pf, "rehome_dialogs%H %u\n",
				      metrics_labels_print, lv, n->state[st]);
	}

	return ctx->err != 0;
}


static bool replicas_print_handler(const char *shtag,
				   const struct dialog_counts *n, void *arg)
{
	struct print_ctx *ctx = arg;
	const char *lv[] = {"shtag", shtag, NULL};

	ctx->err = re_hprintf(ctx->pf, "rehome_dialog_replicas%H %u\n",
			      metrics_labels_print, lv, n->replicas);

	return ctx->err != 0;
}


/**
 * rehome_dialogs{shtag,state} and rehome_dialog_replicas{shtag}; the
 * dialogs without a tag are the samples without the shtag label.
 */
static int metrics_collect(struct re_printf *pf, void *arg)
{
	struct list tallies = LIST_INIT;
	struct print_ctx ctx = {pf, 0};
	(void)arg;

	ctx.err = dialog_tally(&tallies);
	if (ctx.err)
		return ctx.err;

	ctx.err = metrics_family_print(pf, "rehome_dialogs", "gauge",
				       "Dialogs served by this node, by tag "
				       "and state");
	if (!ctx.err)
		dialog_tally_by_shtag(&tallies, states_print_handler, &ctx);

	if (!ctx.err)
		ctx.err = metrics_family_print(pf, "rehome_dialog_replicas",
					       "gauge", "Dialogs held as "
					       "replicas for other nodes");
	if (!ctx.err)
		dialog_tally_by_shtag(&tallies, replicas_print_handler, &ctx);

	list_flush(&tallies);
	return ctx.err;
}


/** Serve the table through ctl; registrations last until ctl_close */
int dialog_ctl_init(void)
{
	int err;

	err  = ctl_route_add("GET", "/v1/dialogs", dialogs_handler, NULL);
	err |= ctl_status_add(status_add, NULL);
	err |= metrics_collector_add(metrics_collect, NULL);

	return err;
}
