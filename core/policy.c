/**
 * @file policy.c  Lua policy host: hooks, sandbox, budget, hot reload
 *
 * A policy is one Lua 5.4 state (struct pstate) made from the policy file:
 * the file returns a table of hooks, and each hook is kept as a registry
 * reference, so the SIP path only has to look at one integer to know that
 * there is no on_initial_invite and go on with the default.
 *
 * Safety comes from four walls. The chunk runs with its own _ENV holding a
 * whitelist (no io, os.execute, load, debug, package, collectgarbage);
 * require() only reads plain-text .lua files from the project's lua/
 * directory. A count hook charges every 1000 VM instructions to the call,
 * and past the budget raises an error on every instruction, so that a
 * policy's own pcall cannot swallow it. The state's allocator refuses
 * memory past a fixed limit; Lua then collects, retries and raises "not
 * enough memory", which the host catches like any error. And every entry
 * into Lua, arguments included, runs inside lua_pcall, so a failure at any
 * point can only fail that call: the hook's error is logged with its
 * file:line, counted, and the caller applies the default behaviour.
 *
 * An overrun (budget or memory) costs the SIP loop milliseconds, and a
 * hook that overran once will likely do it on every call: at 50 calls per
 * second a memory bomb alone would stall the loop for good. So a hook that
 * overran is held back, the default applying without running it, for a
 * second, twice as long after each overrun in a row, up to a minute; the
 * next run that ends well clears the back-off. A plain error() is cheap
 * and may concern only some calls, so it holds nothing back.
 *
 * Reload builds a complete new state and runs its load-time code; only if
 * that succeeds is the old state dropped, with its timers and the callbacks
 * of its pending actions. Actions (take, rehome, move) are asynchronous:
 * the engine reports their end through a done handler whose argument is a
 * token looked up among the running policy's pending actions, never a
 * pointer, so a late report after a reload is simply ignored.
 *
 * The file is watched through its directory (editors that write a new file
 * and rename it over the old one replace the inode a file watch would
 * follow), events are debounced, and SIGHUP is taken with a libuv signal
 * handle, since libre's main loop only owns SIGINT, SIGTERM and SIGALRM.
 *
 * Trade-offs: one state per node, so hooks run one at a time on the SIP
 * loop; a budget in instructions does not bound time spent inside one C
 * function (string.rep, table.sort), which the memory limit bounds instead.
 */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "metrics.h"
#include "ctl.h"
#include "policy.h"

enum {
	BUDGET_STEP = 1000,      /* instructions between two budget checks */
	HOLD_MIN_MS = 1000,      /* a hook that overran is held back ...    */
	HOLD_MAX_MS = 60000,     /* ... doubling per overrun, up to this    */
	HOLD_SHIFT_MAX = 6,      /* 1000 << 6 > HOLD_MAX_MS                 */
};

enum hook {
	HOOK_INITIAL_INVITE,
	HOOK_NODE_UP,
	HOOK_NODE_DOWN,
	HOOK_NODE_DRAINING,
	HOOK_TICK,
	HOOK_REHOME_DONE,
	HOOK_COUNT
};

static const char *const hook_names[HOOK_COUNT] = {
	"on_initial_invite",
	"on_node_up",
	"on_node_down",
	"on_node_draining",
	"on_tick",
	"on_rehome_done",
};

static const char *const ODICT_BOX = "rehome.odict";
static const char *const SANDBOX   = "rehome.sandbox";

/** Back-off of a hook that overran its budget or memory */
struct hold {
	uint64_t until;          /* jiffies: not run before then */
	unsigned overruns;       /* in a row                      */
};

/** One loaded policy: its Lua state and what hangs off it */
struct pstate {
	lua_State *L;
	int hook[HOOK_COUNT];    /* registry refs, LUA_NOREF when absent   */
	struct hold hold[HOOK_COUNT];
	struct list timers;      /* rehome.after() still to fire           */
	struct list ops;         /* actions waiting for their done handler */
	size_t mem;              /* bytes held by L                        */
	uint64_t insns;          /* instructions run in the current call   */
	unsigned depth;          /* calls into L in progress               */
	bool over_budget;
	char err[256];           /* message of the last failed call        */
};

/** A rehome.after(ms, fn) */
struct ptimer {
	struct le le;
	struct tmr tmr;
	struct pstate *ps;
	int fn;
};

/** An action with a Lua done function, waiting for the engine's report */
struct pop {
	struct le le;
	uintptr_t id;            /* the token given to the engine */
	int fn;
};

static struct {
	struct policy_ops ops;
	char *path;              /* NULL: no policy configured */
	const char *base;        /* file name part of path     */
	char *libdir;
	struct pstate *ps;       /* the running policy, or NULL */
	struct tmr tick;
	struct tmr debounce;
	struct tmr refresh;      /* fresh load after memory exhaustion */
	uv_fs_event_t *watch;
	uv_signal_t *sighup;
	uintptr_t last_op;
	char last_err[256];
} pol;


