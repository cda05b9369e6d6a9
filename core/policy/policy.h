/**
 * @file policy.h  Lua policy host: hooks, sandbox, hot reload
 *
 * The engine fills in struct policy_ops (what the Lua module `rehome` can
 * see and do) and calls the policy_* hooks; the policy module itself knows
 * nothing about the cluster or re-homing code. See docs/policies.md.
 */

#include "conf.h"
#include "log.h"

enum {
	POLICY_MEM_LIMIT   = 64 * 1024 * 1024, /* bytes per Lua state          */
	POLICY_INSN_BUDGET = 1000000,          /* VM instructions per hook call */
	POLICY_CPU_BUDGET_MS = 100,            /* CPU time per hook call        */
	POLICY_TICK_MS     = 1000,             /* on_tick period                */
	POLICY_SETTLE_MS   = 300,              /* file unchanged so long: load  */
	POLICY_MAX_TIMERS  = 1024,             /* pending rehome.after() calls  */
	POLICY_TARGET_SZ   = 256,
	POLICY_REASON_SZ   = 64,
	POLICY_HASH_SZ     = 65,               /* SHA-256 in hex, and a NUL */
};

enum policy_node_state {
	POLICY_NODE_UP,
	POLICY_NODE_DOWN,
	POLICY_NODE_DRAINING,
};

/** What on_initial_invite decided; all empty/zero = default behaviour */
struct policy_decision {
	char shtag[CONF_SHTAG_SZ]; /* sharing tag; empty: default_shtag     */
	char target[POLICY_TARGET_SZ]; /* next-hop URI; empty: upstream/R-URI */
	uint16_t scode;          /* non-zero: reject the INVITE (400..699)  */
	char reason[POLICY_REASON_SZ]; /* reason phrase when scode is set */
	bool no_media;           /* media=false: not anchored in a relay   */
};

/** rehome{tag=, mode=, body=, rate=}; NULL/0 fields = engine default */
struct policy_rehome {
	const char *tag;
	const char *mode;        /* challenge|challenge-callee|caller|...   */
	const char *body;        /* outbound|inbound|none                   */
	uint32_t rate;           /* dialogs per second                      */
	bool force;              /* take the tag even from a live holder    */
};

/** move{tag=, to=, count= | percent=}; exactly one of count/percent */
struct policy_move {
	const char *tag;
	const char *to;
	uint32_t count;
	uint32_t percent;
};

/** move_media{from=, to=, count= | tag=}; neither: every call on from */
struct policy_move_media {
	const char *from;
	const char *to;
	const char *tag;
	uint32_t count;
	uint32_t rate;           /* dialogs per second; 0 = rehome_rate     */
};

/**
 * End of an asynchronous action. Call it exactly once, and only if the
 * action returned 0; `result` (may be NULL) is only read during the call.
 * `arg` is a token, not a pointer: calling after a reload or after
 * policy_close() is safe, the token is then ignored.
 */
typedef void (policy_done_h)(int err, const struct odict *result, void *arg);

/**
 * What the engine lends to policies. Every member may be NULL (the Lua call
 * then fails with "not supported"). Strings passed in are only valid during
 * the call. Odicts returned through odp are owned (and freed) by the policy.
 * Shapes of the odicts: see docs/policies.md.
 */
struct policy_ops {
	const char *(*node_id)(void *arg);
	int (*nodes)(struct odict **odp, void *arg);
	int (*shtags)(struct odict **odp, void *arg);
	int (*dialogs)(struct odict **odp, const char *tag, uint32_t limit,
		       void *arg);
	int (*stats)(struct odict **odp, void *arg);
	int (*relays)(struct odict **odp, void *arg);
	int (*take)(const char *tag, policy_done_h *doneh, void *done_arg,
		    void *arg);
	int (*release)(const char *tag, void *arg);
	int (*rehome)(const struct policy_rehome *req, policy_done_h *doneh,
		      void *done_arg, void *arg);
	int (*move)(const struct policy_move *req, policy_done_h *doneh,
		    void *done_arg, void *arg);
	/** rehome.log() and print(); NULL: the node's log, module "lua" */
	void (*log)(enum log_level level, const char *msg, void *arg);
	int (*move_media)(const struct policy_move_media *req,
			  policy_done_h *doneh, void *done_arg, void *arg);
	void *arg;
};

/*
 * path: policy file, NULL or "" = no policy (every hook is a no-op).
 * libdir: directory of the Lua library for require(); NULL = REHOME_LUADIR.
 * Needs uvre_init() first for file watching.
 */
int  policy_init(const char *path, const char *libdir,
		 const struct policy_ops *ops);
void policy_close(void);
int  policy_reload(char *errbuf, size_t errsz);
int  policy_set_file(const char *path, const char *libdir, char *errbuf,
		     size_t errsz);
const char *policy_last_error(void);
/* What runs: its file, the file's SHA-256 in hex ("" for none), and
 * when it was loaded (Unix ms, 0 for none). See policy_hash.c. */
const char *policy_path(void);
const char *policy_hash(void);
uint64_t policy_loaded_at(void);

/** A policy was loaded (hash ""): no policy any more */
typedef void (policy_loaded_h)(const char *hash, void *arg);
void policy_set_loaded_handler(policy_loaded_h *h, void *arg);

struct http_conn;
/**
 * POST /v1/policy/reload with {"cluster": true}: the handler answers conn
 * (mem_ref it to answer later). Without one the node reloads alone.
 */
typedef void (policy_cluster_reload_h)(struct http_conn *conn, void *arg);
void policy_set_cluster_reload_handler(policy_cluster_reload_h *h,
				       void *arg);

/** Load `path` as a reload would, then drop it: FILE:LINE in errbuf */
int  policy_check(const char *path, const char *libdir, char *errbuf,
		  size_t errsz);

/** The one event a dry run feeds the policy (POST /v1/policy/simulate) */
enum policy_sim_event {
	POLICY_SIM_NODE_DOWN,
	POLICY_SIM_NODE_UP,
	POLICY_SIM_TICK,
	POLICY_SIM_INVITE,
};

/** A dry run: NULL strings are absent */
struct policy_sim_req {
	const char *file;        /* the candidate; NULL: the running file  */
	enum policy_sim_event event;
	const char *node;        /* node_down, node_up: the node           */
	const char *from;        /* invite: From, To and Request-URI ...    */
	const char *to;
	const char *ruri;        /* ... (NULL: the To URI)                  */
	const char *source;      /* invite: "IP:PORT" it comes from        */
	const char *listener;    /* invite: tag of the listener            */
};

/**
 * Load the candidate in a second state beside the running policy and feed
 * it the event, on this node's live state with the actions recorded, not
 * done. On success *odp is the report ({"actions": [...], ...}, with
 * "error" if the hook failed). Errors: ENOENT no policy, EBADMSG a bad
 * request, else the candidate did not load; errbuf says why.
 */
int  policy_sim_event_decode(enum policy_sim_event *evp, const char *name);
int  policy_simulate(struct odict **odp, const struct policy_sim_req *req,
		     char *errbuf, size_t errsz);

/* Hooks. On error the reason is logged and `out` is left at default. */
int  policy_initial_invite(const struct sip_msg *msg, const char *lsnr_tag,
			   struct policy_decision *out);
int  policy_node_event(const char *node, enum policy_node_state state);
int  policy_rehome_done(const struct odict *result);
int  policy_relay_event(const char *relay, bool up);
