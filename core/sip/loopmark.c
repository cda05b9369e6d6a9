/**
 * @file loopmark.c  Loop detection: our mark in the Via of what we send
 *
 * RFC 3261 16.3 item 4 finds loops by the Via a proxy put in a request:
 * if a request comes back carrying it, unchanged in what routes it, it
 * has looped (482); retargeted, it spirals and goes on. libre writes the
 * Via of every request the engine sends (its request() and nict.c write
 * the same line) with a random branch we cannot choose, so the mark is a
 * Via parameter of our own, appended from the send handler: "rhloop", an
 * HMAC over that Via's branch and the Request-URI, under a key drawn at
 * start-up. Nobody else can make one for a request we did not send;
 * replaying one seen on the wire with the same branch and Request-URI
 * only earns a 482.
 *
 * The HMAC's context is made once, keyed, and re-initialised for each
 * mark: OpenSSL 3's one-shot HMAC() looks the algorithm up and builds a
 * context on every call, 3 % of the CPU per call (issue 15).
 *
 * The mark holds within this node: a B2BUA hop (another node included)
 * sends a new request with its own Via and Call-ID, so a loop through one
 * is ended by Max-Forwards, which every relay decrements and caps at 70.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <re.h>
#include "loopmark.h"

enum {
	KEY_SZ  = 16,
	MARK_SZ = 8,         /* bytes of the HMAC kept: 16 hex digits */
	DATA_SZ = 1024,      /* branch + Request-URI we ever mark */
};

static struct {
	EVP_MAC_CTX *ctx;    /* HMAC-SHA1 under a key drawn at first use */
} lm;


static int key_once(void)
{
	uint8_t key[KEY_SZ];
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 "SHA1", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;
	int err = 0;

	if (lm.ctx)
		return 0;

	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	lm.ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);
	if (!lm.ctx)
		return ENOMEM;

	rand_bytes(key, sizeof(key));
	if (!EVP_MAC_init(lm.ctx, key, sizeof(key), params)) {
		err = EPROTO;
		loopmark_close();
	}

	return err;
}


/** The mark of a Via with this branch on a request to this R-URI */
static int mark_print(char *hex, size_t sz, const struct pl *branch,
		      const struct pl *ruri)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t n;
	int err;

	if (sz < 2 * MARK_SZ + 1 || branch->l + 1 + ruri->l > DATA_SZ)
		return EOVERFLOW;

	err = key_once();
	if (err)
		return err;

	/* a NULL key: the same key again */
	if (!EVP_MAC_init(lm.ctx, NULL, 0, NULL) ||
	    !EVP_MAC_update(lm.ctx, (const uint8_t *)branch->p, branch->l) ||
	    !EVP_MAC_update(lm.ctx, (const uint8_t *)" ", 1) ||
	    !EVP_MAC_update(lm.ctx, (const uint8_t *)ruri->p, ruri->l) ||
	    !EVP_MAC_final(lm.ctx, mac, &n, sizeof(mac)) || n < MARK_SZ)
		return EPROTO;

	return re_snprintf(hex, sz, "%w", mac, (size_t)MARK_SZ) < 0 ?
		EINVAL : 0;
}


/** Forget the key (a new one is drawn at the next mark) */
void loopmark_close(void)
{
	EVP_MAC_CTX_free(lm.ctx);
	lm.ctx = NULL;
}


/**
 * Mark the request libre is building in mb: the request line and our Via
 * are written, mb->pos is at their end (the send handler's moment). The
 * Via gets ";rhloop=<mark>" before its CRLF; anything else is left alone.
 */
int loopmark_add(struct mbuf *mb)
{
	struct pl met, ruri, via, branch;
	char hex[2 * MARK_SZ + 1];
	const char *start = (const char *)mb->buf;

	/* not the layout we know, or an R-URI too long: no mark, no harm */
	if (mb->pos != mb->end ||
	    re_regex(start, mb->end, "[^ \r\n]+ [^ \r\n]+ SIP/2.0\r\n"
		     "Via: [^\r\n]+\r\n", &met, &ruri, &via) ||
	    met.p != start || via.p + via.l + 2 != start + mb->end ||
	    msg_param_decode(&via, "branch", &branch) ||
	    mark_print(hex, sizeof(hex), &branch, &ruri))
		return 0;

	mb->end -= 2;
	mb->pos = mb->end;
	return mbuf_printf(mb, ";%s=%s\r\n", LOOPMARK_PARAM, hex);
}


static bool via_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			void *arg)
{
	struct pl mark, branch;
	char hex[2 * MARK_SZ + 1];
	(void)arg;

	if (msg_param_decode(&hdr->val, LOOPMARK_PARAM, &mark) ||
	    msg_param_decode(&hdr->val, "branch", &branch) ||
	    mark_print(hex, sizeof(hex), &branch, &msg->ruri))
		return false;

	return 0 == pl_strcmp(&mark, hex);
}


/** True if a Via of msg is ours, made for the same branch and R-URI */
bool loopmark_looped(const struct sip_msg *msg)
{
	return NULL != sip_msg_hdr_apply(msg, true, SIP_HDR_VIA, via_handler,
					 NULL);
}
