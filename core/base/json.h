/**
 * @file json.h  Building JSON objects (libre odicts) entry by entry
 */

struct odict;

/** Key of an element of a JSON array (an odict): its decimal index */
enum { JSON_INDEX_SZ = 16 };

int json_int_add(struct odict *od, const char *key, uint64_t v);
int json_str_add(struct odict *od, const char *key, const char *s);
int json_str_null_add(struct odict *od, const char *key, const char *s);
int json_bool_add(struct odict *od, const char *key, bool b);
int json_child_add(struct odict *od, const char *key, int type,
		   struct odict *child);
int json_array_add(struct odict *arr, uint32_t idx, int type,
		   struct odict *child);