static void pstate_destructor(void *arg)
{
	struct pstate *ps = arg;

	list_flush(&ps->timers);
	list_flush(&ps->ops);
	if (ps->L)
		lua_close(ps->L);
}


static void ptimer_destructor(void *arg)
{
	struct ptimer *t = arg;

	tmr_cancel(&t->tmr);
	list_unlink(&t->le);
}


static void pop_destructor(void *arg)
{
	struct pop *op = arg;

	list_unlink(&op->le);
}


/* ---- the state: memory, budget, protected calls ---- */

static void *pstate_mem(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pstate *ps = ud;
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


static struct pstate *pstate_of(lua_State *L)
{
	void *ud;

	(void)lua_getallocf(L, &ud);
	return ud;
}


static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct pstate *ps = pstate_of(L);
	(void)ar;

	ps->insns += BUDGET_STEP;
	if (ps->insns <= POLICY_INSN_BUDGET)
		return;

	/* from now on every instruction fails: pcall cannot catch it all */
	ps->over_budget = true;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);

	luaL_where(L, 0);
	lua_pushfstring(L, "instruction budget of %d exceeded",
			POLICY_INSN_BUDGET);
	lua_concat(L, 2);
	lua_error(L);
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
 * outer call's budget.
 */
static int pstate_run(struct pstate *ps, lua_CFunction fn, void *ctx)
{
	lua_State *L = ps->L;
	int status, err = 0;

	if (ps->depth++ == 0) {
		ps->insns = 0;
		ps->over_budget = false;
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, BUDGET_STEP);
	}

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
		lua_sethook(L, NULL, 0, 0);

	return err;
}


static int reload(char *errbuf, size_t errsz, bool refresh);


static void reload_handler(void *arg)
{
	char msg[256];
	(void)arg;

	(void)policy_reload(msg, sizeof(msg));
}


/** The same file again, for memory (see memory_check) */
static void refresh_handler(void *arg)
{
	char msg[256];
	(void)arg;

	(void)reload(msg, sizeof(msg), true);
}


/** After a memory error: if the policy's own data fills the state, the
 * next call would fail the same way, so start again from the file. */
static void memory_check(struct pstate *ps)
{
	lua_gc(ps->L, LUA_GCCOLLECT);
	if (ps->mem < POLICY_MEM_LIMIT / 2)
		return;

	log_warn("policy", "state still holds %zu KiB after a memory error:"
		 " loading %s afresh", ps->mem / 1024, pol.path);
	tmr_start(&pol.refresh, 0, refresh_handler, NULL);
}


/** pstate_run for hooks and callbacks: failures are reported here */
static int hook_run(struct pstate *ps, const char *what, lua_CFunction fn,
		    void *ctx)
{
	int err = pstate_run(ps, fn, ctx);

	if (!err)
		return 0;

	log_warn("policy", "%s: %s (default behaviour applies)", what,
		 ps->err);
	re_snprintf(pol.last_err, sizeof(pol.last_err), "%s: %s", what,
		    ps->err);
	metrics_policy_event(err == ETIMEDOUT ? "budget_exceeded"
					      : "hook_error");
	if (err == ENOMEM)
		memory_check(ps);

	return err;
}


/** hook_run for a hook, with the back-off after overruns; EAGAIN: held */
static int hook_call(struct pstate *ps, enum hook hook, lua_CFunction fn,
		     void *ctx)
{
	struct hold *hold = &ps->hold[hook];
	uint64_t ms;
	int err;

	if (tmr_jiffies() < hold->until) {
		metrics_policy_event("hook_held");
		return EAGAIN;
	}

	err = hook_run(ps, hook_names[hook], fn, ctx);
	if (err != ETIMEDOUT && err != ENOMEM) {
		hold->overruns = 0;
		return err;
	}

	ms = min((uint64_t)HOLD_MIN_MS << min(hold->overruns,
					      (unsigned)HOLD_SHIFT_MAX),
		 (uint64_t)HOLD_MAX_MS);
	hold->overruns++;
	hold->until = tmr_jiffies() + ms;
	log_warn("policy", "%s held back for %llu ms after %u overrun(s)",
		 hook_names[hook], (unsigned long long)ms, hold->overruns);

	return err;
}


/* ---- values between C and Lua ---- */

static void push_odict(lua_State *L, const struct odict *od, bool array);


static bool push_entry(lua_State *L, const struct odict_entry *e)
{
	switch (e->type) {

	case ODICT_OBJECT: push_odict(L, e->u.odict, false);   break;
	case ODICT_ARRAY:  push_odict(L, e->u.odict, true);    break;
	case ODICT_STRING: lua_pushstring(L, e->u.str);        break;
	case ODICT_INT:    lua_pushinteger(L, e->u.integer);   break;
	case ODICT_DOUBLE: lua_pushnumber(L, e->u.dbl);        break;
	case ODICT_BOOL:   lua_pushboolean(L, e->u.boolean);   break;
	default:           return false;  /* null: absent in Lua */
	}

	return true;
}


