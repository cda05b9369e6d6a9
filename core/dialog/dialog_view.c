/**
 * @file dialog_view.c  Dialogs as the outside sees them: JSON views, counts
 *
 * One rendering of a dialog serves every reader: GET /v1/dialogs and the
 * Lua policies' rehome.dialogs{} get the same odict, with the names of
 * the product contract (did, callid, shtag, state, owner, replica,
 * created, updated, version, legs), so the two cannot drift apart. The
 * view is for listings: no SDP (large, and not the reader's business),
 * no node-local bookkeeping beyond `replica`.
 *
 * Counts come from one walk of the table, grouped by sharing tag and
 * owner (struct dialog_tally). The status, the metrics and the policies'
 * stats each sum the groups they need from one walk per request; nothing
 * is kept up to date between requests, so a busy table costs nothing
 * while nobody asks. Groups are few (tags times nodes), so each dialog
 * finds its group by a linear search.
 */
#include <string.h>
#include <re.h>
#include "json.h"
#include "did.h"
#include "dialog.h"


static void tally_destructor(void *arg)
{
	struct dialog_tally *t = arg;

	list_unlink(&t->le);
	mem_deref(t->shtag);
	mem_deref(t->owner);
}


/* ---- one dialog ------------------------------------------------------ */


static int cseq_odict(struct odict **odp, const struct cseq_leg *cs)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 4);
	if (err)
		return err;

	err |= json_int_add(od, "rseq", cs->rseq);
	err |= json_int_add(od, "lseq", cs->lseq);
	err |= json_int_add(od, "off",  cs->off);
	err |= json_int_add(od, "ack",  cs->ack);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static int leg_odict(struct odict **odp, const struct dialog_leg *leg)
{
	struct odict *od, *cseq = NULL;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= json_str_null_add(od, "target", leg->target);
	err |= json_str_null_add(od, "lsnr_tag", leg->lsnr_tag);
	err |= json_str_null_add(od, "transport", sip_transp_name(leg->tp));
	err |= cseq_odict(&cseq, &leg->cseq);
	err |= json_child_add(od, "cseq", ODICT_OBJECT, cseq);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/**
 * The view of a dialog: {"did", "callid" (the caller leg's), "shtag",
 * "state" (early|confirmed|ended), "owner", "replica", "created",
 * "updated" (unix ms), "version", "legs": {"caller", "callee"}}; a
 * string the dialog lacks is null.
 */
int dialog_view_odict(struct odict **odp, const struct dialog *dlg)
{
	struct odict *od, *legs = NULL;
	char did[DID_STRSZ];
	int err;

	if (!odp || !dlg)
		return EINVAL;

	err = odict_alloc(&od, 16);
	if (err)
		return err;

	err |= did_encode(did, sizeof(did), dlg->did);
	err |= json_str_null_add(od, "did", did);
	err |= json_str_null_add(od, "callid", dlg->callid);
	err |= json_str_null_add(od, "shtag", dlg->shtag);
	err |= json_str_null_add(od, "state", dialog_state_name(dlg->state));
	err |= json_str_null_add(od, "owner", dlg->owner);
	err |= json_str_null_add(od, "media_relay", dialog_media(dlg));
	err |= json_bool_add(od, "replica", dlg->replica);
	err |= json_int_add(od, "created", dlg->created);
	err |= json_int_add(od, "updated", dlg->updated);
	err |= json_int_add(od, "version", dlg->version);

	err |= odict_alloc(&legs, 2);
	for (int i = LEG_CALLER; i <= LEG_CALLEE && !err; i++) {
		struct odict *leg = NULL;

		err = leg_odict(&leg, &dlg->leg[i]);
		err |= json_child_add(legs, dialog_leg_name(i), ODICT_OBJECT,
				      leg);
	}
	err |= json_child_add(od, "legs", ODICT_OBJECT, legs);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


struct list_ctx {
	struct odict *arr;
	const char *shtag;      /* NULL: every tag */
	uint32_t limit;         /* 0: no limit */
	uint32_t count;
	bool truncated;
	int err;
};


static bool list_handler(struct dialog *dlg, void *arg)
{
	struct list_ctx *lc = arg;
	struct odict *od = NULL;

	if (lc->shtag && str_cmp(dlg->shtag, lc->shtag))
		return false;

	if (lc->limit && lc->count == lc->limit) {
		lc->truncated = true;
		return true;
	}

	lc->err = dialog_view_odict(&od, dlg);
	lc->err |= json_array_add(lc->arr, lc->count++, ODICT_OBJECT, od);

	return lc->err != 0;
}


/**
 * The views of the dialogs of `shtag` (NULL: all), in table order, as an
 * array of at most `limit` (0: no limit); *truncatedp tells whether more
 * dialogs matched.
 */
int dialog_view_list(struct odict **arrp, bool *truncatedp,
		     const char *shtag, uint32_t limit)
{
	struct list_ctx lc = {NULL, shtag, limit, 0, false, 0};
	int err;

	if (!arrp)
		return EINVAL;

	err = odict_alloc(&lc.arr, 64);
	if (err)
		return err;

	(void)dialog_apply(list_handler, &lc);
	if (lc.err) {
		mem_deref(lc.arr);
		return lc.err;
	}

	*arrp = lc.arr;
	if (truncatedp)
		*truncatedp = lc.truncated;

	return 0;
}


/* ---- counts ---------------------------------------------------------- */


struct tally_key {
	const char *shtag;
	const char *owner;
};


static bool tally_cmp(struct le *le, void *arg)
{
	const struct dialog_tally *t = le->data;
	const struct tally_key *k = arg;

	return !str_cmp(t->shtag, k->shtag) && !str_cmp(t->owner, k->owner);
}


static bool tally_sort(struct le *le1, struct le *le2, void *arg)
{
	const struct dialog_tally *a = le1->data, *b = le2->data;
	int d = str_cmp(a->shtag, b->shtag);
	(void)arg;

	return d < 0 || (d == 0 && str_cmp(a->owner, b->owner) <= 0);
}


struct tally_ctx {
	struct list *tallies;
	int err;
};


static bool tally_handler(struct dialog *dlg, void *arg)
{
	struct tally_ctx *ctx = arg;
	struct tally_key k = {dlg->shtag ? dlg->shtag : "",
			      dlg->owner ? dlg->owner : ""};
	struct dialog_tally *t;

	t = list_ledata(list_apply(ctx->tallies, true, tally_cmp, &k));
	if (!t) {
		t = mem_zalloc(sizeof(*t), tally_destructor);
		if (!t || str_dup(&t->shtag, k.shtag) ||
		    str_dup(&t->owner, k.owner)) {
			mem_deref(t);
			ctx->err = ENOMEM;
			return true;
		}
		list_append(ctx->tallies, &t->le, t);
	}

	if (dlg->replica)
		t->n.replicas++;
	else if ((unsigned)dlg->state < DIALOG_STATES)
		t->n.state[dlg->state]++;

	return false;
}


/**
 * Count the dialogs in the table by sharing tag and owner, in one walk.
 * Appends one struct dialog_tally per group, sorted by tag then owner;
 * the caller owns them (list_flush).
 */
int dialog_tally(struct list *tallies)
{
	struct tally_ctx ctx = {tallies, 0};

	if (!tallies)
		return EINVAL;

	(void)dialog_apply(tally_handler, &ctx);
	if (ctx.err) {
		list_flush(tallies);
		return ctx.err;
	}

	list_sort(tallies, tally_sort, NULL);
	return 0;
}


static void counts_add(struct dialog_counts *sum,
		       const struct dialog_counts *n)
{
	for (int st = 0; st < DIALOG_STATES; st++)
		sum->state[st] += n->state[st];
	sum->replicas += n->replicas;
}


/** The counts of the groups of `shtag` and `owner` (NULL: any) */
void dialog_tally_sum(struct dialog_counts *sum, const struct list *tallies,
		      const char *shtag, const char *owner)
{
	struct le *le;

	memset(sum, 0, sizeof(*sum));

	LIST_FOREACH(tallies, le) {
		const struct dialog_tally *t = le->data;

		if ((!shtag || !str_cmp(t->shtag, shtag)) &&
		    (!owner || !str_cmp(t->owner, owner)))
			counts_add(sum, &t->n);
	}
}


/**
 * Call `h` once per sharing tag ("" for none), in tag order, with the
 * counts of every owner; stops when `h` returns true.
 */
void dialog_tally_by_shtag(const struct list *tallies, dialog_tally_h *h,
			   void *arg)
{
	struct le *le = list_head(tallies);

	while (le) {
		const char *shtag = ((struct dialog_tally *)le->data)->shtag;
		struct dialog_counts sum;

		memset(&sum, 0, sizeof(sum));
		for (; le; le = le->next) {
			const struct dialog_tally *t = le->data;

			if (str_cmp(t->shtag, shtag))
				break;
			counts_add(&sum, &t->n);
		}

		if (h(shtag, &sum, arg))
			return;
	}
}


/** Dialogs served here, in every state */
uint32_t dialog_counts_served(const struct dialog_counts *n)
{
	uint32_t served = 0;

	for (int st = 0; st < DIALOG_STATES; st++)
		served += n->state[st];

	return served;
}


/** Dialogs served here and still up or being set up (not ending) */
uint32_t dialog_counts_live(const struct dialog_counts *n)
{
	return n->state[DIALOG_EARLY] + n->state[DIALOG_CONFIRMED];
}


/** Every dialog counted: served here and held for others */
uint32_t dialog_counts_total(const struct dialog_counts *n)
{
	return dialog_counts_served(n) + n->replicas;
}
