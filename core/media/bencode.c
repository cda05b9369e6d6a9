/**
 * @file bencode.c  Bencode to and from libre's odict
 *
 * Bencode is what rtpengine's ng protocol speaks: a dictionary `d...e`,
 * lists `l...e`, integers `i42e` and byte strings `3:abc`. It maps onto
 * libre's odict one to one (dict to ODICT_OBJECT, list to ODICT_ARRAY,
 * with the index as key as libre's JSON decoder does, string to
 * ODICT_STRING, integer to ODICT_INT), so the rest of the engine handles
 * ng messages with the same odict helpers as JSON ones.
 *
 * The decoder reads what a remote peer sent, so it trusts nothing: every
 * length is checked against the bytes left before anything is read or
 * allocated, numbers are refused before they overflow, and the canonical
 * forms are enforced (no leading zeros, no "-0", no trailing bytes, no
 * repeated dictionary key). Nesting is limited by depth (the recursion
 * is bounded), the whole document by size and by number of values, so a
 * small datagram cannot make it allocate without bound. odict strings end
 * at their first NUL, so a string holding a NUL byte is refused rather
 * than silently cut. Errors: EBADMSG for malformed input, EOVERFLOW for a
 * limit exceeded.
 *
 * Dictionary keys are not required to be sorted: rtpengine itself does not
 * sort the keys of its replies. The encoder writes them in odict order.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <re.h>
#include "bencode.h"

/** Where the decoder is */
struct dec {
	const char *p;             /* next byte */
	const char *end;
	uint32_t hash_size;
	unsigned maxdepth;
	unsigned items;            /* values decoded so far */
};

static int dec_container(struct dec *d, struct odict **odp, unsigned depth);


/* Decimal digits up to `term`, at most `max`; "0" but no other leading 0 */
static int dec_uint(struct dec *d, char term, uint64_t max, uint64_t *np)
{
	const char *start = d->p;
	uint64_t n = 0;

	for (; d->p < d->end && *d->p != term; ++d->p) {
		unsigned digit = (unsigned char)*d->p - '0';

		if (digit > 9 || n > (max - digit) / 10)
			return EBADMSG;

		n = n * 10 + digit;
	}

	if (d->p == d->end || d->p == start)
		return EBADMSG;

	if (*start == '0' && d->p - start > 1)
		return EBADMSG;

	++d->p;
	*np = n;

	return 0;
}


/* i<digits>e or i-<digits>e, the whole int64_t range; "i-0e" is not one */
static int dec_int(struct dec *d, int64_t *vp)
{
	uint64_t n;
	bool neg;
	int err;

	++d->p;
	neg = d->p < d->end && *d->p == '-';
	if (neg)
		++d->p;

	err = dec_uint(d, 'e', neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &n);
	if (err)
		return err;

	if (neg && !n)
		return EBADMSG;

	*vp = neg ? -(int64_t)(n - 1) - 1 : (int64_t)n;

	return 0;
}


/* <length>:<bytes>, copied into a new NUL-terminated string */
static int dec_str(struct dec *d, char **strp)
{
	struct pl pl;
	uint64_t n;
	int err;

	err = dec_uint(d, ':', BENCODE_MAX_SIZE, &n);
	if (err)
		return err;

	if (n > (uint64_t)(d->end - d->p))
		return EBADMSG;

	pl.p = d->p;
	pl.l = (size_t)n;
	d->p += n;

	if (memchr(pl.p, '\0', pl.l))
		return EBADMSG;

	return pl_strdup(strp, &pl);
}


static int dec_value(struct dec *d, struct odict *od, const char *key,
		     unsigned depth)
{
	struct odict *sub = NULL;
	enum odict_type type;
	char *str = NULL;
	int64_t v;
	int err;

	if (d->p == d->end)
		return EBADMSG;

	if (++d->items > BENCODE_MAX_ITEMS)
		return EOVERFLOW;

	switch (*d->p) {

	case 'i':
		err = dec_int(d, &v);
		if (!err)
			err = odict_entry_add(od, key, ODICT_INT, v);
		break;

	case 'l':
	case 'd':
		type = *d->p == 'd' ? ODICT_OBJECT : ODICT_ARRAY;
		err = dec_container(d, &sub, depth + 1);
		if (!err)
			err = odict_entry_add(od, key, type, sub);
		break;

	default:
		err = dec_str(d, &str);
		if (!err)
			err = odict_entry_add(od, key, ODICT_STRING, str);
		break;
	}

	mem_deref(sub);
	mem_deref(str);

	return err;
}


