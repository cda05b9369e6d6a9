/**
 * @file dialog_codec.c  Dialog serialization: one versioned JSON object
 *
 * A dialog travels between nodes (replication messages, the Redis
 * snapshot) as a single JSON object, written member by member straight to
 * the re_printf (jsonw.c), in the bytes libre's json_encode_odict() would
 * print (SDP bodies hold CR LF, display names hold quotes and UTF-8: the
 * escaping is libre's rules). It once built a libre odict and printed
 * that: a copy and two allocations per member, a fifth of a node's CPU
 * when it re-homed thousands of calls at once (bench/RESULTS.md, "CPU per
 * re-homed call"). Reading still goes through json_decode_odict().
 *
 * The fields are listed once, in tables of (key, offset, type), and the
 * same tables drive encoding, decoding and comparison, so a new field
 * cannot be written but forgotten by the reader. A field marked EXT() is
 * in the dialog's extension (dialog_ext.h): it reads as its default
 * without one, and the decoder allocates the extension only for an
 * object that has such a field. The did, the state and the transports
 * need a conversion and are handled by hand. Only the
 * replicated part of struct dialog is written; the node-local tail
 * (replica, acked, transactions) starts empty on the node that decodes.
 *
 * Layout of versions 1 to 4 (version 5 has the same with short keys,
 * below), with NULL strings, zero keys, zero numbers (but times) and the
 * transport UDP left out (each decodes to its default, in every version):
 *   {"v":2|3|4,"did":"<16 hex>","state":"confirmed","callid":..,
 *    "callid_key":"<16 hex>","from":..,"to":..,"to_tag":..,"shtag":..,
 *    "owner":..,"media":..,"created":ms,"updated":ms,"version":n,"se":s,
 *    "se_refresher":0|1,
 *    "caller":{"target":..,"route":..,"sdp_in":..,"sdp_out":..,
 *              "sdp_relayed":true,"lsnr_tag":..,
 *              "contact_key":"<16 hex>","sdp_off":n,"caps":n,"tp":"UDP",
 *              "cseq":{"rseq":n,"lseq":n,"off":n,"ack":n},
 *              "ok":{"cseq":n,"ack":n,"until":ms,"tp":"UDP",
 *                    "dst":"IP:PORT","msg":"SIP/2.0 200 OK..."}},
 *    "callee":{..}}
 * A ringing call also has "early":{"vias":..,"src":..,"via":..,"ruri":..,
 * "dst":..}, what ending it from another node needs (dialog.h); readers
 * before it ignore it.
 * "ok" is the 2xx that leg has not acknowledged in time, if any: whoever
 * serves the dialog next resends it (dialog_state.c). A 2xx whose ACK is
 * not overdue yet is not written.
 * The did and the keys are strings because odict integers are signed
 * 64-bit and they use all 64 bits. "v" changes only when an old reader
 * would misread the object; added fields keep "v" (readers ignore unknown
 * keys), and a missing optional field decodes to what dialog_alloc()
 * gives, but for the keys: a missing key is 0.
 *
 * Versions, all still read (docs/operations.md, "Rolling upgrades and
 * the replication format", says what each meant for mixed clusters):
 *   1  the first;
 *   2  the keys (did.c): a version 1 object decodes with keys 0, and its
 *      dialog keeps the identifiers its endpoints were given
 *      ("rh-<did>-<a|b>", "rh-<did>") until it ends;
 *   3  "sdp_off", the offset of the o= versions sent to a leg (sdpver.c):
 *      a reader that ignored it would send versions lower than seen;
 *   4  an SDP relayed unchanged (a leg's sdp_out is the other leg's
 *      sdp_in) written once, "sdp_relayed":true instead of "sdp_out"; the
 *      decoder keeps one string with two references either way (SDP
 *      bodies are most of a dialog's memory);
 *   5  version 4 with short keys ("c" for "callid", "a" and "b" for the
 *      legs...: the tables below and names[]) and the state as its number
 *      (enum dialog_state): the keys took a third of a typical message
 *      and Redis snapshot (bench/RESULTS.md, "Memory per dialog").
 * A node writes its own version only, so nodes of the releases before
 * drop every dialog it writes. Short keys are harder to read by eye: the
 * API shows dialogs with names (dialog_view.c), not this.
 */
#include <stddef.h>
#include <string.h>
#include <re.h>
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "dialog_ext.h"
#include "jsonw.h"

