/**
 * @file cluster_msg.c  Signed cluster messages: HMAC-SHA256 seal and check
 *
 * Every message of the cluster is signed with HMAC-SHA256 under
 * repl_secret, as "<64 hex> <body>", so one check covers heartbeats, tag
 * changes and dialogs; anything else is dropped and counted by the
 * receiver. The signature goes in front so a sender can reserve its room
 * first and write the body straight after it, without copying. Without a
 * secret the seal is 64 '-', so the framing stays the same.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "cluster.h"
#include "cluster_int.h"

enum {
	SEAL_MD       = 32,             /* SHA-256 */
	SEAL_HEX      = 2 * SEAL_MD,    /* in hex */
	SEAL_SIZE     = SEAL_HEX + 1,   /* and a space */
};

static struct hmac *hmac;       /* NULL: no repl_secret, nothing signed */


/** Key the signatures with `secret`; without one, messages go unsigned. */
int cluster_msg_init(const char *secret)
{
	if (!str_isset(secret)) {
		log_warn("cluster", "no repl_secret: cluster messages are "
			 "not signed");
		return 0;
	}

	return hmac_create(&hmac, HMAC_HASH_SHA256, (const uint8_t *)secret,
			   strlen(secret));
}


void cluster_msg_close(void)
{
	hmac = mem_deref(hmac);
}


static int digest_hex(char *hex, size_t sz, const uint8_t *data, size_t len)
{
	uint8_t md[SEAL_MD];
	int err;

	err = hmac_digest(hmac, md, sizeof(md), data, len);
	if (err)
		return err;

	return re_snprintf(hex, sz, "%w", md, sizeof(md)) == SEAL_HEX
		? 0 : EINVAL;
}


/** A message buffer with room for the signature in front of the body. */
int cluster_msg_alloc(struct mbuf **mbp)
{
	struct mbuf *mb;
	int err;

	if (!mbp)
		return EINVAL;

	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;

	err = mbuf_fill(mb, ' ', SEAL_SIZE);
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
	if (!hmac) {
		memset(mb->buf, '-', SEAL_HEX);
		return 0;
	}

	err = digest_hex(hex, sizeof(hex), mb->buf + SEAL_SIZE,
			 mb->end - SEAL_SIZE);
	if (err)
		return err;

	memcpy(mb->buf, hex, SEAL_HEX);
	return 0;
}


static bool unsigned_seal(const char *p)
{
	for (size_t i = 0; i < SEAL_HEX; i++) {
		if (p[i] != '-')
			return false;
	}

	return true;
}


/**
 * Check a message and point `body` at its payload. EBADMSG: malformed or
 * unsigned (when a secret is set); EACCES: bad signature.
 */
int cluster_msg_open(struct pl *body, const struct pl *msg)
{
	char hex[SEAL_HEX + 1];
	uint8_t diff = 0;
	int err;

	if (!body || !msg)
		return EINVAL;

	if (msg->l <= SEAL_SIZE || msg->p[SEAL_HEX] != ' ')
		return EBADMSG;

	body->p = msg->p + SEAL_SIZE;
	body->l = msg->l - SEAL_SIZE;

	if (!hmac)
		return 0;
	if (unsigned_seal(msg->p))
		return EBADMSG;

	err = digest_hex(hex, sizeof(hex), (const uint8_t *)body->p, body->l);
	if (err)
		return err;

	/* constant time: do not tell a forger how much was right */
	for (size_t i = 0; i < SEAL_HEX; i++)
		diff |= (uint8_t)(hex[i] ^ msg->p[i]);

	return diff ? EACCES : 0;
}
