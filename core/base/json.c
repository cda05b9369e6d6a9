/**
 * @file json.c  Building JSON objects (libre odicts) entry by entry
 *
 * Every view the engine serves (control API, policies, messages between
 * nodes) is an odict filled one key at a time. These helpers keep the
 * conventions in one place: integers are unsigned counters or times, a
 * missing string is either left out or an explicit null (the caller says
 * which), and a child object or array is handed over, so the caller drops
 * its reference whatever happens. Errors are returned, never logged, so
 * that a caller can OR a run of additions and check once.
 */
#include <re.h>
#include "json.h"


int json_int_add(struct odict *od, const char *key, uint64_t v)
{
	return odict_entry_add(od, key, ODICT_INT, (int64_t)v);
}


/** A string entry; no entry for a NULL string */
int json_str_add(struct odict *od, const char *key, const char *s)
{
	return s ? odict_entry_add(od, key, ODICT_STRING, s) : 0;
}


/** A string entry, or null for a NULL string */
int json_str_null_add(struct odict *od, const char *key, const char *s)
{
	return s ? odict_entry_add(od, key, ODICT_STRING, s) :
		odict_entry_add(od, key, ODICT_NULL);
}


int json_bool_add(struct odict *od, const char *key, bool b)
{
	return odict_entry_add(od, key, ODICT_BOOL, b);
}


/**
 * Add `child` (ODICT_OBJECT or ODICT_ARRAY) under `key` and drop the
 * caller's reference, also on error (a NULL child is ENOMEM: the
 * allocation that should have made it failed).
 */
int json_child_add(struct odict *od, const char *key, int type,
		   struct odict *child)
{
	int err = child ? odict_entry_add(od, key, type, child) : ENOMEM;

	mem_deref(child);
	return err;
}


/**
 * Add `child` as entry `idx` of the array `arr`, as json_child_add(); the
 * caller counts (odict_count() would walk the whole array each time).
 */
int json_array_add(struct odict *arr, uint32_t idx, int type,
		   struct odict *child)
{
	char key[JSON_INDEX_SZ];

	(void)re_snprintf(key, sizeof(key), "%u", idx);
	return json_child_add(arr, key, type, child);
}