enum {
	ODICT_BUCKETS = 8,
	JSON_MAXDEPTH = 4,     /* dialog -> leg -> cseq, plus one spare */
};

enum field_type {
	FIELD_STR,
	FIELD_ID,              /* an identifier (dialog_set_ids()) */
	FIELD_ATOM,            /* a string interned with dialog_atom_str() */
	FIELD_U32,
	FIELD_U64,
	FIELD_MS,              /* unix ms, always written (not 0 by default) */
	FIELD_X64,             /* 16 hex digits; 0 is left out */
};

/** The keys of a version: names up to 4, short ones from 5 on */
enum keyset {
	KEYS_LONG = 0,
	KEYS_SHORT,
	KEYSETS,
};

struct field {
	const char *key[KEYSETS];
	size_t off;            /* EXT(): in the extension (dialog_ext.h) */
	enum field_type type;
};

/* a field of the extension: its offset there, marked (see field_at()) */
enum { FIELD_EXT = 1u << 30 };
#define EXT(off) ((off) | FIELD_EXT)

static const struct field dialog_fields[] = {
	{{"callid", "c"},  offsetof(struct dialog, callid),  FIELD_ID},
	{{"callid_key", "ck"}, offsetof(struct dialog, callid_key), FIELD_X64},
	{{"from", "f"},    offsetof(struct dialog, from),    FIELD_ID},
	{{"to", "t"},      offsetof(struct dialog, to),      FIELD_ID},
	{{"to_tag", "tt"},  offsetof(struct dialog, to_tag),  FIELD_ID},
	{{"shtag", "sh"},   offsetof(struct dialog, shtag),   FIELD_ATOM},
	{{"owner", "o"},   offsetof(struct dialog, owner),   FIELD_ATOM},
	{{"media", "m"},   EXT(offsetof(struct dialog_ext, media)), FIELD_ATOM},
	{{"created", "cr"}, offsetof(struct dialog, created), FIELD_MS},
	{{"updated", "up"}, offsetof(struct dialog, updated), FIELD_MS},
	{{"version", "n"}, offsetof(struct dialog, version), FIELD_U64},
	{{"se", "se"},      EXT(offsetof(struct dialog_ext, se)), FIELD_U32},
	{{"se_refresher", "sr"}, EXT(offsetof(struct dialog_ext, se_refresher)),
	 FIELD_U32},
};

enum { LEG_SDP_OUT = 3 };   /* leg_fields[] index: "sdp_relayed" replaces it */

static const struct field leg_fields[] = {
	{{"target", "t"},   offsetof(struct dialog_leg, target),   FIELD_ID},
	{{"route", "r"},    EXT(offsetof(struct dialog_leg_ext, route)),
	 FIELD_STR},
	{{"sdp_in", "i"},   offsetof(struct dialog_leg, sdp_in),   FIELD_STR},
	{{"sdp_out", "o"},  offsetof(struct dialog_leg, sdp_out),  FIELD_STR},
	{{"lsnr_tag", "l"}, offsetof(struct dialog_leg, lsnr_tag), FIELD_ATOM},
	{{"contact_key", "k"}, offsetof(struct dialog_leg, contact_key), FIELD_X64},
	{{"sdp_off", "so"},  EXT(offsetof(struct dialog_leg_ext, sdp_off)),
	 FIELD_U64},
	{{"caps", "cp"},     offsetof(struct dialog_leg, caps),     FIELD_U32},
};

static const struct field cseq_fields[] = {
	{{"rseq", "r"}, offsetof(struct cseq_leg, rseq), FIELD_U32},
	{{"lseq", "l"}, offsetof(struct cseq_leg, lseq), FIELD_U32},
	{{"off", "o"},  offsetof(struct cseq_leg, off),  FIELD_U32},
	{{"ack", "a"},  offsetof(struct cseq_leg, ack),  FIELD_U32},
};

/* a ringing call's, for ending it from another node */
static const struct field early_fields[] = {
	{{"vias", "vs"}, offsetof(struct dialog_early, vias), FIELD_STR},
	{{"src", "s"},  offsetof(struct dialog_early, src),  FIELD_STR},
	{{"via", "v"},  offsetof(struct dialog_early, via),  FIELD_STR},
	{{"ruri", "u"}, offsetof(struct dialog_early, ruri), FIELD_STR},
	{{"dst", "d"},  offsetof(struct dialog_early, dst),  FIELD_STR},
};

