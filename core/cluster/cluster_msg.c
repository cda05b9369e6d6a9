/**
 * @file cluster_msg.c  Signed cluster messages: stamp, HMAC-SHA256 seal and check
 *
 * Every message of the cluster is "<seal> <stamp> <body>", so one check
 * covers heartbeats, tag changes, dialogs and re-homing requests. The
 * seal is HMAC-SHA256 in hex, under repl_secret, of everything after it;
 * the stamp, "<boot> <seq> <ms> <node>", says who sent it and when: the
 * sender's boot id (64 random bits drawn at start, in hex), the number of
 * messages it sent since, its wall clock and its node id. Being under the
 * seal, the stamp cannot be changed, so a receiver can tell a message it
 * saw already (cluster_fresh.c). Anything else is dropped and counted.
 *
 * The seal goes in front so a sender reserves its room first and writes
 * the stamp and body straight after it, without copying; the stamp is
 * written when the buffer is taken, and the message is sealed and sent
 * without giving the loop back, so the sequence numbers go out in order.
 * Without a secret the seal is 64 '-', so the framing stays the same.
 *
 * While the cluster changes its key, repl_secret is given twice: the
 * first signs, and a message passes under either.
 *
 * A record kept in Redis (a dialog's snapshot) needs no stamp: nobody
 * checks it for freshness, the version inside it fences it. It is
 * "<seal>\n<data>", the seal in base64 without its padding (43 bytes
 * instead of 64 + a stamp of about 40, in every snapshot Redis holds),
 * over everything after it, the newline included. A message's sealed
 * part starts with its stamp's boot id (hex), a record's with that
 * newline, so a seal is never valid for both kinds, and a reader tells
 * them apart at byte 43: a newline in a record, a hex digit or '-' in a
 * message.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "cluster.h"
#include "cluster_int.h"

enum {
	SEAL_MD       = 32,             /* SHA-256 */
	SEAL_HEX      = 2 * SEAL_MD,    /* in hex */
	SEAL_SIZE     = SEAL_HEX + 1,   /* and a space */
	REC_SEAL      = CLUSTER_RECORD_SEAL,   /* in base64, unpadded */
	REC_B64       = 4 * ((SEAL_MD + 2) / 3),   /* padded */
	BOOT_HEX      = 16,
	STAMP_FIELDS  = 4,
	MSG_SIZE      = 1024,           /* a first guess, it grows */
	SECRETS       = 2,
};

_Static_assert(REC_B64 == REC_SEAL + 1, "one padding '=' to drop");

static struct {
	struct hmac *hmac[SECRETS];     /* [0] signs; none: nothing signed */
	uint64_t boot;
	uint64_t seq;
	char *node;
} cm;


static void secrets_close(void)
{
	for (size_t i = 0; i < SECRETS; i++)
		cm.hmac[i] = mem_deref(cm.hmac[i]);
}


static int secrets_init(const char *secretv[SECRETS])
{
	for (size_t i = 0; i < SECRETS; i++) {
		int err;

		if (!str_isset(secretv[i]))
			continue;

		err = hmac_create(&cm.hmac[i], HMAC_HASH_SHA256,
				  (const uint8_t *)secretv[i],
				  strlen(secretv[i]));
		if (err)
			return err;
	}

	return 0;
}


/**
 * Key the signatures with repl_secret (and check with the second one too,
 * if given); draw this run's boot id. Without a secret, messages go
 * unsigned.
 */
int cluster_msg_init(const struct rh_conf *cfg)
{
	const char *secretv[SECRETS] = {cfg->repl_secret, cfg->repl_secret2};
	struct cluster_stamp self;
	int err;

	memset(&cm, 0, sizeof(cm));
	if (!str_isset(cfg->repl_secret))
		log_warn("cluster", "no repl_secret: cluster messages are "
			 "not signed");

	err = secrets_init(secretv);
	if (err)
		goto out;

	err = str_dup(&cm.node, cfg->node_id);
	if (err)
		goto out;

	while (!cm.boot)
		cm.boot = rand_u64();

	self.boot = cm.boot;
	self.seq = 0;
	self.ts = cluster_clock_ms();
	pl_set_str(&self.node, cm.node);
	err = cluster_fresh_init(&self, cfg->node_timeout);

 out:
	if (err)
		cluster_msg_close();
	return err;
}


void cluster_msg_close(void)
{
	secrets_close();
	cluster_fresh_close();
	cm.node = mem_deref(cm.node);
	memset(&cm, 0, sizeof(cm));
}


