/**
 * @file policy_handover.c  A policy's state across a reload: on_unload, on_load
 *
 * Before a new version replaces the running policy, the old one may return
 * its state from on_unload(); the new one receives it in on_load(state),
 * which every load calls (with nil the first time, or when there is
 * nothing to hand over). The two versions are separate Lua states, so the
 * state crosses as plain data, never as live objects: on_unload's value is
 * copied into an odict inside the old state's protected call, and rebuilt
 * as fresh tables inside the new one's. Tables, strings, numbers (integers
 * stay integers) and booleans cross; a table is a list (keys 1..n) or has
 * string keys only; a function, a userdata, a cycle or more than
 * POLICY_HANDOVER_MAX bytes is refused.
 *
 * A failed on_unload is logged and counted like any hook and the new
 * version starts with nil: refusing the reload would let a broken
 * on_unload keep its own fix out. A failed on_load fails the load, like
 * an error in load-time code, and the old version keeps running; so
 * on_unload must not change anything (a reload may not happen after it).
 *
 * Trade-off: a copy, bounded, on every reload, in exchange for versions
 * that share nothing (and a budget and memory limit each).
 */
#include <string.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include "policy.h"
#include "policy_int.h"

enum {
	POLICY_HANDOVER_MAX   = 1024 * 1024,  /* bytes of state, about     */
	POLICY_HANDOVER_DEPTH = 32,           /* nested tables             */
	VALUE_COST            = 16,           /* bytes counted per value   */
	KEY_SZ                = 16,           /* a list index as a key     */
};

static const char STATE_KEY[] = "state";  /* the root, in its wrapper */

/** on_unload's value being copied out of the old state */
struct save_ctx {
	struct odict *od;        /* {"state": value}; NULL: nothing to copy */
	size_t size;             /* bytes counted so far */
};


static void value_add(lua_State *L, int idx, struct odict *od,
		      const char *key, struct save_ctx *ctx, unsigned depth);


static void size_charge(lua_State *L, struct save_ctx *ctx, size_t n)
{
	ctx->size += VALUE_COST + n;
	if (ctx->size > POLICY_HANDOVER_MAX)
		luaL_error(L, "on_unload: state larger than %d bytes",
			   POLICY_HANDOVER_MAX);

	policy_budget_charge(L, 1);
}


static const char *plain_string(lua_State *L, int idx, size_t *lenp)
{
	const char *s = lua_tolstring(L, idx, lenp);

	if (strlen(s) != *lenp)
		luaL_error(L, "on_unload: a string with a NUL byte cannot cross "
			   "a reload");

	return s;
}


/** A list: keys exactly 1..n, n > 0 */
static bool is_list(lua_State *L, int idx)
{
	lua_Unsigned n = lua_rawlen(L, idx), keys = 0;

	if (!n)
		return false;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (++keys > n) {
			lua_pop(L, 1);
			return false;
		}
	}

	return keys == n;
}


static void table_add(lua_State *L, int idx, struct odict *od,
		      const char *key, struct save_ctx *ctx, unsigned depth)
{
	const bool list = is_list(L, idx);
	struct odict *t = NULL;
	int err;

	if (depth >= POLICY_HANDOVER_DEPTH)
		luaL_error(L, "on_unload: state nested deeper than %d tables "
			   "(or a cycle)", POLICY_HANDOVER_DEPTH);

	/* the parent holds the table at once: a Lua error cannot leak it */
	err = odict_alloc(&t, 8);
	if (!err)
		err = odict_entry_add(od, key, list ? ODICT_ARRAY : ODICT_OBJECT,
				      t);
	mem_deref(t);
	if (err)
		luaL_error(L, "on_unload: out of memory");

	luaL_checkstack(L, 4, "on_unload: state nested too deep");
	if (list) {
		lua_Unsigned n = lua_rawlen(L, idx);

		for (lua_Unsigned i = 1; i <= n; i++) {
			char k[KEY_SZ];

			(void)re_snprintf(k, sizeof(k), "%llu",
					  (unsigned long long)i - 1);
			lua_rawgeti(L, idx, (lua_Integer)i);
			value_add(L, lua_gettop(L), t, k, ctx, depth + 1);
			lua_pop(L, 1);
		}
		return;
	}

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t len;
		const char *k;

		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "on_unload: a state table has string "
				   "keys only, or is a list");

		k = plain_string(L, -2, &len);
		size_charge(L, ctx, len);
		value_add(L, lua_gettop(L), t, k, ctx, depth + 1);
		lua_pop(L, 1);
	}
}