/** The keys written by hand, in each key set */
struct names {
	const char *did, *state, *early, *leg[2];
	const char *sdp_relayed, *tp, *cseq, *ok, *dst, *msg;
};

static const struct names names[KEYSETS] = {
	{"did", "state", "early", {"caller", "callee"},
	 "sdp_relayed", "tp", "cseq", "ok", "dst", "msg"},
	{"d", "s", "e", {"a", "b"},
	 "rl", "tp", "q", "ok", "d", "m"},
};

static const struct names *const wr = &names[KEYS_SHORT];  /* writing */

/* the 2xx awaiting an ACK; its buffer, address and transport by hand */
static const struct field ok_fields[] = {
	{{"cseq", "c"},  offsetof(struct dialog_ok, cseq),  FIELD_U32},
	{{"ack", "a"},   offsetof(struct dialog_ok, ack),   FIELD_U32},
	{{"until", "u"}, offsetof(struct dialog_ok, until), FIELD_MS},
};


static bool str_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;

	return 0 == strcmp(a, b);
}


static bool is_str(enum field_type type)
{
	return type == FIELD_STR || type == FIELD_ID || type == FIELD_ATOM;
}


/** The type of the JSON value a field is written as */
static enum odict_type json_type(enum field_type type)
{
	return is_str(type) || type == FIELD_X64 ? ODICT_STRING : ODICT_INT;
}


static uint64_t field_uint(const void *p, enum field_type type)
{
	return type == FIELD_U32 ? *(const uint32_t *)p : *(const uint64_t *)p;
}


static bool in_ext(const struct field *f)
{
	return (f->off & FIELD_EXT) != 0;
}


/** Where a field is: in base, or in ext; NULL: in an absent extension */
static void *field_at(const void *base, const void *ext, const struct field *f)
{
	const void *p = in_ext(f) ? ext : base;

	return p ? (uint8_t *)(uintptr_t)p + (f->off & ~(size_t)FIELD_EXT)
		 : NULL;
}


/** A string field's value, NULL in an absent extension */
static const char *field_str(const void *p)
{
	return p ? *(char * const *)p : NULL;
}


static int x64_encode(struct jsonw *w, const char *key, uint64_t v)
{
	char hex[DID_STRSZ];
	int err;

	if (!v)
		return 0;

	err = did_encode(hex, sizeof(hex), v);
	if (err)
		return err;

	return jsonw_str(w, key, hex);
}


/** Written with the short keys, always (DIALOG_CODEC_VERSION) */
static int field_encode(struct jsonw *w, const void *base, const void *ext,
			const struct field *f)
{
	const void *p = field_at(base, ext, f);
	const char *key = f->key[KEYS_SHORT];

	if (!p)
		return 0;    /* no extension: its default, left out */

	if (f->type == FIELD_X64)
		return x64_encode(w, key, *(const uint64_t *)p);

	if (is_str(f->type))
		return jsonw_str(w, key, *(char * const *)p);

	/* 0 decodes to 0 anyway: saves bytes (a time is always written) */
	if (f->type != FIELD_MS && !field_uint(p, f->type))
		return 0;

	return jsonw_uint(w, key, field_uint(p, f->type));
}


static int fields_encode(struct jsonw *w, const void *base, const void *ext,
			 const struct field *fv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = field_encode(w, base, ext, &fv[i]);
		if (err)
			return err;
	}

	return 0;
}


/** An entry of the expected type, NULL if absent or null; EBADMSG if not */
static int entry_lookup(const struct odict_entry **ep, const struct odict *o,
			const char *key, enum odict_type type)
{
	const struct odict_entry *e = odict_lookup(o, key);

	if (e && e->type == ODICT_NULL)
		e = NULL;

	if (e && e->type != type)
		return EBADMSG;

	*ep = e;
	return 0;
}