/** An odict as a table: an array keeps the order, null entries vanish */
static void push_odict(lua_State *L, const struct odict *od, bool array)
{
	lua_Integer n = 0;
	struct le *le;

	luaL_checkstack(L, 4, "odict nested too deep");
	lua_newtable(L);
	if (!od)
		return;

	LIST_FOREACH(&od->lst, le) {
		const struct odict_entry *e = le->data;

		if (!push_entry(L, e))
			continue;

		if (array)
			lua_rawseti(L, -2, ++n);
		else
			lua_setfield(L, -2, e->key);
	}
}


static int odict_box_gc(lua_State *L)
{
	struct odict **box = luaL_checkudata(L, 1, ODICT_BOX);

	*box = mem_deref(*box);
	return 0;
}


/** A slot for an odict the engine hands over: freed even if Lua errors */
static struct odict **odict_box(lua_State *L)
{
	struct odict **box = lua_newuserdatauv(L, sizeof(*box), 0);

	*box = NULL;
	luaL_setmetatable(L, ODICT_BOX);
	return box;
}


static void push_errstr(lua_State *L, int err)
{
	char buf[128];

	lua_pushstring(L, err == ENOSYS ? "not supported"
			  : str_error(err, buf, sizeof(buf)));
}


/** Lua's convention: true, or nil and a message */
static int push_result(lua_State *L, int err)
{
	if (!err) {
		lua_pushboolean(L, 1);
		return 1;
	}

	lua_pushnil(L);
	push_errstr(L, err);
	return 2;
}


/** A list from the engine: the table, or nil and the error */
static int push_list(lua_State *L, int err, struct odict **box)
{
	if (err)
		return push_result(L, err);

	push_odict(L, *box, true);
	*box = mem_deref(*box);
	return 1;
}


static const char *field_string(lua_State *L, int t, const char *key,
				bool required)
{
	int type = lua_getfield(L, t, key);

	if (type == LUA_TNIL && !required)
		return NULL;
	if (type != LUA_TSTRING)
		luaL_error(L, "field '%s' must be a string", key);

	return lua_tostring(L, -1);
}


static uint32_t field_uint(lua_State *L, int t, const char *key)
{
	lua_Integer v;
	int isnum;

	if (lua_getfield(L, t, key) == LUA_TNIL)
		return 0;

	v = lua_tointegerx(L, -1, &isnum);
	if (!isnum || v < 0 || v > UINT32_MAX)
		luaL_error(L, "field '%s' must be a non-negative integer",
			   key);

	return (uint32_t)v;
}


/* ---- the `rehome` module ---- */

static struct pop *op_find(struct pstate *ps, uintptr_t id)
{
	struct le *le;

	LIST_FOREACH(&ps->ops, le) {
		struct pop *op = le->data;

		if (op->id == id)
			return op;
	}

	return NULL;
}


/** Token for the engine; 0 (ignored on report) when there is no done fn */
static void *op_track(lua_State *L, int idx)
{
	struct pstate *ps = pstate_of(L);
	struct pop *op;
	int fn;

	if (lua_isnoneornil(L, idx))
		return NULL;

	luaL_checktype(L, idx, LUA_TFUNCTION);
	lua_pushvalue(L, idx);
	fn = luaL_ref(L, LUA_REGISTRYINDEX);

	op = mem_zalloc(sizeof(*op), pop_destructor);
	if (!op) {
		luaL_unref(L, LUA_REGISTRYINDEX, fn);
		luaL_error(L, "out of memory");
	}

	op->id = ++pol.last_op;
	op->fn = fn;
	list_append(&ps->ops, &op->le, op);

	return (void *)op->id;
}


static int op_started(lua_State *L, int err, void *token)
{
	if (err) {
		struct pop *op = op_find(pstate_of(L), (uintptr_t)token);

		if (op)
			luaL_unref(L, LUA_REGISTRYINDEX, op->fn);
		mem_deref(op);
	}

	return push_result(L, err);
}


struct done_ctx {
	const struct pop *op;
	int err;
	const struct odict *result;
};


static int done_call(lua_State *L)
{
	const struct done_ctx *ctx = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->op->fn);
	luaL_unref(L, LUA_REGISTRYINDEX, ctx->op->fn);
	lua_pushboolean(L, !ctx->err);
	if (ctx->err)
		push_errstr(L, ctx->err);
	else
		push_odict(L, ctx->result, false);

	lua_call(L, 2, 0);
	return 0;
}


static void op_done(int err, const struct odict *result, void *arg)
{
	struct done_ctx ctx = {NULL, err, result};
	struct pop *op;

	if (!pol.ps)
		return;

	op = op_find(pol.ps, (uintptr_t)arg);
	if (!op)
		return;  /* no done function, or its policy was reloaded */

	ctx.op = op;
	(void)hook_run(pol.ps, "done callback", done_call, &ctx);
	mem_deref(op);
}


