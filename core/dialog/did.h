/**
 * @file did.h  Dialog ids: 64 random bits, unique across nodes and restarts
 */

enum { DID_STRSZ = 17 };  /* 16 hex digits + NUL */
enum { DID_USER_SZ = 40 }; /* Contact user "rh-<did>-<a|b>-<key>" + NUL */

uint64_t did_new(void);
int  did_encode(char *buf, size_t sz, uint64_t did);
int  did_decode(uint64_t *didp, const struct pl *pl);
int  did_contact_user(char *buf, size_t sz, uint64_t did, unsigned leg,
		      uint64_t key);
int  did_contact_user_decode(uint64_t *didp, unsigned *legp, uint64_t *keyp,
			     const struct pl *user);
