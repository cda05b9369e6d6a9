/**
 * @file policy_hooks.c  Calling the policy's hooks for the engine
 *
 * Each policy_* hook of policy.h looks at the running policy's reference
 * for that hook and, when there is none, returns at once with the default;
 * otherwise it turns its arguments into Lua values inside the protected
 * call (policy_state_run) and reads back what the hook returned. A failed
 * call is logged and counted by the host, and the caller applies the
 * default behaviour. on_tick comes from a timer of the host, every
 * POLICY_TICK_MS.
 *
 * An overrun (budget or memory) costs the SIP loop milliseconds, and a
 * hook that overran once will likely do it on every call: at 50 calls per
 * second a memory bomb alone would stall the loop for good. So a hook that
 * overran is held back, the default applying without running it, for a
 * second, twice as long after each overrun in a row, up to a minute; the
 * next run that ends well clears the back-off. A plain error() is cheap
 * and may concern only some calls, so it holds nothing back.
 */
#include <ctype.h>
#include <string.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "policy_int.h"

enum {
	HOLD_MIN_MS = 1000,      /* a hook that overran is held back ...    */
	HOLD_MAX_MS = 60000,     /* ... doubling per overrun, up to this    */
	HOLD_SHIFT_MAX = 6,      /* 1000 << 6 > HOLD_MAX_MS                 */
	ADDR_SZ = 64,            /* "[IPv6]:port"                           */
};


/** policy_hook_run for a hook, with back-off after overruns; EAGAIN: held */
static int hook_call(struct policy_state *ps, enum policy_hook hook,
		     lua_CFunction fn, void *ctx)
{
	struct policy_hold *hold = &ps->hold[hook];
	uint64_t ms;
	int err;

	if (tmr_jiffies() < hold->until) {
		metrics_policy_event("hook_held");
		return EAGAIN;
	}

	err = policy_hook_run(ps, policy_hook_name(hook), fn, ctx);
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
		 policy_hook_name(hook), (unsigned long long)ms,
		 hold->overruns);

	return err;
}


/* ---- on_initial_invite: the request and the decision ---- */


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
	char buf[ADDR_SZ];

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


static void decision_media(lua_State *L, struct policy_decision *out)
{
	if (!lua_isboolean(L, -1))
		luaL_error(L, "on_initial_invite: 'media' must be true or "
			   "false");

	out->no_media = !lua_toboolean(L, -1);
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
		else if (0 == strcmp(key, "media"))
			decision_media(L, out);
		else
			luaL_error(L, "on_initial_invite: unknown field '%s' "
				   "in the decision", key);

		lua_pop(L, 1);
	}

	if (out->scode && !out->reason[0])
		str_ncpy(out->reason, "Rejected by policy", sizeof(out->reason));
}


/** on_initial_invite of the state L, in its protected call */
int policy_invite_call(lua_State *L)
{
	const struct policy_invite_ctx *ctx = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX,
		    policy_state_of(L)->hook[POLICY_HOOK_INITIAL_INVITE]);
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
	struct policy_state *ps = policy_running();
	struct policy_invite_ctx ctx = {msg, lsnr_tag, out};
	int err;

	if (!msg || !out)
		return EINVAL;

	memset(out, 0, sizeof(*out));
	if (!ps || ps->hook[POLICY_HOOK_INITIAL_INVITE] == LUA_NOREF)
		return 0;

	err = hook_call(ps, POLICY_HOOK_INITIAL_INVITE, policy_invite_call,
			&ctx);
	if (err)
		memset(out, 0, sizeof(*out));  /* nothing half-decided */

	return err;
}


/* ---- one-argument hooks: node events, rehome done, tick ---- */

/** A one-argument hook of the state L, in its protected call */
int policy_hook_arg_call(lua_State *L)
{
	const struct policy_hook_arg *ha = lua_touserdata(L, 1);

	lua_rawgeti(L, LUA_REGISTRYINDEX, policy_state_of(L)->hook[ha->hook]);
	if (ha->str)
		lua_pushstring(L, ha->str);
	else
		policy_push_odict(L, ha->od, false);

	lua_call(L, 1, 0);
	return 0;
}


static int hook_arg_run(enum policy_hook hook, const char *str,
			const struct odict *od)
{
	struct policy_state *ps = policy_running();
	struct policy_hook_arg ha = {hook, str, od};

	if (!ps || ps->hook[hook] == LUA_NOREF)
		return 0;

	return hook_call(ps, hook, policy_hook_arg_call, &ha);
}


int policy_node_event(const char *node, enum policy_node_state state)
{
	enum policy_hook hook;

	if (!node)
		return EINVAL;

	switch (state) {

	case POLICY_NODE_UP:       hook = POLICY_HOOK_NODE_UP;       break;
	case POLICY_NODE_DOWN:     hook = POLICY_HOOK_NODE_DOWN;     break;
	case POLICY_NODE_DRAINING: hook = POLICY_HOOK_NODE_DRAINING; break;
	default:                   return EINVAL;
	}

	return hook_arg_run(hook, node, NULL);
}


/** A media relay stopped answering ng ping (up false), or answers again */
int policy_relay_event(const char *relay, bool up)
{
	if (!relay)
		return EINVAL;

	return hook_arg_run(up ? POLICY_HOOK_RELAY_UP : POLICY_HOOK_RELAY_DOWN,
			    relay, NULL);
}


int policy_rehome_done(const struct odict *result)
{
	return hook_arg_run(POLICY_HOOK_REHOME_DONE, NULL, result);
}


static void tick_handler(void *arg)
{
	struct policy_state *ps = policy_running();
	struct odict *stats = NULL;

	policy_tick_start(arg);
	if (!ps || ps->hook[POLICY_HOOK_TICK] == LUA_NOREF)
		return;

	/* without stats the policy still gets its tick, for pacing */
	if (ps->engine->stats && ps->engine->stats(&stats, ps->engine->arg))
		stats = mem_deref(stats);

	(void)hook_arg_run(POLICY_HOOK_TICK, NULL, stats);
	mem_deref(stats);
}


/** Call on_tick every POLICY_TICK_MS on the host's timer `tick` */
void policy_tick_start(struct tmr *tick)
{
	tmr_start(tick, POLICY_TICK_MS, tick_handler, tick);
}
