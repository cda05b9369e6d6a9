/**
 * @file test_bencode.c  Unit tests of the bencode codec
 *
 * Good documents are decoded and checked value by value, then encoded
 * back byte for byte. Bad ones come from a table, one kind of mistake a
 * row, each with the error it must give; the limits (depth, values, size)
 * are probed just below and just above, and every truncation of a good
 * document must be refused. Anything a relay sends goes through this
 * decoder, so none of it may crash, leak or be half accepted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "bencode.h"

/* rtpengine 10.5's reply to an offer, keys unsorted as it sends them */
static const char offer_reply[] =
	"d3:sdp50:v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 35100 RTP/AVP 0\r\n"
	"6:result2:oke";


static int decode(struct odict **odp, const char *s)
{
	return bencode_decode_odict(odp, 8, s, strlen(s), BENCODE_MAX_DEPTH);
}


/* Encode `od` and compare with `want` */
static void assert_encodes(const struct odict *od, const char *want)
{
	struct mbuf *mb = mbuf_alloc(64);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(mbuf_printf(mb, "%H", bencode_encode_odict, od), 0);
	ck_assert_uint_eq(mb->end, strlen(want));
	ck_assert_msg(!memcmp(mb->buf, want, mb->end), "got '%.*s'",
		      (int)mb->end, (char *)mb->buf);
	mem_deref(mb);
}


/* head + n times unit + tail, malloc'ed */
static char *repeat(const char *head, const char *unit, size_t n,
		    const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1);
	char *p = s;

	ck_assert_ptr_nonnull(s);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);

	return s;
}


START_TEST(test_decode_types)
{
	struct odict *od = NULL;
	const struct odict_entry *e;
	const struct odict *l, *d;

	ck_assert_int_eq(decode(&od, "d3:str5:hello3:inti-42e"
				"4:listl1:ai7ed1:xleee4:dictd0:0:ee"), 0);
	ck_assert_uint_eq(odict_count(od, false), 4);

	ck_assert_str_eq(odict_string(od, "str"), "hello");

	e = odict_get_type(od, ODICT_INT, "int");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->u.integer, -42);

	e = odict_get_type(od, ODICT_ARRAY, "list");
	ck_assert_ptr_nonnull(e);
	l = e->u.odict;
	ck_assert_uint_eq(odict_count(l, false), 3);
	ck_assert_str_eq(odict_string(l, "0"), "a");
	ck_assert_ptr_nonnull(odict_get_type(l, ODICT_INT, "1"));
	e = odict_get_type(l, ODICT_OBJECT, "2");
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(odict_get_type(e->u.odict, ODICT_ARRAY, "x"));

	e = odict_get_type(od, ODICT_OBJECT, "dict");
	ck_assert_ptr_nonnull(e);
	d = e->u.odict;
	ck_assert_str_eq(odict_string(d, ""), "");

	mem_deref(od);
}
END_TEST


START_TEST(test_decode_int_range)
{
	static const struct {
		const char *doc;
		int64_t v;
	} v[] = {
		{"d1:ai0ee", 0},
		{"d1:ai-1ee", -1},
		{"d1:ai9223372036854775807ee", INT64_MAX},
		{"d1:ai-9223372036854775808ee", INT64_MIN},
	};

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		struct odict *od = NULL;
		const struct odict_entry *e;

		ck_assert_msg(decode(&od, v[i].doc) == 0, "%s", v[i].doc);
		e = odict_get_type(od, ODICT_INT, "a");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->u.integer, v[i].v);
		mem_deref(od);
	}
}
END_TEST


START_TEST(test_decode_rtpengine_reply)
{
	struct odict *od = NULL;

	ck_assert_int_eq(decode(&od, offer_reply), 0);
	ck_assert_str_eq(odict_string(od, "result"), "ok");
	ck_assert_str_eq(odict_string(od, "sdp"),
			 "v=0\r\nc=IN IP4 127.0.0.1\r\n"
			 "m=audio 35100 RTP/AVP 0\r\n");
	assert_encodes(od, offer_reply);
	mem_deref(od);
}
END_TEST


