/**
 * @file jsonw.h  JSON objects written straight to a re_printf
 */

struct re_printf;

/** An object being written; keys are plain ASCII, up to JSONW_KEY_MAX */
struct jsonw {
	struct re_printf *pf;
	bool more;           /* the open object has a member: comma first */
};

enum { JSONW_KEY_MAX = 32 };

int jsonw_begin(struct jsonw *w, struct re_printf *pf);
int jsonw_object(struct jsonw *w, const char *key);
int jsonw_end(struct jsonw *w);
int jsonw_uint(struct jsonw *w, const char *key, uint64_t v);
int jsonw_str(struct jsonw *w, const char *key, const char *s);
int jsonw_strn(struct jsonw *w, const char *key, const char *p, size_t n);
int jsonw_bool(struct jsonw *w, const char *key, bool b);
