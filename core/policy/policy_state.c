/**
 * @file policy_state.c  Lua state of a policy: sandbox, memory, budget
 *
 * A policy is one Lua 5.4 state (struct policy_state) made from the policy
 * file: the file returns a table of hooks, and each hook is kept as a
 * registry reference, so the SIP path only has to look at one integer to
 * know that there is no on_initial_invite and go on with the default.
 *
 * Safety comes from four walls. The chunk runs with its own _ENV holding a
 * whitelist (no io, os.execute, load, debug, package, collectgarbage);
 * require() only reads plain-text .lua files from the project's lua/
 * directory. Each call has a budget of instructions and CPU time
 * (policy_budget.c), which C functions that could run long are made to
 * respect too (pattern matching: policy_pattern.c); past it the call
 * fails, and keeps failing on every instruction, so that a policy's own
 * pcall cannot swallow the error. The state's allocator refuses
 * memory past a fixed limit; Lua then collects, retries and raises "not
 * enough memory", which the host catches like any error. And every entry
 * into Lua, arguments included, runs inside lua_pcall, so a failure at any
 * point can only fail that call (policy_state_run); what to make of the
 * failure is the host's business (policy.c).
 *
 * Trade-off: the CPU time of one C function can only be stopped once it
 * returns; what one call of a library function may do is bounded by the
 * memory limit, or charged to the budget beforehand.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "log.h"
#include "policy.h"
#include "policy_int.h"

enum {
	PATH_SZ = 512,           /* a library module's file name */
};

static const char *const hook_names[POLICY_HOOK_COUNT] = {
	"on_initial_invite",
	"on_node_up",
	"on_node_down",
	"on_node_draining",
	"on_tick",
	"on_rehome_done",
	"on_load",
	"on_unload",
	"on_relay_down",
	"on_relay_up",
};

static const char *const SANDBOX = "rehome.sandbox";


static void policy_state_destructor(void *arg)
{
	struct policy_state *ps = arg;

	list_flush(&ps->timers);
	list_flush(&ps->ops);
	if (ps->L)
		lua_close(ps->L);
}


const char *policy_hook_name(enum policy_hook hook)
{
	return hook_names[hook];
}


/* ---- the state: memory, budget, protected calls ---- */

static void *state_mem(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct policy_state *ps = ud;
	void *p;

	if (!ptr)
		osize = 0;  /* Lua passes the object type here */

	if (!nsize) {
		free(ptr);
		ps->mem -= osize;
		return NULL;
	}

	/* Lua answers NULL with a full collection, a retry, then an error */
	if (nsize > osize && ps->mem + (nsize - osize) > POLICY_MEM_LIMIT)
		return NULL;

	p = realloc(ptr, nsize);
	if (p)
		ps->mem = ps->mem - osize + nsize;

	return p;
}


struct policy_state *policy_state_of(lua_State *L)
{
	void *ud;

	(void)lua_getallocf(L, &ud);
	return ud;
}


static int msgh(lua_State *L)
{
	if (!lua_isstring(L, 1))
		lua_pushfstring(L, "(error object is a %s value)",
				luaL_typename(L, 1));
	return 1;
}


/**
 * Run fn(ctx) in protected mode under the budget. Every entry into Lua
 * goes through here, and fn builds its arguments itself, so that even a
 * memory error while pushing them is caught. Nested calls (an action
 * reporting back while the hook that started it still runs) share the
 * outer call's budget. On error ps->err holds the message; ETIMEDOUT is an
 * exceeded budget, ENOMEM the memory limit.
 */
int policy_state_run(struct policy_state *ps, lua_CFunction fn, void *ctx)
{
	lua_State *L = ps->L;
	int status, err = 0;

	if (ps->depth++ == 0)
		policy_budget_start(ps);

	lua_pushcfunction(L, msgh);
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ctx);
	status = lua_pcall(L, 1, 0, -3);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);

		err = ps->over_budget      ? ETIMEDOUT
		    : status == LUA_ERRMEM ? ENOMEM
		    : EINVAL;
		str_ncpy(ps->err, msg ? msg : "unknown error",
			 sizeof(ps->err));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);

	if (--ps->depth == 0)
		policy_budget_stop(ps);

	return err;
}