static int field_decode(void *p, const struct field *f,
			const struct odict *o, enum keyset ks)
{
	const struct odict_entry *e;
	struct pl hex;
	int64_t v;
	int err;

	err = entry_lookup(&e, o, f->key[ks], json_type(f->type));
	if (err)
		return err;

	if (!e)
		return 0;

	if (f->type == FIELD_X64) {
		pl_set_str(&hex, e->u.str);
		return did_decode(p, &hex) ? EBADMSG : 0;
	}

	if (f->type == FIELD_STR)
		return str_dup(p, e->u.str);
	if (f->type == FIELD_ID) {
		*(const char **)p = e->u.str;   /* the JSON's, until adopted */
		return 0;
	}
	if (f->type == FIELD_ATOM)
		return dialog_atom_str(p, e->u.str);

	v = e->u.integer;
	if (v < 0 || (f->type == FIELD_U32 && v > (int64_t)UINT32_MAX))
		return EBADMSG;

	if (f->type == FIELD_U32)
		*(uint32_t *)p = (uint32_t)v;
	else
		*(uint64_t *)p = (uint64_t)v;

	return 0;
}


/** ext: the extension, allocated if ext_named() said so, else NULL */
static int fields_decode(void *base, void *ext, const struct odict *o,
			 enum keyset ks, const struct field *fv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		void *p = field_at(base, ext, &fv[i]);
		int err = p ? field_decode(p, &fv[i], o, ks) : 0;

		if (err)
			return err;
	}

	return 0;
}


/** True if o has a value for a field of the extension */
static bool ext_named(const struct odict *o, enum keyset ks,
		      const struct field *fv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct odict_entry *e = odict_lookup(o, fv[i].key[ks]);

		if (in_ext(&fv[i]) && e && e->type != ODICT_NULL)
			return true;
	}

	return false;
}


static bool fields_equal(const void *a, const void *aext, const void *b,
			 const void *bext, const struct field *fv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const void *pa = field_at(a, aext, &fv[i]);
		const void *pb = field_at(b, bext, &fv[i]);

		if (is_str(fv[i].type)) {
			if (!str_equal(field_str(pa), field_str(pb)))
				return false;
		}
		else if ((pa ? field_uint(pa, fv[i].type) : 0) !=
			 (pb ? field_uint(pb, fv[i].type) : 0)) {
			return false;
		}
	}

	return true;
}


/** The leg's 2xx if it is replicated, else NULL */
static const struct dialog_ok *shared_ok(const struct dialog_leg_ext *x)
{
	return x && x->ok && x->ok->shared ? x->ok : NULL;
}


static int ok_encode(struct jsonw *w, const struct dialog_ok *ok)
{
	char dst[NET_ADDRSTRLEN + 8];
	int err;

	(void)re_snprintf(dst, sizeof(dst), "%J", &ok->dst);
	err  = jsonw_object(w, wr->ok);
	err |= fields_encode(w, ok, NULL, ok_fields, ARRAY_SIZE(ok_fields));
	err |= jsonw_str(w, wr->tp, sip_transp_name(ok->tp));
	err |= jsonw_str(w, wr->dst, dst);
	err |= jsonw_strn(w, wr->msg, (const char *)ok->mb->buf, ok->mb->end);
	err |= jsonw_end(w);

	return err;
}


/** True if leg was sent the SDP that other sent: it is written once */
static bool sdp_relayed(const struct dialog_leg *leg,
			const struct dialog_leg *other)
{
	return leg->sdp_out && str_equal(leg->sdp_out, other->sdp_in);
}


static int early_encode(struct jsonw *w, const struct dialog_early *early)
{
	int err;

	if (!early)
		return 0;

	err  = jsonw_object(w, wr->early);
	err |= fields_encode(w, early, NULL, early_fields,
			     ARRAY_SIZE(early_fields));
	err |= jsonw_end(w);

	return err;
}


static int early_decode(struct dialog *dlg, const struct odict *o,
			enum keyset ks)
{
	const struct odict_entry *e;
	int err;

	err = entry_lookup(&e, o, names[ks].early, ODICT_OBJECT);
	if (err || !e)
		return err;

	err = dialog_early_alloc(dlg);
	if (!err)
		err = fields_decode(dialog_early(dlg), NULL, e->u.odict, ks,
				    early_fields, ARRAY_SIZE(early_fields));
	return err;
}


static bool early_equal(const struct dialog_early *a,
			const struct dialog_early *b)
{
	if (!a || !b)
		return a == b;

	return fields_equal(a, NULL, b, NULL, early_fields,
			    ARRAY_SIZE(early_fields));
}


