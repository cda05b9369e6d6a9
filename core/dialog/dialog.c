/**
 * @file dialog.c  Dialogs: the complete state of one call, as data
 *
 * A dialog is plain data plus a little node-local runtime state, so that
 * it can be serialized (dialog_codec.c), replicated and continued on
 * another node. The table is a libre hash keyed by the 64-bit did; the
 * did is random, so its low bits are already a good hash. The table holds
 * one reference to each dialog; transactions in flight hold their own.
 *
 * Names that thousands of dialogs share (sharing tag, owner node,
 * listener tags) are interned "atoms": one reference-counted string per
 * distinct value instead of one allocation per dialog, which is most of
 * what keeps a dialog small. There are only a handful of distinct values,
 * so the atom list is walked, and atoms live as long as the table.
 *
 * The identifiers (Call-ID, From, To, To tag and the two targets: enum
 * dialog_id) are packed in one allocation, their pointers into it: one
 * allocation's header and rounding instead of six, about 140 B of every
 * dialog (bench/RESULTS.md, "Memory per dialog"). Setting one copies
 * them all into a new block; only the To tag (once) and a target refresh
 * do that after the call is set up, and a re-pack is smaller than the
 * SIP message that asked for it.
 *
 * Every new dialog draws its keys here (the Contact key of each leg, the
 * key of the callee leg's Call-ID): random values that one endpoint never
 * sees in what the other is sent, so that neither can name the other's
 * leg (see did.c); they are replicated like any field.
 *
 * What changes a dialog's state, owner, replica flag, kept 2xx, lock or
 * version, and who is told, is dialog_state.c's.
 */
#include <stddef.h>
#include <string.h>
#include <sys/time.h>
#include <re.h>
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "dialog_ext.h"

static struct hash *dialogs;
static struct list atoms;      /* interned names: tags, node ids */
static uint32_t ndialogs;

static const char *state_names[] = {"early", "confirmed", "ended"};

/* where each identifier's pointer is, by enum dialog_id */
static const size_t id_off[DIALOG_IDS] = {
	offsetof(struct dialog, callid),
	offsetof(struct dialog, from),
	offsetof(struct dialog, to),
	offsetof(struct dialog, to_tag),
	offsetof(struct dialog, leg[LEG_CALLER].target),
	offsetof(struct dialog, leg[LEG_CALLEE].target),
};


static char **id_slot(struct dialog *dlg, enum dialog_id id)
{
	return (char **)(void *)((uint8_t *)dlg + id_off[id]);
}


/** The identifiers' block: the first one set is at its start */
static char *ids_block(struct dialog *dlg)
{
	for (int i = 0; i < DIALOG_IDS; i++) {
		char *s = *id_slot(dlg, i);

		if (s)
			return s;
	}

	return NULL;
}


static void leg_reset(struct dialog_leg *leg)
{
	leg->sdp_in   = mem_deref(leg->sdp_in);
	leg->sdp_out  = mem_deref(leg->sdp_out);
	leg->lsnr_tag = mem_deref(leg->lsnr_tag);
}


static void early_destructor(void *arg)
{
	struct dialog_early *early = arg;

	mem_deref(early->vias);
	mem_deref(early->src);
	mem_deref(early->via);
	mem_deref(early->ruri);
	mem_deref(early->dst);
}


static void destructor(void *arg)
{
	struct dialog *dlg = arg;

	hash_unlink(&dlg->he);
	mem_deref(ids_block(dlg));
	mem_deref(dlg->shtag);
	mem_deref(dlg->owner);
	mem_deref(dlg->ext);
	leg_reset(&dlg->leg[LEG_CALLER]);
	leg_reset(&dlg->leg[LEG_CALLEE]);
}


uint64_t dialog_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


int dialog_alloc(struct dialog **dlgp, uint64_t did)
{
	struct dialog *dlg;

	if (!dlgp || !did)
		return EINVAL;

	dlg = mem_zalloc(sizeof(*dlg), destructor);
	if (!dlg)
		return ENOMEM;

	dlg->did = did;
	dlg->callid_key = did_new();
	dlg->leg[LEG_CALLER].contact_key = did_new();
	dlg->leg[LEG_CALLEE].contact_key = did_new();
	dlg->created = dlg->updated = dialog_now();
	dlg->leg[LEG_CALLER].tp = SIP_TRANSP_UDP;
	dlg->leg[LEG_CALLEE].tp = SIP_TRANSP_UDP;

	*dlgp = dlg;
	return 0;
}