/** The Lua value at idx as entry `key` of od (nil: no entry) */
static void value_add(lua_State *L, int idx, struct odict *od,
		      const char *key, struct save_ctx *ctx, unsigned depth)
{
	const char *s;
	size_t len = 0;
	int err;

	switch (lua_type(L, idx)) {

	case LUA_TNIL:
		return;

	case LUA_TBOOLEAN:
		size_charge(L, ctx, 0);
		err = odict_entry_add(od, key, ODICT_BOOL,
				      (bool)lua_toboolean(L, idx));
		break;

	case LUA_TNUMBER:
		size_charge(L, ctx, 0);
		if (lua_isinteger(L, idx))
			err = odict_entry_add(od, key, ODICT_INT,
					      (int64_t)lua_tointeger(L, idx));
		else
			err = odict_entry_add(od, key, ODICT_DOUBLE,
					      (double)lua_tonumber(L, idx));
		break;

	case LUA_TSTRING:
		s = plain_string(L, idx, &len);
		size_charge(L, ctx, len);
		err = odict_entry_add(od, key, ODICT_STRING, s);
		break;

	case LUA_TTABLE:
		size_charge(L, ctx, 0);
		table_add(L, idx, od, key, ctx, depth);
		return;

	default:
		luaL_error(L, "on_unload: a %s cannot cross a reload (tables, "
			   "strings, numbers and booleans can)",
			   luaL_typename(L, idx));
		return;
	}

	if (err)
		luaL_error(L, "on_unload: out of memory");
}


static int unload_call(lua_State *L)
{
	struct save_ctx *ctx = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX,
		    policy_state_of(L)->hook[POLICY_HOOK_UNLOAD]);
	lua_call(L, 0, 1);
	value_add(L, lua_gettop(L), ctx->od, STATE_KEY, ctx, 0);
	return 0;
}


/** What the old version hands over, or NULL (none, or its error logged) */
static struct odict *state_save(struct policy_state *old)
{
	struct save_ctx ctx = {NULL, 0};

	if (!old || old->hook[POLICY_HOOK_UNLOAD] == LUA_NOREF)
		return NULL;

	if (odict_alloc(&ctx.od, 2))
		return NULL;

	if (policy_hook_run(old, "on_unload", unload_call, &ctx))
		ctx.od = mem_deref(ctx.od);

	return ctx.od;
}


static int load_call(lua_State *L)
{
	const struct odict *state = lua_touserdata(L, 1);
	const struct odict_entry *e = state ? odict_lookup(state, STATE_KEY)
					    : NULL;

	lua_rawgeti(L, LUA_REGISTRYINDEX,
		    policy_state_of(L)->hook[POLICY_HOOK_LOAD]);
	if (!e || !policy_push_entry(L, e))
		lua_pushnil(L);

	lua_call(L, 1, 0);
	return 0;
}


/**
 * Start the freshly loaded `ps`: on_load with what `old` (NULL: none)
 * returns from on_unload. On error (on_load failed: the load fails)
 * errbuf holds the reason, FILE:LINE: message.
 */
int policy_handover(struct policy_state *ps, struct policy_state *old,
		    char *errbuf, size_t errsz)
{
	struct odict *state;
	int err = 0;

	if (ps->hook[POLICY_HOOK_LOAD] == LUA_NOREF)
		return 0;

	state = state_save(old);
	err = policy_state_run(ps, load_call, state);
	if (err)
		str_ncpy(errbuf, ps->err, errsz);

	mem_deref(state);
	return err;
}
