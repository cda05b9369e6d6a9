/**
 * @file policy_int.h  Inside the Lua policy host: what its files share
 *
 * policy.c runs the host: the running policy, reloads and what triggers
 * them, and the report of a failed call. policy_state.c makes a sandboxed
 * Lua state from the policy file and runs calls into it under the budget
 * (policy_budget.c; policy_pattern.c keeps pattern matching within it);
 * policy_bindings.c is the `rehome` module that state opens; policy_hooks.c
 * calls the policy's hooks for the engine. A state carries what it needs
 * from the host (the engine's ops, the library directory), so that only
 * the running state itself has to be looked up (policy_running()).
 *
 * Not for engine code: use policy.h.
 */

#include <lua.h>
#include "log.h"

struct policy_ops;

enum { POLICY_ERR_SZ = 256 };  /* message of a failed load or call */

enum policy_hook {
	POLICY_HOOK_INITIAL_INVITE,
	POLICY_HOOK_NODE_UP,
	POLICY_HOOK_NODE_DOWN,
	POLICY_HOOK_NODE_DRAINING,
	POLICY_HOOK_TICK,
	POLICY_HOOK_REHOME_DONE,
	POLICY_HOOK_LOAD,        /* on_load(state): a new version starts    */
	POLICY_HOOK_UNLOAD,      /* on_unload(): state for the next version */
	POLICY_HOOK_RELAY_DOWN,
	POLICY_HOOK_RELAY_UP,
	POLICY_HOOK_COUNT
};

/** Back-off of a hook that overran its budget or memory */
struct policy_hold {
	uint64_t until;          /* jiffies: not run before then */
	unsigned overruns;       /* in a row                      */
};

/** One loaded policy: its Lua state and what hangs off it */
struct policy_state {
	lua_State *L;
	const struct policy_ops *engine;  /* the host's: what rehome.* uses */
	const char *libdir;      /* the host's: where require() looks      */
	int hook[POLICY_HOOK_COUNT];  /* registry refs, LUA_NOREF if absent */
	struct policy_hold hold[POLICY_HOOK_COUNT];
	struct list timers;      /* rehome.after() still to fire           */
	struct list ops;         /* actions waiting for their done handler */
	size_t mem;              /* bytes held by L                        */
	uint64_t insns;          /* instructions run in the current call   */
	unsigned depth;          /* calls into L in progress               */
	bool over_budget;
	char err[POLICY_ERR_SZ];  /* message of the last failed call       */
};

/* policy.c */
struct policy_state *policy_running(void);
void policy_host(const struct policy_ops **opsp, const char **pathp,
		 const char **libdirp);
int  policy_hook_run(struct policy_state *ps, const char *what,
		     lua_CFunction fn, void *ctx);

/* policy_state.c */
int  policy_state_load(struct policy_state **psp, const char *path,
		       const char *libdir, const struct policy_ops *engine,
		       char *errbuf, size_t errsz);
int  policy_state_run(struct policy_state *ps, lua_CFunction fn, void *ctx);
struct policy_state *policy_state_of(lua_State *L);
const char *policy_hook_name(enum policy_hook hook);

/* policy_budget.c */
void policy_budget_start(struct policy_state *ps);
void policy_budget_stop(struct policy_state *ps);
void policy_budget_charge(lua_State *L, uint64_t n);
void policy_budget_open(lua_State *L, int t);

/* policy_pattern.c */
void policy_pattern_open(lua_State *L);

/* policy_bindings.c */
void policy_bindings_open(lua_State *L);
void policy_push_odict(lua_State *L, const struct odict *od, bool array);
bool policy_push_entry(lua_State *L, const struct odict_entry *e);
void policy_log(lua_State *L, enum log_level level, const char *msg);

/* policy_hash.c */
int  policy_hash_file(char *hex, size_t sz, const char *path);
int  policy_hash_metrics(struct re_printf *pf, void *arg);

/* policy_handover.c */
int  policy_handover(struct policy_state *ps, struct policy_state *old,
		     char *errbuf, size_t errsz);

/* policy_sim.c */
int  policy_sim_register(void);

/* policy_hooks.c: the calls of hooks, for any state */
struct policy_invite_ctx {
	const struct sip_msg *msg;
	const char *lsnr_tag;
	struct policy_decision *out;
};

/** The argument of a one-argument hook: a string or an odict (object) */
struct policy_hook_arg {
	enum policy_hook hook;
	const char *str;
	const struct odict *od;
};

int  policy_invite_call(lua_State *L);    /* ctx: policy_invite_ctx */
int  policy_hook_arg_call(lua_State *L);  /* ctx: policy_hook_arg   */
void policy_tick_start(struct tmr *tick);