/** How a seal is written: into out, at most SEAL_HEX + 1 bytes */
typedef int (digest_h)(char *out, struct hmac *hmac, const uint8_t *data,
		       size_t len);


/* A message's seal: SEAL_HEX hex digits (and a NUL) */
static int digest_hex(char *hex, struct hmac *hmac, const uint8_t *data,
		      size_t len)
{
	uint8_t md[SEAL_MD];
	int err;

	err = hmac_digest(hmac, md, sizeof(md), data, len);
	if (err)
		return err;

	return re_snprintf(hex, SEAL_HEX + 1, "%w", md, sizeof(md)) ==
		SEAL_HEX ? 0 : EINVAL;
}


/* A record's seal: REC_SEAL characters of base64, its padding dropped */
static int digest_b64(char *b64, struct hmac *hmac, const uint8_t *data,
		      size_t len)
{
	uint8_t md[SEAL_MD];
	char out[REC_B64];
	size_t olen = sizeof(out);
	int err;

	err = hmac_digest(hmac, md, sizeof(md), data, len);
	if (!err)
		err = base64_encode(md, sizeof(md), out, &olen);
	if (err)
		return err;

	memcpy(b64, out, REC_SEAL);   /* the rest is the padding '=' */
	return 0;
}


/**
 * Check the n characters of seal, written by digest over data: 0 if a
 * secret signed it (or none is set), EBADMSG unsigned, EACCES else. The
 * comparison takes constant time: it does not tell a forger how much was
 * right.
 */
static int seal_check(const char *seal, size_t n, digest_h *digest,
		      const uint8_t *data, size_t len)
{
	bool keyed = false, unsigned_seal = true;

	for (size_t i = 0; i < SECRETS; i++) {
		char want[SEAL_HEX + 1];
		uint8_t diff = 0;

		if (!cm.hmac[i])
			continue;

		keyed = true;
		if (digest(want, cm.hmac[i], data, len))
			continue;

		for (size_t j = 0; j < n; j++)
			diff |= (uint8_t)(want[j] ^ seal[j]);
		if (!diff)
			return 0;
	}

	if (!keyed)
		return 0;

	for (size_t j = 0; j < n; j++)
		unsigned_seal &= seal[j] == '-';

	return unsigned_seal ? EBADMSG : EACCES;
}


/**
 * A message buffer with room for the seal in front, and the stamp: write
 * the body from mb->pos, then seal and send it without returning to the
 * loop in between (the sequence numbers must go out in order).
 */
int cluster_msg_alloc(struct mbuf **mbp)
{
	struct mbuf *mb;
	int err;

	if (!mbp)
		return EINVAL;
	if (!cm.boot)
		return ENOTCONN;

	mb = mbuf_alloc(MSG_SIZE);
	if (!mb)
		return ENOMEM;

	err = mbuf_fill(mb, ' ', SEAL_SIZE);
	if (!err)
		err = mbuf_printf(mb, "%016llx %llu %llu %s ",
				  (unsigned long long)cm.boot,
				  (unsigned long long)++cm.seq,
				  (unsigned long long)cluster_clock_ms(),
				  cm.node);
	if (err) {
		mem_deref(mb);
		return err;
	}

	*mbp = mb;
	return 0;
}


/** Sign what was written after the reserved space; mb->pos goes to 0. */
int cluster_msg_seal(struct mbuf *mb)
{
	char hex[SEAL_HEX + 1];
	int err;

	if (!mb || mb->end < SEAL_SIZE)
		return EINVAL;

	mb->pos = 0;
	if (!cm.hmac[0]) {
		memset(mb->buf, '-', SEAL_HEX);
		return 0;
	}

	err = digest_hex(hex, cm.hmac[0], mb->buf + SEAL_SIZE,
			 mb->end - SEAL_SIZE);
	if (err)
		return err;

	memcpy(mb->buf, hex, SEAL_HEX);
	return 0;
}


static bool all_of(const struct pl *pl, const char *set)
{
	for (size_t i = 0; i < pl->l; i++) {
		if (!strchr(set, pl->p[i]))
			return false;
	}

	return pl->l > 0;
}