static int leg_encode(struct jsonw *w, const char *key,
		      const struct dialog_leg *leg,
		      const struct dialog_leg_ext *x,
		      const struct dialog_leg *other)
{
	bool relayed = sdp_relayed(leg, other);
	int err;

	err = jsonw_object(w, key);

	/* a reference replaces it (see above), after the table's fields */
	for (size_t i = 0; i < ARRAY_SIZE(leg_fields) && !err; i++) {
		if (i != LEG_SDP_OUT || !relayed)
			err = field_encode(w, leg, x, &leg_fields[i]);
	}
	if (!err && relayed)
		err = jsonw_bool(w, wr->sdp_relayed, true);

	/* UDP, the default, decodes from nothing: saves bytes */
	if (!err && leg->tp != SIP_TRANSP_UDP)
		err = jsonw_str(w, wr->tp, sip_transp_name(leg->tp));
	if (err)
		return err;

	err  = jsonw_object(w, wr->cseq);
	err |= fields_encode(w, &leg->cseq, NULL, cseq_fields,
			     ARRAY_SIZE(cseq_fields));
	err |= jsonw_end(w);
	if (!err && shared_ok(x))
		err = ok_encode(w, x->ok);
	if (!err)
		err = jsonw_end(w);

	return err;
}


/**
 * Print a dialog's replicated state as one JSON object.
 *
 * @param pf   Where to print
 * @param dlg  The dialog
 *
 * @return 0 if success, otherwise errorcode
 */
int dialog_encode(struct re_printf *pf, const struct dialog *dlg)
{
	struct jsonw w;
	char did[DID_STRSZ];
	int err;

	if (!pf || !dlg)
		return EINVAL;

	err = did_encode(did, sizeof(did), dlg->did);
	if (err)
		return err;

	err = jsonw_begin(&w, pf);
	if (!err)
		err = jsonw_uint(&w, "v", DIALOG_CODEC_VERSION);
	if (!err)
		err = jsonw_str(&w, wr->did, did);
	if (!err)
		err = jsonw_uint(&w, wr->state, dlg->state);
	if (!err)
		err = fields_encode(&w, dlg, dlg->ext, dialog_fields,
				    ARRAY_SIZE(dialog_fields));
	if (!err)
		err = early_encode(&w, dialog_early(dlg));

	for (unsigned i = LEG_CALLER; i <= LEG_CALLEE && !err; i++)
		err = leg_encode(&w, wr->leg[i], &dlg->leg[i],
				 dialog_leg_ext(dlg, i), &dlg->leg[!i]);

	return err ? err : jsonw_end(&w);
}


/** Encode a dialog into a new mbuf, positioned at its start */
int dialog_encode_mb(struct mbuf **mbp, const struct dialog *dlg)
{
	struct mbuf *mb;
	int err;

	if (!mbp || !dlg)
		return EINVAL;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb, "%H", dialog_encode, dlg);
	if (err) {
		mem_deref(mb);
		return err;
	}

	mb->pos = 0;
	*mbp = mb;
	return 0;
}


static int transp_decode(enum sip_transp *tpp, const char *name)
{
	for (int tp = SIP_TRANSP_UDP; tp < SIP_TRANSPC; tp++) {
		if (0 == str_casecmp(name, sip_transp_name(tp))) {
			*tpp = (enum sip_transp)tp;
			return 0;
		}
	}

	return EBADMSG;
}


static int ok_decode(struct dialog *dlg, enum dialog_leg_id leg,
		     const struct odict *o, enum keyset ks)
{
	const struct names *nm = &names[ks];
	const struct odict_entry *tp, *dst, *msg;
	struct dialog_ok ok;
	struct pl pl;
	int err;

	memset(&ok, 0, sizeof(ok));
	ok.shared = true;
	err = fields_decode(&ok, NULL, o, ks, ok_fields, ARRAY_SIZE(ok_fields));
	if (!err)
		err = entry_lookup(&tp, o, nm->tp, ODICT_STRING);
	if (!err)
		err = entry_lookup(&dst, o, nm->dst, ODICT_STRING);
	if (!err)
		err = entry_lookup(&msg, o, nm->msg, ODICT_STRING);
	if (err || !tp || !dst || !msg)
		return EBADMSG;

	pl_set_str(&pl, dst->u.str);
	if (transp_decode(&ok.tp, tp->u.str) || sa_decode(&ok.dst, pl.p, pl.l))
		return EBADMSG;

	ok.mb = mbuf_alloc(str_len(msg->u.str));
	if (!ok.mb)
		return ENOMEM;

	err = mbuf_write_str(ok.mb, msg->u.str);
	ok.mb->pos = 0;
	if (!err)
		err = dialog_ok_keep(NULL, dlg, leg, &ok);

	mem_deref(ok.mb);
	return err;
}


