/**
 * @file did.c  Dialog ids: 64 random bits, unique across nodes and restarts
 *
 * A did must never clash between two nodes, or replicas of two calls
 * overwrite each other. A node-id prefix plus a counter would be unique
 * too, but needs the counter persisted across restarts; 64 bits from
 * libre's CSPRNG-seeded rand_u64() clash with probability ~n^2/2^65
 * (1e-8 for a million live calls), and the dialog table refuses a did it
 * already holds, so the caller simply draws again.
 *
 * On the wire the did is 16 lower-case hex digits. The Contact the engine
 * gives each leg carries it in the user part, "rh-<did>-<a|b>-<key>",
 * where a is the caller leg and b the callee leg: endpoints echo the user
 * part back in the Request-URI of every in-dialog request, so any node
 * with the same listener tag finds both the dialog and the leg from it.
 *
 * Both endpoints see the did, so the did and the leg letter alone would
 * let one endpoint address the other's leg. The key is what it cannot
 * know: a random value of that leg's own (did_new() draws it too), kept
 * and replicated with the dialog, and compared on every request. A key of
 * 0 writes the form without one, "rh-<did>-<a|b>", of dialogs from before
 * keys (see dialog_codec.c).
 */
#include <string.h>
#include <re.h>
#include "did.h"

static const char contact_prefix[] = "rh-";

enum {
	USER_LEN_NOKEY = sizeof(contact_prefix) - 1 + 18,  /* rh-<did>-a */
	USER_LEN       = USER_LEN_NOKEY + 17,              /* ...-<key> */
};


/** A random, non-zero 64-bit value: a new did, or a key */
uint64_t did_new(void)
{
	uint64_t did;

	do {
		did = rand_u64();
	} while (did == 0);

	return did;
}


int did_encode(char *buf, size_t sz, uint64_t did)
{
	if (!buf || sz < DID_STRSZ)
		return EINVAL;

	return re_snprintf(buf, sz, "%016llx", (unsigned long long)did) == 16
		? 0 : EINVAL;
}


int did_decode(uint64_t *didp, const struct pl *pl)
{
	uint64_t v = 0;

	if (!didp || !pl || pl->l != 16)
		return EINVAL;

	for (size_t i = 0; i < 16; i++) {
		char c = pl->p[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return EINVAL;

		v = v << 4 | d;
	}

	if (v == 0)
		return EINVAL;

	*didp = v;
	return 0;
}


/**
 * The user part of the engine's Contact toward one leg
 *
 * @param buf  Where it goes, DID_USER_SZ bytes
 * @param sz   Size of buf
 * @param did  The dialog id
 * @param leg  0 for the caller leg, 1 for the callee leg
 * @param key  That leg's key; 0 for the form without one
 *
 * @return 0 if success, otherwise errorcode
 */
int did_contact_user(char *buf, size_t sz, uint64_t did, unsigned leg,
		     uint64_t key)
{
	int n;

	if (!buf || leg > 1)
		return EINVAL;

	if (key)
		n = re_snprintf(buf, sz, "%s%016llx-%c-%016llx",
				contact_prefix, (unsigned long long)did,
				leg ? 'b' : 'a', (unsigned long long)key);
	else
		n = re_snprintf(buf, sz, "%s%016llx-%c", contact_prefix,
				(unsigned long long)did, leg ? 'b' : 'a');

	return n == (key ? USER_LEN : USER_LEN_NOKEY) ? 0 : EINVAL;
}


/**
 * Read the did, the leg and the key (0 if none) from a Contact user part,
 * as an endpoint echoes it in a Request-URI: anything else is EINVAL.
 */
int did_contact_user_decode(uint64_t *didp, unsigned *legp, uint64_t *keyp,
			    const struct pl *user)
{
	const size_t plen = sizeof(contact_prefix) - 1;
	struct pl hex;
	uint64_t key = 0;
	char legc;

	if (!didp || !legp || !keyp || !user ||
	    (user->l != USER_LEN_NOKEY && user->l != USER_LEN))
		return EINVAL;

	if (memcmp(user->p, contact_prefix, plen) || user->p[plen + 16] != '-')
		return EINVAL;

	legc = user->p[plen + 17];
	if (legc != 'a' && legc != 'b')
		return EINVAL;

	if (user->l == USER_LEN) {
		hex.p = user->p + USER_LEN_NOKEY + 1;
		hex.l = 16;
		if (user->p[USER_LEN_NOKEY] != '-' || did_decode(&key, &hex))
			return EINVAL;
	}

	hex.p = user->p + plen;
	hex.l = 16;
	if (did_decode(didp, &hex))
		return EINVAL;

	*legp = legc == 'b';
	*keyp = key;
	return 0;
}
