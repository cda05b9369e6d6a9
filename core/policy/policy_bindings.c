/**
 * @file policy_bindings.c  The `rehome` Lua module: what a policy sees and does
 *
 * Each rehome.* function calls the matching member of the engine's struct
 * policy_ops, borrowed by the state; a missing member makes the call fail
 * with "not supported". Values cross as odicts one way and tables the
 * other; an odict the engine hands over sits in a userdata box until it is
 * turned into a table, so that a Lua error in between does not leak it.
 *
 * Actions (take, rehome, move) are asynchronous: the engine reports their
 * end through a done handler whose argument is a token looked up among the
 * running policy's pending actions, never a pointer, so a late report
 * after a reload is simply ignored. rehome.after() timers belong to the
 * state too, and go with it.
 */
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include "log.h"
#include "policy.h"
#include "policy_int.h"

enum { ERRSTR_SZ = 128 };  /* an errno's text */

static const char *const ODICT_BOX = "rehome.odict";

/** A rehome.after(ms, fn) */
struct ptimer {
	struct le le;
	struct tmr tmr;
	struct policy_state *ps;
	int fn;
};

/** An action with a Lua done function, waiting for the engine's report */
struct pop {
	struct le le;
	uintptr_t id;            /* the token given to the engine */
	int fn;
};

/* Process-wide, not per state: a token outlives the state that gave it,
 * and must never match an action of the state loaded after it. */
static uintptr_t last_op;


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


/* ---- values between C and Lua ---- */

/** One value as Lua's; false (nothing pushed) for a null */
bool policy_push_entry(lua_State *L, const struct odict_entry *e)
{
	switch (e->type) {

	case ODICT_OBJECT: policy_push_odict(L, e->u.odict, false); break;
	case ODICT_ARRAY:  policy_push_odict(L, e->u.odict, true);  break;
	case ODICT_STRING: lua_pushstring(L, e->u.str);             break;
	case ODICT_INT:    lua_pushinteger(L, e->u.integer);        break;
	case ODICT_DOUBLE: lua_pushnumber(L, e->u.dbl);             break;
	case ODICT_BOOL:   lua_pushboolean(L, e->u.boolean);        break;
	default:           return false;  /* null: absent in Lua */
	}

	return true;
}