/* A dictionary or a list, the first byte telling which */
static int dec_container(struct dec *d, struct odict **odp, unsigned depth)
{
	bool dict = *d->p == 'd';
	struct odict *od;
	char idx[16];
	int err;

	if (depth > d->maxdepth)
		return EOVERFLOW;

	err = odict_alloc(&od, d->hash_size);
	if (err)
		return err;

	++d->p;
	for (unsigned i = 0; ; i++) {
		char *key = NULL;

		if (d->p == d->end) {
			err = EBADMSG;
			break;
		}

		if (*d->p == 'e') {
			++d->p;
			break;
		}

		if (dict) {
			err = dec_str(d, &key);
			if (!err && odict_lookup(od, key))
				err = EBADMSG;
		}
		else {
			(void)re_snprintf(idx, sizeof(idx), "%u", i);
		}

		if (!err)
			err = dec_value(d, od, dict ? key : idx, depth);

		mem_deref(key);
		if (err)
			break;
	}

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/**
 * Decode a bencoded dictionary, the whole buffer
 *
 * @param odp       Decoded dictionary (set on success)
 * @param hash_size Hash size of each odict
 * @param buf       Bencoded bytes
 * @param len       Their number
 * @param maxdepth  Deepest nesting allowed (the top dictionary is 1),
 *                  at most BENCODE_MAX_DEPTH
 *
 * @return 0 if success, EBADMSG if malformed, EOVERFLOW if over a limit
 */
int bencode_decode_odict(struct odict **odp, uint32_t hash_size,
			 const char *buf, size_t len, unsigned maxdepth)
{
	struct dec d = {
		.p = buf,
		.end = buf + len,
		.hash_size = hash_size,
		.maxdepth = MIN(maxdepth, (unsigned)BENCODE_MAX_DEPTH),
	};
	struct odict *od;
	int err;

	if (!odp || (!buf && len))
		return EINVAL;

	if (len > BENCODE_MAX_SIZE)
		return EOVERFLOW;

	if (!len || buf[0] != 'd')
		return EBADMSG;

	err = dec_container(&d, &od, 1);
	if (err)
		return err;

	if (d.p != d.end) {
		mem_deref(od);
		return EBADMSG;
	}

	*odp = od;

	return 0;
}


/**
 * Print a string as a bencoded byte string (up to its NUL)
 */
int bencode_encode_str(struct re_printf *pf, const char *str)
{
	size_t n = str_len(str);

	return re_hprintf(pf, "%zu:%b", n, str, n);
}


static int encode_value(struct re_printf *pf, const struct odict_entry *e);


static int encode_values(struct re_printf *pf, const struct odict *od)
{
	struct le *le;
	int err = 0;

	for (le = list_head(&od->lst); le && !err; le = le->next)
		err = encode_value(pf, le->data);

	return err;
}


/* bencode has no double, boolean or null: those are EINVAL */
static int encode_value(struct re_printf *pf, const struct odict_entry *e)
{
	switch (e->type) {

	case ODICT_OBJECT:
		return re_hprintf(pf, "d%He", bencode_encode_entries,
				  e->u.odict);

	case ODICT_ARRAY:
		return re_hprintf(pf, "l%He", encode_values, e->u.odict);

	case ODICT_STRING:
		return bencode_encode_str(pf, e->u.str);

	case ODICT_INT:
		return re_hprintf(pf, "i%llie", (long long)e->u.integer);

	default:
		return EINVAL;
	}
}


/**
 * Print the entries of a dictionary, key and value, without the `d...e`
 * around them: a caller may put entries of its own first. NULL prints
 * nothing.
 */
int bencode_encode_entries(struct re_printf *pf, const struct odict *od)
{
	struct le *le;
	int err = 0;

	if (!od)
		return 0;

	for (le = list_head(&od->lst); le && !err; le = le->next) {
		const struct odict_entry *e = le->data;

		err = re_hprintf(pf, "%H%H", bencode_encode_str, e->key,
				 encode_value, e);
	}

	return err;
}


/**
 * Print an odict as a bencoded dictionary
 */
int bencode_encode_odict(struct re_printf *pf, const struct odict *od)
{
	if (!od)
		return EINVAL;

	return re_hprintf(pf, "d%He", bencode_encode_entries, od);
}