static int l_node_id(lua_State *L)
{
	lua_pushstring(L, pol.ops.node_id ? pol.ops.node_id(pol.ops.arg)
					  : "");
	return 1;
}


static int l_nodes(lua_State *L)
{
	struct odict **box = odict_box(L);
	int err = pol.ops.nodes ? pol.ops.nodes(box, pol.ops.arg) : ENOSYS;

	return push_list(L, err, box);
}


static int l_shtags(lua_State *L)
{
	struct odict **box = odict_box(L);
	int err = pol.ops.shtags ? pol.ops.shtags(box, pol.ops.arg)
				 : ENOSYS;

	return push_list(L, err, box);
}


static int l_dialogs(lua_State *L)
{
	const char *tag;
	uint32_t limit;
	struct odict **box;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	tag   = field_string(L, 1, "tag", false);
	limit = field_uint(L, 1, "limit");

	box = odict_box(L);
	err = pol.ops.dialogs ? pol.ops.dialogs(box, tag, limit, pol.ops.arg)
			      : ENOSYS;

	return push_list(L, err, box);
}


static int l_take(lua_State *L)
{
	const char *tag = luaL_checkstring(L, 1);
	void *token = op_track(L, 2);
	int err = pol.ops.take
		? pol.ops.take(tag, op_done, token, pol.ops.arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_release(lua_State *L)
{
	const char *tag = luaL_checkstring(L, 1);

	return push_result(L, pol.ops.release
			   ? pol.ops.release(tag, pol.ops.arg) : ENOSYS);
}


static int l_rehome(lua_State *L)
{
	struct policy_rehome req;
	void *token;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	req.tag  = field_string(L, 1, "tag", true);
	req.mode = field_string(L, 1, "mode", false);
	req.body = field_string(L, 1, "body", false);
	req.rate = field_uint(L, 1, "rate");
	lua_getfield(L, 1, "done");
	token = op_track(L, -1);

	err = pol.ops.rehome
		? pol.ops.rehome(&req, op_done, token, pol.ops.arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_move(lua_State *L)
{
	struct policy_move req;
	void *token;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	req.tag     = field_string(L, 1, "tag", true);
	req.to      = field_string(L, 1, "to", true);
	req.count   = field_uint(L, 1, "count");
	req.percent = field_uint(L, 1, "percent");
	if (!req.count == !req.percent || req.percent > 100)
		return luaL_error(L, "move needs count or percent (1-100)");

	lua_getfield(L, 1, "done");
	token = op_track(L, -1);

	err = pol.ops.move
		? pol.ops.move(&req, op_done, token, pol.ops.arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_log(lua_State *L)
{
	enum log_level level;
	const char *name = luaL_checkstring(L, 1);
	const char *msg  = luaL_checkstring(L, 2);

	if (log_level_decode(&level, name))
		return luaL_argerror(L, 1, "debug, info, warn or error");

	log_msg(level, "lua", "%s", msg);
	return 0;
}


static int after_call(lua_State *L)
{
	const struct ptimer *t = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn);
	luaL_unref(L, LUA_REGISTRYINDEX, t->fn);
	lua_call(L, 0, 0);
	return 0;
}


static void after_handler(void *arg)
{
	struct ptimer *t = arg;

	(void)hook_run(t->ps, "after callback", after_call, t);
	mem_deref(t);
}


static int l_after(lua_State *L)
{
	struct pstate *ps = pstate_of(L);
	lua_Integer ms = luaL_checkinteger(L, 1);
	struct ptimer *t;
	int fn;

	luaL_argcheck(L, ms >= 0, 1, "negative delay");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (list_count(&ps->timers) >= POLICY_MAX_TIMERS)
		return luaL_error(L, "more than %d pending after() calls",
				  POLICY_MAX_TIMERS);

	lua_pushvalue(L, 2);
	fn = luaL_ref(L, LUA_REGISTRYINDEX);

	t = mem_zalloc(sizeof(*t), ptimer_destructor);
	if (!t) {
		luaL_unref(L, LUA_REGISTRYINDEX, fn);
		return luaL_error(L, "out of memory");
	}

	t->ps = ps;
	t->fn = fn;
	list_append(&ps->timers, &t->le, t);
	tmr_start(&t->tmr, (uint64_t)ms, after_handler, t);

	return 0;
}


static int l_now(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)tmr_jiffies());
	return 1;
}


static const luaL_Reg rehome_funcs[] = {
	{"node_id", l_node_id},
	{"nodes",   l_nodes},
	{"shtags",  l_shtags},
	{"take",    l_take},
	{"release", l_release},
	{"rehome",  l_rehome},
	{"move",    l_move},
	{"dialogs", l_dialogs},
	{"log",     l_log},
	{"after",   l_after},
	{"now",     l_now},
	{NULL, NULL}
};


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

	log_info("lua", "%s", lua_tostring(L, -1));
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


static int module_path(char *buf, size_t sz, const char *name)
{
	size_t off;

	if (!pol.libdir)
		return ENOENT;
	if (!module_name_valid(name))
		return EINVAL;
	if (re_snprintf(buf, sz, "%s/%s.lua", pol.libdir, name) < 0)
		return ENAMETOOLONG;

	off = strlen(pol.libdir) + 1;
	for (size_t i = off; i < off + strlen(name); i++) {
		if (buf[i] == '.')
			buf[i] = '/';
	}

	return 0;
}


/** require(): only plain Lua from the policy library, each in a sandbox */
static int l_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	char path[512];
	int status;

	lua_settop(L, 1);
	if (lua_getfield(L, lua_upvalueindex(1), name) != LUA_TNIL)
		return 1;

	if (module_path(path, sizeof(path), name))
		return luaL_error(L, "module '%s' not found: only modules of "
				  "the policy library can be required", name);

	status = load_sandboxed(L, path);
	if (status == LUA_ERRFILE)
		return luaL_error(L, "module '%s' not found in the policy "
				  "library %s", name, pol.libdir);
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

	luaL_newmetatable(L, ODICT_BOX);
	lua_pushcfunction(L, odict_box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

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

	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_newtable(L);
	copy_fields(L, -2, lua_gettop(L), os_names, ARRAY_SIZE(os_names));
	lua_setfield(L, t, "os");
	lua_pop(L, 1);

	lua_pushcfunction(L, l_print);
	lua_setfield(L, t, "print");

	luaL_newlib(L, rehome_funcs);
	lua_pushvalue(L, -1);
	lua_setfield(L, loaded, "rehome");
	lua_setfield(L, t, "rehome");

	lua_pushcclosure(L, l_require, 1);  /* the loaded table as upvalue */
	lua_setfield(L, t, "require");

	lua_setfield(L, LUA_REGISTRYINDEX, SANDBOX);
}


/* ---- loading a policy ---- */

static int hook_index(const char *name)
{
	for (int i = 0; i < HOOK_COUNT; i++) {
		if (0 == strcmp(name, hook_names[i]))
			return i;
	}

	return -1;
}


/** Hooks from the returned table; a misspelt on_* name is an error */
static void hooks_collect(lua_State *L, struct pstate *ps, const char *path)
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

	hooks_collect(L, pstate_of(L), path);
	return 0;
}


static int pstate_load(struct pstate **psp, const char *path,
		       char *errbuf, size_t errsz)
{
	struct pstate *ps;
	int err;

	ps = mem_zalloc(sizeof(*ps), pstate_destructor);
	if (!ps)
		return ENOMEM;

	for (int i = 0; i < HOOK_COUNT; i++)
		ps->hook[i] = LUA_NOREF;

	ps->L = lua_newstate(pstate_mem, ps);
	if (!ps->L) {
		err = ENOMEM;
		re_snprintf(errbuf, errsz, "%s: no memory for a Lua state",
			    path);
		goto out;
	}

	err = pstate_run(ps, load_call, (void *)path);
	if (err)
		str_ncpy(errbuf, ps->err, errsz);

 out:
	if (err)
		mem_deref(ps);
	else
		*psp = ps;

	return err;
}


/**
 * Load the policy file into a fresh state; the running one is only
 * replaced if that works. A refresh (a state full of the policy's own
 * data, not a new file) keeps the hooks' back-off and the error that
 * caused it; any other reload starts clean, the file may have been fixed.
 */
static int reload(char *errbuf, size_t errsz, bool refresh)
{
	struct pstate *ps;
	int err;

	if (!errbuf || !errsz)
		return EINVAL;

	if (!pol.path) {
		str_ncpy(errbuf, "no policy configured", errsz);
		return ENOENT;
	}

	if (pol.ps && pol.ps->depth) {
		str_ncpy(errbuf, "policy is running a hook", errsz);
		return EBUSY;
	}

	err = pstate_load(&ps, pol.path, errbuf, errsz);
	if (err) {
		log_warn("policy", "%s not loaded: %s%s", pol.path, errbuf,
			 pol.ps ? " (the previous policy keeps running)" : "");
		str_ncpy(pol.last_err, errbuf, sizeof(pol.last_err));
		metrics_policy_event("reload_failed");
		return err;
	}

	if (refresh && pol.ps)
		memcpy(ps->hold, pol.ps->hold, sizeof(ps->hold));
	else
		pol.last_err[0] = '\0';

	mem_deref(pol.ps);
	pol.ps = ps;
	log_info("policy", "loaded %s", pol.path);
	metrics_policy_event("reload_ok");

	return 0;
}


/** Load the policy file again; on failure errbuf holds the reason */
int policy_reload(char *errbuf, size_t errsz)
{
	return reload(errbuf, errsz, false);
}


const char *policy_last_error(void)
{
	return pol.last_err[0] ? pol.last_err : NULL;
}


/* ---- hooks ---- */

struct invite_ctx {
	const struct sip_msg *msg;
	const char *lsnr_tag;
	struct policy_decision *out;
};


static void set_pl(lua_State *L, const char *key, const struct pl *pl)
{
	lua_pushlstring(L, pl->p, pl->l);
	lua_setfield(L, -2, key);
}


static void set_str(lua_State *L, const char *key, const char *s)
{
	lua_pushstring(L, s);
	lua_setfield(L, -2, key);
}


static void push_lower(lua_State *L, const struct pl *pl)
{
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, pl->l);

	for (size_t i = 0; i < pl->l; i++)
		p[i] = (char)tolower((unsigned char)pl->p[i]);

	luaL_pushresultsize(&b, pl->l);
}


/** headers: lower-case name -> value; repeated headers joined by ", " */
static void push_headers(lua_State *L, const struct sip_msg *msg)
{
	struct le *le;

	lua_newtable(L);
	LIST_FOREACH(&msg->hdrl, le) {
		const struct sip_hdr *hdr = le->data;

		push_lower(L, &hdr->name);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, -3) == LUA_TSTRING) {
			lua_pushliteral(L, ", ");
			lua_pushlstring(L, hdr->val.p, hdr->val.l);
			lua_concat(L, 3);
		}
		else {
			lua_pop(L, 1);
			lua_pushlstring(L, hdr->val.p, hdr->val.l);
		}
		lua_rawset(L, -3);
	}
}