/* ---- the sandbox ---- */

static const char *const base_names[] = {
	"assert", "error", "getmetatable", "ipairs", "next", "pairs",
	"pcall", "rawequal", "rawget", "rawlen", "rawset", "select",
	"tonumber", "tostring", "type", "_VERSION",
};

static const char *const os_names[] = {"clock", "date", "difftime", "time"};

static const luaL_Reg libs[] = {
	{LUA_STRLIBNAME,  luaopen_string},
	{LUA_TABLIBNAME,  luaopen_table},
	{LUA_MATHLIBNAME, luaopen_math},
	{LUA_UTF8LIBNAME, luaopen_utf8},
	{NULL, NULL}
};


/** print() goes to the log: a daemon's stdout is nobody's */
static int l_print(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		(void)luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);

	policy_log(L, LOG_INFO, lua_tostring(L, -1));
	return 0;
}


/** A finalizer would run at lua_close(), outside any budget */
static int l_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE &&
	    lua_getfield(L, 2, "__gc") != LUA_TNIL)
		return luaL_error(L, "__gc metamethods are not allowed");

	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, 2, 1);
	return 1;
}


/** A fresh _ENV: a shallow copy of the sandbox template */
static void push_env(lua_State *L)
{
	lua_newtable(L);
	lua_getfield(L, LUA_REGISTRYINDEX, SANDBOX);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -5);
	}
	lua_pop(L, 1);

	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "_G");
}


/** Compile a text chunk and give it a fresh sandbox as _ENV */
static int load_sandboxed(lua_State *L, const char *path)
{
	int status = luaL_loadfilex(L, path, "t");

	if (status != LUA_OK)
		return status;

	push_env(L);
	(void)lua_setupvalue(L, -2, 1);
	return LUA_OK;
}


static bool module_name_valid(const char *name)
{
	bool dot = true;  /* no leading dot */

	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (dot)
				return false;
			dot = true;
		}
		else if (isalnum((unsigned char)*p) || *p == '_') {
			dot = false;
		}
		else {
			return false;
		}
	}

	return !dot;
}


static int module_path(char *buf, size_t sz, const char *libdir,
		       const char *name)
{
	size_t off;

	if (!libdir)
		return ENOENT;
	if (!module_name_valid(name))
		return EINVAL;
	if (re_snprintf(buf, sz, "%s/%s.lua", libdir, name) < 0)
		return ENAMETOOLONG;

	off = strlen(libdir) + 1;
	for (size_t i = off; i < off + strlen(name); i++) {
		if (buf[i] == '.')
			buf[i] = '/';
	}

	return 0;
}


/** require(): only plain Lua from the policy library, each in a sandbox */
static int l_require(lua_State *L)
{
	const char *libdir = policy_state_of(L)->libdir;
	const char *name = luaL_checkstring(L, 1);
	char path[PATH_SZ];
	int status;

	lua_settop(L, 1);
	if (lua_getfield(L, lua_upvalueindex(1), name) != LUA_TNIL)
		return 1;

	if (module_path(path, sizeof(path), libdir, name))
		return luaL_error(L, "module '%s' not found: only modules of "
				  "the policy library can be required", name);

	status = load_sandboxed(L, path);
	if (status == LUA_ERRFILE)
		return luaL_error(L, "module '%s' not found in the policy "
				  "library %s", name, libdir);
	if (status != LUA_OK)
		return lua_error(L);

	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}

	lua_pushvalue(L, -1);
	lua_setfield(L, lua_upvalueindex(1), name);
	return 1;
}


static void copy_fields(lua_State *L, int from, int to,
			const char *const *names, size_t n)
{
	from = lua_absindex(L, from);
	for (size_t i = 0; i < n; i++) {
		lua_getfield(L, from, names[i]);
		lua_setfield(L, to, names[i]);
	}
}