static int leg_decode(struct dialog *dlg, enum dialog_leg_id id,
		      bool *relayedp, const struct odict *o, enum keyset ks)
{
	struct dialog_leg *leg = &dlg->leg[id];
	const struct names *nm = &names[ks];
	const struct odict_entry *le, *e;
	int err;

	err = entry_lookup(&le, o, nm->leg[id], ODICT_OBJECT);
	if (err || !le)
		return err;

	if (ext_named(le->u.odict, ks, leg_fields, ARRAY_SIZE(leg_fields)) &&
	    !dialog_ext_get(dlg))
		return ENOMEM;

	err = fields_decode(leg, dialog_leg_ext(dlg, id), le->u.odict, ks,
			    leg_fields, ARRAY_SIZE(leg_fields));
	if (err)
		return err;

	err = entry_lookup(&e, le->u.odict, nm->sdp_relayed, ODICT_BOOL);
	if (err)
		return err;
	*relayedp = e && e->u.boolean;

	err = entry_lookup(&e, le->u.odict, nm->tp, ODICT_STRING);
	if (!err && e)
		err = transp_decode(&leg->tp, e->u.str);
	if (err)
		return err;

	err = entry_lookup(&e, le->u.odict, nm->cseq, ODICT_OBJECT);
	if (!err && e)
		err = fields_decode(&leg->cseq, NULL, e->u.odict, ks,
				    cseq_fields, ARRAY_SIZE(cseq_fields));
	if (err)
		return err;

	err = entry_lookup(&e, le->u.odict, nm->ok, ODICT_OBJECT);
	if (err || !e)
		return err;

	return ok_decode(dlg, id, e->u.odict, ks);
}


static int did_field_decode(uint64_t *didp, const struct odict *o,
			    enum keyset ks)
{
	const struct odict_entry *e;
	struct pl pl;
	int err;

	err = entry_lookup(&e, o, names[ks].did, ODICT_STRING);
	if (err || !e)
		return EBADMSG;

	pl_set_str(&pl, e->u.str);
	return did_decode(didp, &pl) ? EBADMSG : 0;
}


static int state_field_decode(enum dialog_state *stp, const struct odict *o,
			      enum keyset ks)
{
	const struct odict_entry *e;
	int err;

	/* a name up to version 4, enum dialog_state from 5 on */
	if (ks == KEYS_SHORT) {
		err = entry_lookup(&e, o, names[ks].state, ODICT_INT);
		if (err || !e)
			return err;

		if (e->u.integer < DIALOG_EARLY || e->u.integer > DIALOG_ENDED)
			return EBADMSG;

		*stp = (enum dialog_state)e->u.integer;
		return 0;
	}

	err = entry_lookup(&e, o, names[ks].state, ODICT_STRING);
	if (err || !e)
		return err;

	return dialog_state_decode(stp, e->u.str) ? EBADMSG : 0;
}


/**
 * Keep one copy of an SDP that one leg received and the other was sent:
 * written once ("sdp_relayed", version 4) or twice (versions 1 to 3)
 */
static int sdp_share(struct dialog_leg *to, const struct dialog_leg *from,
		     bool relayed)
{
	if (relayed) {
		if (to->sdp_out || !from->sdp_in)
			return EBADMSG;

		to->sdp_out = mem_ref(from->sdp_in);
		return 0;
	}

	if (!to->sdp_out || !str_equal(to->sdp_out, from->sdp_in))
		return 0;

	mem_deref(to->sdp_out);
	to->sdp_out = mem_ref(from->sdp_in);
	return 0;
}


/**
 * Rebuild a dialog from its JSON form. The dialog is not inserted in the
 * table, and its node-local state is empty.
 *
 * @param dlgp  Where the new dialog goes
 * @param str   JSON text (not NUL-terminated)
 * @param len   Length of str
 *
 * @return 0 if success, EPROTO for a format version it cannot read,
 *         EBADMSG for malformed input, otherwise errorcode
 */