static void push_request(lua_State *L, const struct sip_msg *msg,
			 const char *lsnr_tag)
{
	char buf[64];

	lua_createtable(L, 0, 20);
	set_pl(L, "method",    &msg->met);
	set_pl(L, "uri",       &msg->ruri);
	set_pl(L, "uri_user",  &msg->uri.user);
	set_pl(L, "uri_host",  &msg->uri.host);
	set_pl(L, "from",      &msg->from.auri);
	set_pl(L, "from_user", &msg->from.uri.user);
	set_pl(L, "from_host", &msg->from.uri.host);
	set_pl(L, "from_tag",  &msg->from.tag);
	set_pl(L, "to",        &msg->to.auri);
	set_pl(L, "to_user",   &msg->to.uri.user);
	set_pl(L, "to_host",   &msg->to.uri.host);
	set_pl(L, "call_id",   &msg->callid);

	re_snprintf(buf, sizeof(buf), "%J", &msg->src);
	set_str(L, "source", buf);
	re_snprintf(buf, sizeof(buf), "%j", &msg->src);
	set_str(L, "source_ip", buf);
	lua_pushinteger(L, sa_port(&msg->src));
	lua_setfield(L, -2, "source_port");

	set_str(L, "transport", sip_transp_name(msg->tp));
	set_str(L, "listener", lsnr_tag ? lsnr_tag : "");

	push_headers(L, msg);
	lua_setfield(L, -2, "headers");
}