/** The template every _ENV is copied from, in the registry */
static void sandbox_init(lua_State *L)
{
	int t, loaded;

	lua_newtable(L);
	t = lua_gettop(L);
	lua_newtable(L);
	loaded = lua_gettop(L);

	luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
	copy_fields(L, -1, t, base_names, ARRAY_SIZE(base_names));
	lua_getfield(L, -1, "setmetatable");
	lua_pushcclosure(L, l_setmetatable, 1);
	lua_setfield(L, t, "setmetatable");
	lua_pop(L, 1);

	for (const luaL_Reg *lib = libs; lib->name; lib++) {
		luaL_requiref(L, lib->name, lib->func, 0);
		lua_pushvalue(L, -1);
		lua_setfield(L, loaded, lib->name);
		lua_setfield(L, t, lib->name);
	}

	lua_getfield(L, t, LUA_STRLIBNAME);
	policy_pattern_open(L);
	lua_pop(L, 1);
	policy_budget_open(L, t);

	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_newtable(L);
	copy_fields(L, -2, lua_gettop(L), os_names, ARRAY_SIZE(os_names));
	lua_setfield(L, t, "os");
	lua_pop(L, 1);

	lua_pushcfunction(L, l_print);
	lua_setfield(L, t, "print");

	policy_bindings_open(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, loaded, "rehome");
	lua_setfield(L, t, "rehome");

	lua_pushcclosure(L, l_require, 1);  /* the loaded table as upvalue */
	lua_setfield(L, t, "require");

	lua_setfield(L, LUA_REGISTRYINDEX, SANDBOX);
}


/* ---- loading a policy file ---- */

static int hook_index(const char *name)
{
	for (int i = 0; i < POLICY_HOOK_COUNT; i++) {
		if (0 == strcmp(name, hook_names[i]))
			return i;
	}

	return -1;
}


/** Hooks from the returned table; a misspelt on_* name is an error */
static void hooks_collect(lua_State *L, struct policy_state *ps,
			  const char *path)
{
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key;
		int i;

		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 1);
			continue;
		}

		key = lua_tostring(L, -2);
		i = hook_index(key);
		if (i < 0 && 0 == strncmp(key, "on_", 3))
			luaL_error(L, "%s: unknown hook '%s'", path, key);
		if (i < 0) {
			lua_pop(L, 1);
			continue;
		}
		if (!lua_isfunction(L, -1))
			luaL_error(L, "%s: hook '%s' must be a function", path,
				   key);

		ps->hook[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	}
}


static int load_call(lua_State *L)
{
	const char *path = lua_touserdata(L, 1);

	sandbox_init(L);
	if (load_sandboxed(L, path) != LUA_OK)
		return lua_error(L);

	lua_call(L, 0, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "%s: a policy must return a table of "
				  "hooks, not %s", path, luaL_typename(L, -1));

	hooks_collect(L, policy_state_of(L), path);
	return 0;
}


/**
 * A new state from the policy file, its load-time code run. `libdir` and
 * `engine` are borrowed: they must outlive the state. On failure errbuf
 * holds the reason.
 */
int policy_state_load(struct policy_state **psp, const char *path,
		      const char *libdir, const struct policy_ops *engine,
		      char *errbuf, size_t errsz)
{
	struct policy_state *ps;
	int err;

	ps = mem_zalloc(sizeof(*ps), policy_state_destructor);
	if (!ps)
		return ENOMEM;

	ps->engine = engine;
	ps->libdir = libdir;
	for (int i = 0; i < POLICY_HOOK_COUNT; i++)
		ps->hook[i] = LUA_NOREF;

	ps->L = lua_newstate(state_mem, ps);
	if (!ps->L) {
		err = ENOMEM;
		re_snprintf(errbuf, errsz, "%s: no memory for a Lua state",
			    path);
		goto out;
	}

	err = policy_state_run(ps, load_call, (void *)path);
	if (err)
		str_ncpy(errbuf, ps->err, errsz);

 out:
	if (err)
		mem_deref(ps);
	else
		*psp = ps;

	return err;
}
