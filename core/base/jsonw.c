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


/** ',"key":' (no comma for the first member) then n bytes of value, in
    one call of the printer */
static int member_put(struct jsonw *w, const char *key, const char *v,
		      size_t n)
{
	char buf[MEMBER_SZ];
	size_t kl = str_len(key), m = 0;

	if (!w || kl > JSONW_KEY_MAX || n > U64_DIGITS)
		return EINVAL;

	if (w->more)
		buf[m++] = ',';
	buf[m++] = '"';
	memcpy(buf + m, key, kl);
	m += kl;
	buf[m++] = '"';
	buf[m++] = ':';
	memcpy(buf + m, v, n);

	w->more = true;
	return put(w, buf, m + n);
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
	int err = member_put(w, key, "{", 1);

	if (!err)
		w->more = false;

	return err;
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
	char digits[U64_DIGITS];
	size_t d = sizeof(digits);

	do {
		digits[--d] = (char)('0' + v % 10);
		v /= 10;
	} while (v);

	return member_put(w, key, digits + d, sizeof(digits) - d);
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
	int err;

	if (!p && n)
		return EINVAL;

	err = member_put(w, key, "\"", 1);
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
	return b ? member_put(w, key, "true", 4)
		 : member_put(w, key, "false", 5);
}