/** A value that ends up in a SIP message: no control characters */
static void decision_string(lua_State *L, const char *key, char *buf,
			    size_t sz, bool spaces)
{
	const char *s;
	size_t len;

	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "on_initial_invite: '%s' must be a string", key);

	s = lua_tolstring(L, -1, &len);
	if (!len || len >= sz)
		luaL_error(L, "on_initial_invite: '%s' must have 1 to %d "
			   "characters", key, (int)sz - 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (c == ' ' && !spaces))
			luaL_error(L, "on_initial_invite: '%s' holds a "
				   "forbidden character", key);
	}

	memcpy(buf, s, len + 1);
}


static void decision_target(lua_State *L, struct policy_decision *out)
{
	struct uri uri;
	struct pl pl;

	decision_string(L, "target", out->target, sizeof(out->target), false);
	pl_set_str(&pl, out->target);
	if (uri_decode(&uri, &pl) ||
	    (pl_strcasecmp(&uri.scheme, "sip") &&
	     pl_strcasecmp(&uri.scheme, "sips")))
		luaL_error(L, "on_initial_invite: target '%s' is not a SIP "
			   "URI", out->target);
}


static void decision_reject(lua_State *L, struct policy_decision *out)
{
	int isnum;
	lua_Integer code = lua_tointegerx(L, -1, &isnum);

	if (!isnum || code < 400 || code > 699)
		luaL_error(L, "on_initial_invite: 'reject' must be a SIP "
			   "code from 400 to 699");

	out->scode = (uint16_t)code;
}


static void decision_read(lua_State *L, int idx, struct policy_decision *out)
{
	if (lua_isnil(L, idx))
		return;
	if (!lua_istable(L, idx))
		luaL_error(L, "on_initial_invite must return a table or nil, "
			   "not %s", luaL_typename(L, idx));

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING
				? lua_tostring(L, -2) : "?";

		if (0 == strcmp(key, "shtag"))
			decision_string(L, key, out->shtag,
					sizeof(out->shtag), false);
		else if (0 == strcmp(key, "target"))
			decision_target(L, out);
		else if (0 == strcmp(key, "reject"))
			decision_reject(L, out);
		else if (0 == strcmp(key, "reason"))
			decision_string(L, key, out->reason,
					sizeof(out->reason), true);
		else
			luaL_error(L, "on_initial_invite: unknown field '%s' "
				   "in the decision", key);

		lua_pop(L, 1);
	}

	if (out->scode && !out->reason[0])
		str_ncpy(out->reason, "Rejected by policy", sizeof(out->reason));
}