/** An early dialog's dialog_early, empty; replaces any it had */
int dialog_early_alloc(struct dialog *dlg)
{
	struct dialog_ext *x;

	if (!dlg)
		return EINVAL;

	x = dialog_ext_get(dlg);
	if (!x)
		return ENOMEM;

	mem_deref(x->early);
	x->early = mem_zalloc(sizeof(*x->early), early_destructor);
	if (x->early)
		return 0;

	dialog_ext_trim(dlg);
	return ENOMEM;
}


int dialog_table_init(uint32_t bucket_bits)
{
	if (dialogs)
		return EALREADY;

	ndialogs = 0;
	return hash_alloc(&dialogs, 1u << bucket_bits);
}


static bool flush_handler(struct le *le, void *arg)
{
	struct dialog *dlg = le->data;
	(void)arg;

	hash_unlink(&dlg->he);
	mem_deref(dlg);
	return false;
}


void dialog_table_close(void)
{
	if (!dialogs)
		return;

	hash_apply(dialogs, flush_handler, NULL);
	dialogs = mem_deref(dialogs);
	list_flush(&atoms);
	ndialogs = 0;
	dialog_set_observer(NULL);
}


/**
 * Add a dialog to the table, which takes a reference.
 *
 * @return 0, or EEXIST if another dialog holds the same did (draw again)
 */
int dialog_insert(struct dialog *dlg)
{
	if (!dlg || !dialogs)
		return EINVAL;

	if (dlg->he.list)
		return 0;

	if (dialog_lookup(dlg->did))
		return EEXIST;

	hash_append(dialogs, (uint32_t)dlg->did, &dlg->he, mem_ref(dlg));
	++ndialogs;
	return 0;
}


/** Drop a dialog from the table (and the table's reference). */
void dialog_remove(struct dialog *dlg)
{
	if (!dlg || !dlg->he.list)
		return;

	hash_unlink(&dlg->he);
	--ndialogs;
	mem_deref(dlg);
}


static bool did_cmp(struct le *le, void *arg)
{
	const struct dialog *dlg = le->data;

	return dlg->did == *(uint64_t *)arg;
}


struct dialog *dialog_lookup(uint64_t did)
{
	if (!dialogs)
		return NULL;

	return list_ledata(hash_lookup(dialogs, (uint32_t)did, did_cmp, &did));
}


uint32_t dialog_count(void)
{
	return ndialogs;
}


struct apply_ctx {
	dialog_apply_h *h;
	void *arg;
};


static bool apply_handler(struct le *le, void *arg)
{
	struct apply_ctx *ctx = arg;

	return ctx->h(le->data, ctx->arg);
}


/** Call h for each dialog until it returns true; returns that dialog. */
struct dialog *dialog_apply(dialog_apply_h *h, void *arg)
{
	struct apply_ctx ctx = {h, arg};

	if (!dialogs || !h)
		return NULL;

	return list_ledata(hash_apply(dialogs, apply_handler, &ctx));
}


struct atom {
	struct le le;
	char *name;
};


static void atom_destructor(void *arg)
{
	struct atom *a = arg;

	list_unlink(&a->le);
	mem_deref(a->name);
}


/** Set *dst to the shared copy of a name (NULL clears it). */
static int dialog_atom(char **dst, const struct pl *pl)
{
	struct atom *a = NULL;
	struct le *le;
	int err;

	if (!dst)
		return EINVAL;

	if (!pl || !pl->p) {
		*dst = mem_deref(*dst);
		return 0;
	}

	LIST_FOREACH(&atoms, le) {
		struct atom *x = le->data;

		if (!pl_strcmp(pl, x->name)) {
			a = x;
			break;
		}
	}

	if (!a) {
		a = mem_zalloc(sizeof(*a), atom_destructor);
		if (!a)
			return ENOMEM;

		err = pl_strdup(&a->name, pl);
		if (err) {
			mem_deref(a);
			return err;
		}

		list_append(&atoms, &a->le, a);
	}

	mem_deref(*dst);
	*dst = mem_ref(a->name);
	return 0;
}


int dialog_atom_str(char **dst, const char *name)
{
	struct pl pl;

	pl_set_str(&pl, name);
	return dialog_atom(dst, name ? &pl : NULL);
}