/* Bad documents and the error each must give */
static const struct bad {
	const char *doc;
	int err;
} badv[] = {
	{"", EBADMSG},
	{"l1:ae", EBADMSG},                 /* the top is a dictionary */
	{"3:abc", EBADMSG},
	{"i1e", EBADMSG},
	{"d", EBADMSG},                     /* truncated */
	{"d1:a", EBADMSG},
	{"d1:ai1", EBADMSG},
	{"d1:al", EBADMSG},
	{"d1:a3:ab", EBADMSG},
	{"d1:a3", EBADMSG},
	{"dee", EBADMSG},                   /* trailing bytes */
	{"dexyz", EBADMSG},
	{"de de", EBADMSG},
	{"d1:ae", EBADMSG},                 /* key without value */
	{"di1e1:ae", EBADMSG},              /* key not a string */
	{"dld1:a1:be", EBADMSG},
	{"d1:a1:b1:a1:ce", EBADMSG},        /* repeated key */
	{"d1:ai01ee", EBADMSG},             /* leading zero */
	{"d1:ai-01ee", EBADMSG},
	{"d1:ai00ee", EBADMSG},
	{"d1:ai-0ee", EBADMSG},
	{"d1:aiee", EBADMSG},
	{"d1:ai-ee", EBADMSG},
	{"d1:ai+1ee", EBADMSG},
	{"d1:ai1.5ee", EBADMSG},
	{"d1:ai 1ee", EBADMSG},
	{"d1:ai9223372036854775808ee", EBADMSG},  /* past INT64_MAX */
	{"d1:ai-9223372036854775809ee", EBADMSG},
	{"d1:ai99999999999999999999999ee", EBADMSG},
	{"d01:a1:be", EBADMSG},             /* leading zero in a length */
	{"d1:a00:e", EBADMSG},
	{"d1:a-1:e", EBADMSG},
	{"d1:a:e", EBADMSG},
	{"d1:a2:ae", EBADMSG},              /* length past the end */
	{"d1:a9:abce", EBADMSG},
	{"d1:a4294967297:abce", EBADMSG},   /* wraps 32 bits */
	{"d1:a99999999999999999999:abce", EBADMSG},  /* wraps 64 bits */
	{"d1:a1048577:xe", EBADMSG},        /* over the size limit */
	{"d1:ax1:be", EBADMSG},             /* not a type */
	{"d1:aXe", EBADMSG},
	{"d1:ale1:", EBADMSG},
};


START_TEST(test_decode_bad)
{
	const struct bad *b = &badv[_i];
	struct odict *od = NULL;

	ck_assert_msg(decode(&od, b->doc) == b->err, "case %d: '%s'", _i,
		      b->doc);
	ck_assert_ptr_null(od);
}
END_TEST


/* Strings are copied by length: a NUL inside cannot be kept, so refused */
START_TEST(test_decode_nul_in_string)
{
	static const char val[] = "d1:a3:a\0be";
	static const char key[] = "d3:a\0b1:xe";
	static const char ok[] = "d1:a3:abce";
	struct odict *od = NULL;

	ck_assert_int_eq(bencode_decode_odict(&od, 8, val, sizeof(val) - 1, 8),
			 EBADMSG);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, key, sizeof(key) - 1, 8),
			 EBADMSG);

	/* not NUL-terminated: the length given is all that is read */
	ck_assert_int_eq(bencode_decode_odict(&od, 8, ok, 9, 8), EBADMSG);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, ok, 10, 8), 0);
	ck_assert_str_eq(odict_string(od, "a"), "abc");
	mem_deref(od);
}
END_TEST