/* "<boot> <seq> <ms> <node> " in front of the body */
static int stamp_decode(struct cluster_stamp *st, struct pl *rest)
{
	static const char dec[] = "0123456789", hexd[] = "0123456789abcdef";
	struct pl f[STAMP_FIELDS];

	for (size_t i = 0; i < STAMP_FIELDS; i++) {
		const char *sp = pl_strchr(rest, ' ');

		if (!sp)
			return EPROTO;

		f[i].p = rest->p;
		f[i].l = sp - rest->p;
		pl_advance(rest, f[i].l + 1);
	}

	if (f[0].l != BOOT_HEX || !all_of(&f[0], hexd) ||
	    f[1].l > 20 || !all_of(&f[1], dec) ||
	    f[2].l > 20 || !all_of(&f[2], dec) || !pl_isset(&f[3]))
		return EPROTO;

	st->boot = pl_x64(&f[0]);
	st->seq = pl_u64(&f[1]);
	st->ts = pl_u64(&f[2]);
	st->node = f[3];

	return st->boot && st->seq ? 0 : EPROTO;
}


static int open_msg(struct pl *body, struct cluster_stamp *st,
		    const struct pl *msgp)
{
	int err;

	if (!body || !msgp)
		return EINVAL;

	if (msgp->l <= SEAL_SIZE || msgp->p[SEAL_HEX] != ' ')
		return EPROTO;

	err = seal_check(msgp->p, SEAL_HEX, digest_hex,
			 (const uint8_t *)msgp->p + SEAL_SIZE,
			 msgp->l - SEAL_SIZE);
	if (err)
		return err;

	body->p = msgp->p + SEAL_SIZE;
	body->l = msgp->l - SEAL_SIZE;

	return stamp_decode(st, body);
}


/**
 * Check a message heard live and point `body` at its payload: EPROTO
 * malformed, EBADMSG unsigned (when a secret is set), EACCES bad
 * signature, EALREADY a replay, ETIMEDOUT stale. Drops are counted.
 */
int cluster_msg_open(struct pl *body, const struct pl *msgp)
{
	struct cluster_stamp st;
	int err;

	err = open_msg(body, &st, msgp);
	if (err) {
		if (err != EINVAL)
			cluster_fresh_dropped(err);
		return err;
	}

	return cluster_fresh_accept(&st);
}


/** The same for a message read back from Redis: no freshness check */
int cluster_msg_open_stored(struct pl *body, const struct pl *msgp)
{
	struct cluster_stamp st;
	int err;

	err = open_msg(body, &st, msgp);
	if (err && err != EINVAL)
		cluster_fresh_dropped(err);

	return err;
}


/* ---- records: signed, without stamp ---------------------------------- */


/**
 * The seal of a record "<seal>\n<data>": the base64 HMAC of `body`,
 * which is "\n<data>" (CLUSTER_RECORD_SEAL '-' without a secret)
 *
 * @param seal  Buffer of at least CLUSTER_RECORD_SEAL + 1 bytes
 * @param sz    Its size
 * @param body  The newline and the data after it
 *
 * @return 0 if success, otherwise errorcode
 */
int cluster_record_seal(char *seal, size_t sz, const struct pl *body)
{
	int err = 0;

	if (!seal || sz <= REC_SEAL || !body || !body->l ||
	    body->p[0] != '\n')
		return EINVAL;

	if (cm.hmac[0])
		err = digest_b64(seal, cm.hmac[0], (const uint8_t *)body->p,
				 body->l);
	else
		memset(seal, '-', REC_SEAL);

	seal[REC_SEAL] = '\0';
	return err;
}


/**
 * Is rec a record ("<seal>\n<data>")? Else it may be a message, of the
 * form snapshots had before records (cluster_msg_open_stored()).
 */
bool cluster_record_is(const struct pl *rec)
{
	return rec && rec->l > REC_SEAL && rec->p[REC_SEAL] == '\n';
}


/**
 * Check a record and point `data` at what it holds: EPROTO not a record,
 * EBADMSG unsigned (when a secret is set), EACCES bad signature. Drops
 * are counted as messages' are.
 */
int cluster_record_open(struct pl *data, const struct pl *rec)
{
	struct pl body;
	int err;

	if (!data || !rec)
		return EINVAL;

	if (!cluster_record_is(rec))
		err = EPROTO;
	else {
		body.p = rec->p + REC_SEAL;
		body.l = rec->l - REC_SEAL;
		err = seal_check(rec->p, REC_SEAL, digest_b64,
				 (const uint8_t *)body.p, body.l);
	}
	if (err) {
		cluster_fresh_dropped(err);
		return err;
	}

	data->p = body.p + 1;
	data->l = body.l - 1;
	return 0;
}