/** An odict as a table: an array keeps the order, null entries vanish */
void policy_push_odict(lua_State *L, const struct odict *od, bool array)
{
	lua_Integer n = 0;
	struct le *le;

	luaL_checkstack(L, 4, "odict nested too deep");
	lua_newtable(L);
	if (!od)
		return;

	LIST_FOREACH(&od->lst, le) {
		const struct odict_entry *e = le->data;

		if (!policy_push_entry(L, e))
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
	char buf[ERRSTR_SZ];

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

	policy_push_odict(L, *box, true);
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


static bool field_bool(lua_State *L, int t, const char *key)
{
	int type = lua_getfield(L, t, key);

	if (type == LUA_TNIL)
		return false;
	if (type != LUA_TBOOLEAN)
		luaL_error(L, "field '%s' must be a boolean", key);

	return lua_toboolean(L, -1);
}


/* ---- asynchronous actions: tokens and done functions ---- */

static struct pop *op_find(struct policy_state *ps, uintptr_t id)
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
	struct policy_state *ps = policy_state_of(L);
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

	op->id = ++last_op;
	op->fn = fn;
	list_append(&ps->ops, &op->le, op);

	return (void *)op->id;
}


static int op_started(lua_State *L, int err, void *token)
{
	if (err) {
		struct pop *op = op_find(policy_state_of(L),
					 (uintptr_t)token);

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
		policy_push_odict(L, ctx->result, false);

	lua_call(L, 2, 0);
	return 0;
}


static void op_done(int err, const struct odict *result, void *arg)
{
	struct policy_state *ps = policy_running();
	struct done_ctx ctx = {NULL, err, result};
	struct pop *op;

	if (!ps)
		return;

	op = op_find(ps, (uintptr_t)arg);
	if (!op)
		return;  /* no done function, or its policy was reloaded */

	ctx.op = op;
	(void)policy_hook_run(ps, "done callback", done_call, &ctx);
	mem_deref(op);
}


/* ---- the module's functions ---- */

static const struct policy_ops *engine_of(lua_State *L)
{
	return policy_state_of(L)->engine;
}


static int l_node_id(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);

	lua_pushstring(L, ops->node_id ? ops->node_id(ops->arg) : "");
	return 1;
}


static int l_nodes(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	struct odict **box = odict_box(L);
	int err = ops->nodes ? ops->nodes(box, ops->arg) : ENOSYS;

	return push_list(L, err, box);
}


static int l_shtags(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	struct odict **box = odict_box(L);
	int err = ops->shtags ? ops->shtags(box, ops->arg) : ENOSYS;

	return push_list(L, err, box);
}


static int l_relays(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	struct odict **box = odict_box(L);
	int err = ops->relays ? ops->relays(box, ops->arg) : ENOSYS;

	return push_list(L, err, box);
}


static int l_dialogs(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	const char *tag;
	uint32_t limit;
	struct odict **box;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	tag   = field_string(L, 1, "tag", false);
	limit = field_uint(L, 1, "limit");

	box = odict_box(L);
	err = ops->dialogs ? ops->dialogs(box, tag, limit, ops->arg)
			   : ENOSYS;

	return push_list(L, err, box);
}


static int l_take(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	const char *tag = luaL_checkstring(L, 1);
	void *token = op_track(L, 2);
	int err = ops->take
		? ops->take(tag, op_done, token, ops->arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_release(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	const char *tag = luaL_checkstring(L, 1);

	return push_result(L, ops->release
			   ? ops->release(tag, ops->arg) : ENOSYS);
}


static int l_rehome(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	struct policy_rehome req;
	void *token;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	req.tag  = field_string(L, 1, "tag", true);
	req.mode = field_string(L, 1, "mode", false);
	req.body = field_string(L, 1, "body", false);
	req.rate = field_uint(L, 1, "rate");
	req.force = field_bool(L, 1, "force");
	lua_getfield(L, 1, "done");
	token = op_track(L, -1);

	err = ops->rehome
		? ops->rehome(&req, op_done, token, ops->arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_move(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
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

	err = ops->move
		? ops->move(&req, op_done, token, ops->arg) : ENOSYS;

	return op_started(L, err, token);
}


/** A line of the policy's, where its engine wants it (rehome.log, print) */
void policy_log(lua_State *L, enum log_level level, const char *msg)
{
	const struct policy_ops *ops = engine_of(L);

	if (ops->log)
		ops->log(level, msg, ops->arg);
	else
		log_msg(level, "lua", "%s", msg);
}


static int l_move_media(lua_State *L)
{
	const struct policy_ops *ops = engine_of(L);
	struct policy_move_media req;
	void *token;
	int err;

	luaL_checktype(L, 1, LUA_TTABLE);
	req.from  = field_string(L, 1, "from", true);
	req.to    = field_string(L, 1, "to", true);
	req.tag   = field_string(L, 1, "tag", false);
	req.count = field_uint(L, 1, "count");
	req.rate  = field_uint(L, 1, "rate");
	if (req.count && req.tag)
		return luaL_error(L, "move_media takes count or tag, not both");

	lua_getfield(L, 1, "done");
	token = op_track(L, -1);

	err = ops->move_media
		? ops->move_media(&req, op_done, token, ops->arg) : ENOSYS;

	return op_started(L, err, token);
}


static int l_log(lua_State *L)
{
	enum log_level level;
	const char *name = luaL_checkstring(L, 1);
	const char *msg  = luaL_checkstring(L, 2);

	if (log_level_decode(&level, name))
		return luaL_argerror(L, 1, "debug, info, warn or error");

	policy_log(L, level, msg);
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

	(void)policy_hook_run(t->ps, "after callback", after_call, t);
	mem_deref(t);
}


static int l_after(lua_State *L)
{
	struct policy_state *ps = policy_state_of(L);
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
	{"move_media", l_move_media},
	{"dialogs", l_dialogs},
	{"relays",  l_relays},
	{"log",     l_log},
	{"after",   l_after},
	{"now",     l_now},
	{NULL, NULL}
};


/** Push the `rehome` module table; the sandbox (policy_state.c) keeps it */
void policy_bindings_open(lua_State *L)
{
	luaL_newmetatable(L, ODICT_BOX);
	lua_pushcfunction(L, odict_box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

	luaL_newlib(L, rehome_funcs);
}