/* Every proper prefix of a good document is refused */
START_TEST(test_decode_truncated)
{
	static const char doc[] = "d3:str5:hello3:inti-42e"
		"4:listl1:ai7ed1:xleee4:dictd0:0:ee";
	struct odict *od = NULL;

	for (size_t n = 0; n < sizeof(doc) - 1; n++) {
		ck_assert_msg(bencode_decode_odict(&od, 8, doc, n, 32) ==
			      EBADMSG, "prefix of %zu bytes accepted", n);
		ck_assert_ptr_null(od);
	}
}
END_TEST


/* Depth: the top dictionary is 1; "d1:a" + n lists is n + 1 */
static int decode_depth(size_t lists, unsigned maxdepth)
{
	char *s = repeat("d1:a", "l", lists, "");
	char *doc = repeat(s, "e", lists, "e");
	struct odict *od = NULL;
	int err;

	err = bencode_decode_odict(&od, 8, doc, strlen(doc), maxdepth);
	mem_deref(od);
	free(s);
	free(doc);

	return err;
}


START_TEST(test_depth_limit)
{
	ck_assert_int_eq(decode_depth(3, 4), 0);
	ck_assert_int_eq(decode_depth(4, 4), EOVERFLOW);
	ck_assert_int_eq(decode_depth(BENCODE_MAX_DEPTH - 1, 1000), 0);
	ck_assert_int_eq(decode_depth(BENCODE_MAX_DEPTH, 1000), EOVERFLOW);

	/* a nesting bomb: refused at the limit, not after 100000 levels */
	ck_assert_int_eq(decode_depth(100000, BENCODE_MAX_DEPTH), EOVERFLOW);
}
END_TEST


static int decode_items(size_t n)
{
	char *doc = repeat("d1:al", "le", n, "ee");
	struct odict *od = NULL;
	int err;

	err = bencode_decode_odict(&od, 8, doc, strlen(doc), 8);
	mem_deref(od);
	free(doc);

	return err;
}


START_TEST(test_items_limit)
{
	/* the list holding them is one value too */
	ck_assert_int_eq(decode_items(BENCODE_MAX_ITEMS - 1), 0);
	ck_assert_int_eq(decode_items(BENCODE_MAX_ITEMS), EOVERFLOW);
}
END_TEST


START_TEST(test_size_limit)
{
	size_t n = BENCODE_MAX_SIZE - 13;   /* "d1:a" + "1048563:" + "e" */
	char *doc = malloc(BENCODE_MAX_SIZE + 1);
	struct odict *od = NULL;
	int len;

	ck_assert_ptr_nonnull(doc);
	len = re_snprintf(doc, 32, "d1:a%zu:", n);
	ck_assert_int_eq(len, 12);
	memset(doc + len, 'x', n);
	doc[len + n] = 'e';

	ck_assert_int_eq(bencode_decode_odict(&od, 8, doc, BENCODE_MAX_SIZE,
					      8), 0);
	ck_assert_uint_eq(strlen(odict_string(od, "a")), n);
	od = mem_deref(od);

	doc[len + n] = 'x';
	doc[len + n + 1] = 'e';
	ck_assert_int_eq(bencode_decode_odict(&od, 8, doc,
					      BENCODE_MAX_SIZE + 1, 8),
			 EOVERFLOW);
	ck_assert_ptr_null(od);
	free(doc);
}
END_TEST


START_TEST(test_decode_args)
{
	struct odict *od = NULL;

	ck_assert_int_eq(bencode_decode_odict(NULL, 8, "de", 2, 8), EINVAL);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, NULL, 2, 8), EINVAL);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, NULL, 0, 8), EBADMSG);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, "de", 2, 0), EOVERFLOW);
	ck_assert_int_eq(bencode_decode_odict(&od, 8, "de", 2, 1), 0);
	ck_assert_uint_eq(odict_count(od, false), 0);
	mem_deref(od);
}
END_TEST


