/**
 * @file jsonw.c  JSON objects written straight to a re_printf
 *
 * For the messages written many times a second (a dialog's replication
 * message, dialog_codec.c): building a libre odict first costs two
 * allocations and a copy per member, and json_encode_odict() then hands
 * strings to the printer one byte at a time (utf8_encode()). Here each
 * member goes out as it is read, a key and a number in one call of the
 * printer, a string as its runs of bytes that need no escape. The bytes
 * are json_encode_odict()'s, so readers and stored copies cannot tell the
 * two apart: no spaces, integers in decimal, strings escaped as
 * utf8_encode() does (the two-letter escapes, "\/" too, \u00XX in capitals
 * for the other control bytes, bytes from 0x80 up as they are). Keys are
 * the caller's constants and are not escaped. Only what the callers need:
 * objects, unsigned integers, strings, booleans.
 *
 * Errors are returned; a caller may OR a run of writes and check once
 * (after an error the output is cut anyway).
 */
#include <string.h>
#include <re.h>
#include "jsonw.h"

enum {
	U64_DIGITS = 20,
	MEMBER_SZ = JSONW_KEY_MAX + 4 + U64_DIGITS,  /* ,"key":digits */
};


static int put(struct jsonw *w, const char *p, size_t n)
{
	return n ? w->pf->vph(p, n, w->pf->arg) : 0;
}


/** ',"key":' (no comma for the first member) into buf; its length */
static int member(size_t *np, char *buf, struct jsonw *w, const char *key)
{
	size_t kl = str_len(key), n = 0;

	if (kl > JSONW_KEY_MAX)
		return EINVAL;

	if (w->more)
		buf[n++] = ',';
	buf[n++] = '"';
	memcpy(buf + n, key, kl);
	n += kl;
	buf[n++] = '"';
	buf[n++] = ':';

	w->more = true;
	*np = n;
	return 0;
}


/** Start the top object */
int jsonw_begin(struct jsonw *w, struct re_printf *pf)
{
	if (!w || !pf)
		return EINVAL;

	w->pf = pf;
	w->more = false;
	return put(w, "{", 1);
}


/** Open an object as member key; jsonw_end() closes it */
int jsonw_object(struct jsonw *w, const char *key)
{
	char buf[MEMBER_SZ];
	size_t n;
	int err;

	if (!w)
		return EINVAL;

	err = member(&n, buf, w, key);
	if (err)
		return err;

	buf[n++] = '{';
	w->more = false;
	return put(w, buf, n);
}


/** Close the object opened last */
int jsonw_end(struct jsonw *w)
{
	if (!w)
		return EINVAL;

	w->more = true;
	return put(w, "}", 1);
}


int jsonw_uint(struct jsonw *w, const char *key, uint64_t v)
{
	char buf[MEMBER_SZ], digits[U64_DIGITS];
	size_t n, d = sizeof(digits);
	int err;

	if (!w)
		return EINVAL;

	err = member(&n, buf, w, key);
	if (err)
		return err;

	do {
		digits[--d] = (char)('0' + v % 10);
		v /= 10;
	} while (v);

	memcpy(buf + n, digits + d, sizeof(digits) - d);
	return put(w, buf, n + sizeof(digits) - d);
}


/** The letter of c's escape ('u': \u00XX), 0 if c goes as it is */
static char escape_letter(uint8_t c)
{
	if (c > '/' && c != '\\')
		return 0;

	switch (c) {

	case '"':  return '"';
	case '\\': return '\\';
	case '/':  return '/';
	case '\b': return 'b';
	case '\f': return 'f';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\t': return 't';
	default:   return c < ' ' ? 'u' : 0;
	}
}


static int escaped(struct jsonw *w, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const uint8_t c = (uint8_t)p[i];
		const char l = escape_letter(c);
		int err;

		if (!l)
			continue;

		const char esc[6] = {'\\', l, '0', '0', hex[c >> 4],
				     hex[c & 0xf]};

		err = put(w, p + run, i - run);
		if (!err)
			err = put(w, esc, l == 'u' ? sizeof(esc) : 2);
		if (err)
			return err;

		run = i + 1;
	}

	return put(w, p + run, n - run);
}


/** A string of n bytes; every byte is written (a NUL as \u0000) */
int jsonw_strn(struct jsonw *w, const char *key, const char *p, size_t n)
{
	char buf[MEMBER_SZ];
	size_t m;
	int err;

	if (!w || (!p && n))
		return EINVAL;

	err = member(&m, buf, w, key);
	if (err)
		return err;

	buf[m++] = '"';
	err = put(w, buf, m);
	if (!err)
		err = escaped(w, p, n);
	if (!err)
		err = put(w, "\"", 1);

	return err;
}


/** A string; nothing at all for a NULL one */
int jsonw_str(struct jsonw *w, const char *key, const char *s)
{
	return s ? jsonw_strn(w, key, s, strlen(s)) : 0;
}


int jsonw_bool(struct jsonw *w, const char *key, bool b)
{
	char buf[MEMBER_SZ];
	const char *v = b ? "true" : "false";
	size_t n;
	int err;

	if (!w)
		return EINVAL;

	err = member(&n, buf, w, key);
	if (err)
		return err;

	memcpy(buf + n, v, strlen(v));
	return put(w, buf, n + strlen(v));
}