static int invite_call(lua_State *L)
{
	const struct invite_ctx *ctx = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX,
		    pstate_of(L)->hook[HOOK_INITIAL_INVITE]);
	push_request(L, ctx->msg, ctx->lsnr_tag);
	lua_call(L, 1, 1);
	decision_read(L, lua_gettop(L), ctx->out);
	return 0;
}


/**
 * Ask the policy about a new call. Cheap when the policy has no
 * on_initial_invite. `out` is always written: empty means default.
 */
int policy_initial_invite(const struct sip_msg *msg, const char *lsnr_tag,
			  struct policy_decision *out)
{
	struct invite_ctx ctx = {msg, lsnr_tag, out};
	int err;

	if (!msg || !out)
		return EINVAL;

	memset(out, 0, sizeof(*out));
	if (!pol.ps || pol.ps->hook[HOOK_INITIAL_INVITE] == LUA_NOREF)
		return 0;

	err = hook_call(pol.ps, HOOK_INITIAL_INVITE, invite_call, &ctx);
	if (err)
		memset(out, 0, sizeof(*out));  /* nothing half-decided */

	return err;
}


/** The argument of a one-argument hook: a string or an odict (object) */
struct hook_arg {
	enum hook hook;
	const char *str;
	const struct odict *od;
};


static int hook_arg_call(lua_State *L)
{
	const struct hook_arg *ha = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, pstate_of(L)->hook[ha->hook]);
	if (ha->str)
		lua_pushstring(L, ha->str);
	else
		push_odict(L, ha->od, false);

	lua_call(L, 1, 0);
	return 0;
}


static int hook_arg_run(enum hook hook, const char *str,
			const struct odict *od)
{
	struct hook_arg ha = {hook, str, od};

	if (!pol.ps || pol.ps->hook[hook] == LUA_NOREF)
		return 0;

	return hook_call(pol.ps, hook, hook_arg_call, &ha);
}


int policy_node_event(const char *node, enum policy_node_state state)
{
	enum hook hook;

	if (!node)
		return EINVAL;

	switch (state) {

	case POLICY_NODE_UP:       hook = HOOK_NODE_UP;       break;
	case POLICY_NODE_DOWN:     hook = HOOK_NODE_DOWN;     break;
	case POLICY_NODE_DRAINING: hook = HOOK_NODE_DRAINING; break;
	default:                   return EINVAL;
	}

	return hook_arg_run(hook, node, NULL);
}


int policy_rehome_done(const struct odict *result)
{
	return hook_arg_run(HOOK_REHOME_DONE, NULL, result);
}


static void tick_handler(void *arg)
{
	struct odict *stats = NULL;
	(void)arg;

	tmr_start(&pol.tick, POLICY_TICK_MS, tick_handler, NULL);
	if (!pol.ps || pol.ps->hook[HOOK_TICK] == LUA_NOREF)
		return;

	/* without stats the policy still gets its tick, for pacing */
	if (pol.ops.stats && pol.ops.stats(&stats, pol.ops.arg))
		stats = mem_deref(stats);

	(void)hook_arg_run(HOOK_TICK, NULL, stats);
	mem_deref(stats);
}


/* ---- reload triggers: file watch, SIGHUP, control API ---- */

static void handle_free(uv_handle_t *h)
{
	mem_deref(h);
}


static void handle_close(uv_handle_t *h)
{
	if (!h)
		return;

	if (!uvre_loop())
		mem_deref(h);  /* uvre_close() already closed every handle */
	else if (!uv_is_closing(h))
		uv_close(h, handle_free);
}


static void watch_handler(uv_fs_event_t *h, const char *filename,
			  int events, int status)
{
	(void)h;
	(void)events;

	if (status < 0) {
		log_warn("policy", "watching %s: %s", pol.path,
			 uv_strerror(status));
		return;
	}

	if (filename && strcmp(filename, pol.base))
		return;

	tmr_start(&pol.debounce, POLICY_DEBOUNCE_MS, reload_handler, NULL);
}


static void sighup_handler(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;

	if (!pol.path) {
		log_info("policy", "SIGHUP: no policy configured");
		return;
	}

	log_info("policy", "SIGHUP: reloading %s", pol.path);
	reload_handler(NULL);
}