int dialog_set_str(char **dst, const struct pl *pl)
{
	char *s = NULL;
	int err;

	if (!dst)
		return EINVAL;

	if (pl && pl_isset(pl)) {
		err = pl_strdup(&s, pl);
		if (err)
			return err;
	}

	mem_deref(*dst);
	*dst = s;
	return 0;
}


/**
 * Set some of a dialog's identifiers, copying them all into a new block.
 *
 * @param dlg  The dialog
 * @param v    By enum dialog_id: the new value, an unset one for none, or
 *             NULL to keep the current one
 *
 * @return 0 if success, otherwise errorcode
 */
int dialog_set_ids(struct dialog *dlg, const struct pl *const v[DIALOG_IDS])
{
	struct pl val[DIALOG_IDS];
	size_t total = 0;
	char *ids = NULL, *old, *p;

	if (!dlg || !v)
		return EINVAL;

	old = ids_block(dlg);

	for (int i = 0; i < DIALOG_IDS; i++) {
		val[i] = pl_null;
		if (!v[i])
			pl_set_str(&val[i], *id_slot(dlg, i));
		else if (pl_isset(v[i]))
			val[i] = *v[i];

		if (val[i].p)
			total += val[i].l + 1;
	}

	if (total) {
		ids = mem_alloc(total, NULL);
		if (!ids)
			return ENOMEM;
	}

	/* the values may be in the old block: it goes last */
	p = ids;
	for (int i = 0; i < DIALOG_IDS; i++) {
		char **slot = id_slot(dlg, i);

		*slot = NULL;
		if (!val[i].p)
			continue;

		memcpy(p, val[i].p, val[i].l);
		p[val[i].l] = '\0';
		*slot = p;
		p += val[i].l + 1;
	}

	mem_deref(old);
	return 0;
}


/**
 * Copy into the dialog's block the identifiers its pointers show when
 * those strings are not its own (the decoder's, in its JSON object)
 */
int dialog_ids_adopt(struct dialog *dlg)
{
	struct pl val[DIALOG_IDS];
	const struct pl *v[DIALOG_IDS];

	if (!dlg)
		return EINVAL;

	for (int i = 0; i < DIALOG_IDS; i++) {
		char **slot = id_slot(dlg, i);

		val[i] = pl_null;
		pl_set_str(&val[i], *slot);
		*slot = NULL;          /* not the dialog's to free */
		v[i] = &val[i];
	}

	return dialog_set_ids(dlg, v);
}


/** Set one identifier (pl NULL or unset: none); see dialog_set_ids() */
int dialog_set_id(struct dialog *dlg, enum dialog_id id,
		  const struct pl *pl)
{
	const struct pl *v[DIALOG_IDS] = {NULL};

	if ((unsigned)id >= DIALOG_IDS)
		return EINVAL;

	v[id] = pl ? pl : &pl_null;
	return dialog_set_ids(dlg, v);
}


/**
 * The callee leg's Call-ID, "rh-<did>-<callid_key>": the did makes it
 * unique, the key makes it unguessable for the caller (who knows the
 * did). A dialog from before keys (callid_key 0) keeps its "rh-<did>".
 */
int dialog_callee_callid(char *buf, size_t sz, const struct dialog *dlg)
{
	int n;

	if (!buf || !dlg)
		return EINVAL;

	if (dlg->callid_key)
		n = re_snprintf(buf, sz, "rh-%016llx-%016llx",
				(unsigned long long)dlg->did,
				(unsigned long long)dlg->callid_key);
	else
		n = re_snprintf(buf, sz, "rh-%016llx",
				(unsigned long long)dlg->did);

	return n > 0 ? 0 : ENOMEM;
}


int dialog_from_tag(const struct dialog *dlg, struct pl *tag)
{
	struct pl from;

	if (!dlg || !dlg->from || !tag)
		return EINVAL;

	pl_set_str(&from, dlg->from);
	return msg_param_decode(&from, "tag", tag);
}


const char *dialog_state_name(enum dialog_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "?";
}


int dialog_state_decode(enum dialog_state *stp, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++) {
		if (0 == str_cmp(name, state_names[i])) {
			*stp = (enum dialog_state)i;
			return 0;
		}
	}

	return EINVAL;
}


const char *dialog_leg_name(enum dialog_leg_id leg)
{
	return leg == LEG_CALLER ? "caller" : "callee";
}