START_TEST(test_encode)
{
	struct odict *od = NULL, *list = NULL, *sub = NULL;

	ck_assert_int_eq(odict_alloc(&od, 8), 0);
	ck_assert_int_eq(odict_alloc(&list, 8), 0);
	ck_assert_int_eq(odict_alloc(&sub, 8), 0);

	ck_assert_int_eq(odict_entry_add(sub, "k", ODICT_INT,
					 (int64_t)INT64_MIN), 0);
	ck_assert_int_eq(odict_entry_add(list, "0", ODICT_STRING, "x"), 0);
	ck_assert_int_eq(odict_entry_add(list, "1", ODICT_OBJECT, sub), 0);
	ck_assert_int_eq(odict_entry_add(od, "command", ODICT_STRING,
					 "offer"), 0);
	ck_assert_int_eq(odict_entry_add(od, "flags", ODICT_ARRAY, list), 0);
	ck_assert_int_eq(odict_entry_add(od, "n", ODICT_INT, (int64_t)7), 0);
	ck_assert_int_eq(odict_entry_add(od, "empty", ODICT_STRING, ""), 0);

	assert_encodes(od, "d7:command5:offer5:flagsl1:xd1:ki"
		       "-9223372036854775808eee1:ni7e5:empty0:e");

	mem_deref(sub);
	mem_deref(list);
	mem_deref(od);
}
END_TEST


/* bencode has no double, boolean or null */
START_TEST(test_encode_unsupported)
{
	struct odict *od = NULL;
	struct mbuf *mb = mbuf_alloc(64);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(odict_alloc(&od, 8), 0);
	ck_assert_int_eq(odict_entry_add(od, "b", ODICT_BOOL, true), 0);
	ck_assert_int_eq(mbuf_printf(mb, "%H", bencode_encode_odict, od),
			 EINVAL);
	ck_assert_int_eq(mbuf_printf(mb, "%H", bencode_encode_odict, NULL),
			 EINVAL);

	mem_deref(od);
	mem_deref(mb);
}
END_TEST


/* Entries alone, after entries of the caller's own */
START_TEST(test_encode_entries)
{
	struct odict *od = NULL;
	struct mbuf *mb = mbuf_alloc(64);

	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(odict_alloc(&od, 8), 0);
	ck_assert_int_eq(odict_entry_add(od, "call-id", ODICT_STRING, "c1"),
			 0);
	ck_assert_int_eq(mbuf_printf(mb, "d%H%H%H%He",
				     bencode_encode_str, "command",
				     bencode_encode_str, "query",
				     bencode_encode_entries, od,
				     bencode_encode_entries, NULL), 0);
	ck_assert_uint_eq(mb->end, 31);
	ck_assert(!memcmp(mb->buf, "d7:command5:query7:call-id2:c1e", 31));

	mem_deref(od);
	mem_deref(mb);
}
END_TEST


/* decode(encode(decode(x))) is decode(x), and the encoding is stable */
START_TEST(test_round_trip)
{
	static const char *docs[] = {
		"de",
		"d1:ai0e1:bi-1e1:cle1:ddee",
		"d4:listl1:ai7ed1:xleee4:dictd0:0:ee",
		offer_reply,
	};

	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		struct odict *od = NULL;

		ck_assert_int_eq(decode(&od, docs[i]), 0);
		assert_encodes(od, docs[i]);
		mem_deref(od);
	}
}
END_TEST


static Suite *bencode_suite(void)
{
	Suite *s = suite_create("bencode");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_decode_types);
	tcase_add_test(tc, test_decode_int_range);
	tcase_add_test(tc, test_decode_rtpengine_reply);
	tcase_add_loop_test(tc, test_decode_bad, 0, ARRAY_SIZE(badv));
	tcase_add_test(tc, test_decode_nul_in_string);
	tcase_add_test(tc, test_decode_truncated);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_items_limit);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_decode_args);
	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_encode_unsupported);
	tcase_add_test(tc, test_encode_entries);
	tcase_add_test(tc, test_round_trip);
	suite_add_tcase(s, tc);

	return s;
}


#include "../check_main.h"

int main(void)
{
	return check_main(bencode_suite());
}