int dialog_decode(struct dialog **dlgp, const char *str, size_t len)
{
	struct dialog *dlg = NULL;
	struct odict *o = NULL;
	const struct odict_entry *v;
	bool relayed[2] = {false, false};
	enum keyset ks;
	uint64_t did;
	int err;

	if (!dlgp || !str)
		return EINVAL;

	err = json_decode_odict(&o, ODICT_BUCKETS, str, len, JSON_MAXDEPTH);
	if (err)
		goto out;

	v = odict_lookup(o, "v");
	if (!v || v->type != ODICT_INT ||
	    v->u.integer < DIALOG_CODEC_VERSION_MIN ||
	    v->u.integer > DIALOG_CODEC_VERSION) {
		err = EPROTO;
		goto out;
	}

	ks = v->u.integer >= 5 ? KEYS_SHORT : KEYS_LONG;
	err = did_field_decode(&did, o, ks);
	if (err)
		goto out;

	err = dialog_alloc(&dlg, did);
	if (err)
		goto out;

	/* the keys are the object's, none if it has none (see above) */
	dlg->callid_key = 0;
	dlg->leg[LEG_CALLER].contact_key = 0;
	dlg->leg[LEG_CALLEE].contact_key = 0;

	err = state_field_decode(&dlg->state, o, ks);
	if (err)
		goto out;

	if (ext_named(o, ks, dialog_fields, ARRAY_SIZE(dialog_fields)) &&
	    !dialog_ext_get(dlg)) {
		err = ENOMEM;
		goto out;
	}

	err = fields_decode(dlg, dlg->ext, o, ks, dialog_fields,
			    ARRAY_SIZE(dialog_fields));
	if (err)
		goto out;

	for (unsigned i = LEG_CALLER; i <= LEG_CALLEE; i++) {
		err = leg_decode(dlg, i, &relayed[i], o, ks);
		if (err)
			goto out;
	}

	err = early_decode(dlg, o, ks);
	if (err)
		goto out;

	err  = sdp_share(&dlg->leg[LEG_CALLER], &dlg->leg[LEG_CALLEE],
			 relayed[LEG_CALLER]);
	err |= sdp_share(&dlg->leg[LEG_CALLEE], &dlg->leg[LEG_CALLER],
			 relayed[LEG_CALLEE]);
	if (err)
		err = EBADMSG;

	dialog_ext_trim(dlg);   /* fields present but at their defaults */

 out:
	/* until here the identifiers are the JSON object's strings */
	if (dlg) {
		int e = dialog_ids_adopt(dlg);

		err = err ? err : e;
	}
	mem_deref(o);
	if (err)
		mem_deref(dlg);
	else
		*dlgp = dlg;

	return err;
}


static bool ok_equal(const struct dialog_ok *a, const struct dialog_ok *b)
{
	if (!a || !b)
		return a == b;

	return a->tp == b->tp && sa_cmp(&a->dst, &b->dst, SA_ALL) &&
		fields_equal(a, NULL, b, NULL, ok_fields,
			     ARRAY_SIZE(ok_fields)) &&
		a->mb->end == b->mb->end &&
		0 == memcmp(a->mb->buf, b->mb->buf, a->mb->end);
}


static bool leg_equal(const struct dialog *a, const struct dialog *b,
		      enum dialog_leg_id id)
{
	const struct dialog_leg *la = &a->leg[id], *lb = &b->leg[id];
	const struct dialog_leg_ext *xa = dialog_leg_ext(a, id);
	const struct dialog_leg_ext *xb = dialog_leg_ext(b, id);

	return la->tp == lb->tp &&
		fields_equal(la, xa, lb, xb, leg_fields,
			     ARRAY_SIZE(leg_fields)) &&
		fields_equal(&la->cseq, NULL, &lb->cseq, NULL, cseq_fields,
			     ARRAY_SIZE(cseq_fields)) &&
		ok_equal(shared_ok(xa), shared_ok(xb));
}


/** True if every replicated field of a and b is equal */
bool dialog_equal(const struct dialog *a, const struct dialog *b)
{
	if (!a || !b)
		return a == b;

	return a->did == b->did &&
		a->state == b->state &&
		fields_equal(a, a->ext, b, b->ext, dialog_fields,
			     ARRAY_SIZE(dialog_fields)) &&
		early_equal(dialog_early(a), dialog_early(b)) &&
		leg_equal(a, b, LEG_CALLER) &&
		leg_equal(a, b, LEG_CALLEE);
}
