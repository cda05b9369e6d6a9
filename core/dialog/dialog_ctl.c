/**
 * @file dialog_ctl.c  The dialog table in the control API and the metrics
 *
 * GET /v1/dialogs lists dialog views (dialog_view.c), GET /v1/dialogs/DID
 * shows one and DELETE /v1/dialogs/DID ends it; "dialogs" in GET
 * /v1/status gives the counts by state and by sharing tag, and the
 * rehome_dialogs / rehome_dialog_replicas gauges print the same counts
 * for Prometheus. ctl sits below the dialog module and knows nothing of
 * dialogs, so this file plugs into it: routes, a status hook and a
 * metrics collector.
 *
 * Ending a call means a BYE to each leg, which the SIP layer above sends,
 * and only the node that serves the call may send it, which replication
 * decides: the engine lends DELETE a hangup handler that does both. Only
 * answered calls are ended (a BYE cannot end a ringing one), and not while
 * the call is on its way to another node.
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
#include "did.h"
#include "dialog.h"

enum {
	DIALOGS_DEFAULT = 100,
	DIALOGS_MAX     = 10000,
	LIMIT_SZ        = 16,     /* ?limit= value */
};

static struct {
	dialog_ctl_hangup_h *h;
	void *arg;
} hangup;


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


/**
 * {"dialogs": [view...], "count": N, "truncated": bool, "now": unix ms},
 * "now" to tell the dialogs' ages by the node's clock.
 */
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
	err |= json_int_add(od, "now", dialog_now());

 out:
	if (err)
		(void)ctl_reply_error(conn, 500, "dialogs: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/* ---- GET and DELETE /v1/dialogs/DID ------------------------------------ */


/** The dialog the path names; answers 404 (and returns NULL) if none */
static struct dialog *path_dialog(struct http_conn *conn,
				  const struct ctl_req *req)
{
	struct dialog *dlg = NULL;
	uint64_t did;

	if (!did_decode(&did, &req->rest))
		dlg = dialog_lookup(did);

	if (!dlg)
		(void)ctl_reply_error(conn, 404, "no such dialog: %r",
				      &req->rest);

	return dlg;
}


static void reply_view(struct http_conn *conn, const struct dialog *dlg)
{
	struct odict *od = NULL;
	int err;

	err = dialog_view_odict(&od, dlg);
	if (err)
		(void)ctl_reply_error(conn, 500, "dialog: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** GET /v1/dialogs/DID: the dialog's view */
static void dialog_get(struct http_conn *conn, const struct ctl_req *req,
		       void *arg)
{
	struct dialog *dlg = path_dialog(conn, req);
	(void)arg;

	if (dlg)
		reply_view(conn, dlg);
}


/**
 * DELETE /v1/dialogs/DID: BYE to both legs; the view of the ended dialog.
 * 409 when the call is not answered yet, is being moved, or is served by
 * another node (named); 503 when nobody may serve it now.
 */
static void dialog_delete(struct http_conn *conn, const struct ctl_req *req,
			  void *arg)
{
	struct dialog *dlg = path_dialog(conn, req);
	const char *node = NULL;
	int err;
	(void)arg;

	if (!dlg)
		return;

	if (!hangup.h) {
		(void)ctl_reply_error(conn, 501, "ending calls is not "
				      "available");
		return;
	}

	if (dlg->state != DIALOG_CONFIRMED) {
		(void)ctl_reply_error(conn, 409, "dialog %r is not answered "
				      "yet", &req->rest);
		return;
	}

	if (dialog_locked_as(dlg, DIALOG_LOCK_HANDOFF)) {
		(void)ctl_reply_error(conn, 409, "dialog %r is being moved "
				      "to another node", &req->rest);
		return;
	}

	mem_ref(dlg);
	err = hangup.h(dlg, &node, hangup.arg);
	if (err == EXDEV)
		(void)ctl_reply_error(conn, 409, "dialog %r is served by %s: "
				      "end it there", &req->rest, node);
	else if (err == EAGAIN)
		(void)ctl_reply_error(conn, 503, "dialog %r: no node may "
				      "serve it now", &req->rest);
	else if (err)
		(void)ctl_reply_error(conn, 500, "dialog %r: %m", &req->rest,
				      err);
	else
		reply_view(conn, dlg);
	mem_deref(dlg);
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


/**
 * Who ends a call for DELETE /v1/dialogs/DID. The handler returns 0 once
 * the BYEs are on their way, EXDEV when another node serves the call (its
 * id in *nodep), EAGAIN when no node may serve it now.
 */
void dialog_ctl_set_hangup_handler(dialog_ctl_hangup_h *h, void *arg)
{
	hangup.h = h;
	hangup.arg = arg;
}


/** Serve the table through ctl; registrations last until ctl_close */
int dialog_ctl_init(void)
{
	int err;

	err  = ctl_route_add("GET", "/v1/dialogs", dialogs_handler, NULL);
	err |= ctl_route_add("GET", "/v1/dialogs/", dialog_get, NULL);
	err |= ctl_route_add("DELETE", "/v1/dialogs/", dialog_delete, NULL);
	err |= ctl_status_add(status_add, NULL);
	err |= metrics_collector_add(metrics_collect, NULL);

	return err;
}