/** Watch the directory: a rename over the file is an event there too */
static int watch_start(uv_loop_t *loop)
{
	char *dir = NULL;
	int err;

	pol.watch = mem_zalloc(sizeof(*pol.watch), NULL);
	if (!pol.watch)
		return ENOMEM;

	err = -uv_fs_event_init(loop, pol.watch);
	if (err) {
		pol.watch = mem_deref(pol.watch);
		return err;
	}

	err = re_sdprintf(&dir, "%b", pol.path,
			  pol.base > pol.path ? (size_t)(pol.base - pol.path)
					      : (size_t)0);
	if (err)
		return err;

	err = -uv_fs_event_start(pol.watch, watch_handler,
				 dir[0] ? dir : ".", 0);
	if (err)
		log_error("policy", "cannot watch %s: %s", dir[0] ? dir : ".",
			  uv_strerror(-err));

	mem_deref(dir);
	return err;
}


static int sighup_start(uv_loop_t *loop)
{
	int err;

	pol.sighup = mem_zalloc(sizeof(*pol.sighup), NULL);
	if (!pol.sighup)
		return ENOMEM;

	err = -uv_signal_init(loop, pol.sighup);
	if (err) {
		pol.sighup = mem_deref(pol.sighup);
		return err;
	}

	return -uv_signal_start(pol.sighup, sighup_handler, SIGHUP);
}


static void reload_route(struct http_conn *conn, const struct ctl_req *req,
			 void *arg)
{
	struct odict *od = NULL;
	char msg[256];
	int err;
	(void)arg;

	if (pl_isset(&req->rest)) {
		(void)ctl_reply_error(conn, 404, "not found");
		return;
	}

	err = policy_reload(msg, sizeof(msg));
	if (err) {
		(void)ctl_reply_error(conn, !pol.path ? 404
					    : err == EBUSY ? 409 : 422,
				      "%s", msg);
		return;
	}

	err  = odict_alloc(&od, 4);
	err |= odict_entry_add(od, "reloaded", ODICT_BOOL, true);
	err |= odict_entry_add(od, "policy", ODICT_STRING, pol.path);
	if (err)
		(void)ctl_reply_error(conn, 500, "%m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** GET /v1/status: {"policy": {"path":, "loaded":, "last_error":}} */
static int status_add(struct odict *od, void *arg)
{
	struct odict *p = NULL;
	int err;
	(void)arg;

	err = odict_alloc(&p, 4);
	if (err)
		return err;

	err |= odict_entry_add(p, "path", ODICT_STRING,
			       pol.path ? pol.path : "");
	err |= odict_entry_add(p, "loaded", ODICT_BOOL, pol.ps != NULL);
	if (pol.last_err[0])
		err |= odict_entry_add(p, "last_error", ODICT_STRING,
				       pol.last_err);
	err |= odict_entry_add(od, "policy", ODICT_OBJECT, p);

	mem_deref(p);
	return err;
}


static int ctl_register(void)
{
	int err = ctl_route_add("POST", "/v1/policy/reload", reload_route,
				NULL);

	if (err == EALREADY)
		return 0;

	return err ? err : ctl_status_add(status_add, NULL);
}


/**
 * Start the policy host and load the policy. A policy that does not load
 * is an error here (the node should not start with it); later reloads
 * keep the old policy instead.
 */
int policy_init(const char *path, const char *libdir,
		const struct policy_ops *ops)
{
	uv_loop_t *loop = uvre_loop();
	char msg[256];
	int err;

	if (pol.libdir)
		return EALREADY;

	if (ops)
		pol.ops = *ops;

	tmr_init(&pol.tick);
	tmr_init(&pol.debounce);
	tmr_init(&pol.refresh);

	err = str_dup(&pol.libdir, libdir ? libdir : REHOME_LUADIR);
	if (err)
		goto out;

	err = ctl_register();
	if (err)
		goto out;

	/* also without a policy: SIGHUP's default action is to terminate */
	if (loop) {
		err = sighup_start(loop);
		uvre_kick();
		if (err)
			goto out;
	}
	else {
		log_warn("policy", "no libuv loop: no reload on file changes "
			 "or SIGHUP");
	}

	if (!str_isset(path))
		goto out;

	err = str_dup(&pol.path, path);
	if (err)
		goto out;

	pol.base = strrchr(pol.path, '/');
	pol.base = pol.base ? pol.base + 1 : pol.path;

	err = policy_reload(msg, sizeof(msg));
	if (err)
		goto out;

	tmr_start(&pol.tick, POLICY_TICK_MS, tick_handler, NULL);

	if (loop) {
		err = watch_start(loop);
		uvre_kick();
	}

 out:
	if (err)
		policy_close();

	return err;
}


void policy_close(void)
{
	tmr_cancel(&pol.tick);
	tmr_cancel(&pol.debounce);
	tmr_cancel(&pol.refresh);

	handle_close((uv_handle_t *)pol.watch);
	handle_close((uv_handle_t *)pol.sighup);
	pol.watch  = NULL;
	pol.sighup = NULL;
	uvre_kick();

	pol.ps     = mem_deref(pol.ps);
	pol.path   = mem_deref(pol.path);
	pol.libdir = mem_deref(pol.libdir);
	pol.base   = NULL;
	memset(&pol.ops, 0, sizeof(pol.ops));
	pol.last_err[0] = '\0';
}
