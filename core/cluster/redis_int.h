/**
 * @file redis_int.h  Inside the Redis client: what its files share
 *
 * redis.c owns the client: its state, connecting (through Sentinel when
 * configured) and resetting with backoff, commands, the watchdog and the
 * status; redis_session.c takes a pair of fresh connections to "up"
 * (AUTH, scripts, channels, the server's role and run id) and owns the
 * channels and scripts registered; redis_sentinel.c asks the sentinels
 * where the master is and watches them for fail-overs; redis_shard.c,
 * on a Redis Cluster, knows which master serves which slot and holds a
 * pair of connections to each master but the keys' one. The client's state
 * is one struct, since every piece moves the same session along.
 *
 * Not for other modules: use redis.h.
 */

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "redis.h"

struct rh_conf;

enum {
	REDIS_ERROR_SZ  = 128,
	REDIS_RUN_ID_SZ = 48,
	REDIS_ADDR_SZ   = 160,      /* "host:port" */
	REDIS_ARGV_MAX  = 16,
	REDIS_ARGV_NUM_SZ = 24,     /* a 64-bit number, printed */
};

/** A command as arguments (redis_argv.c); strings are the caller's */
struct redis_argv {
	int argc;
	const char *argv[REDIS_ARGV_MAX];
	size_t len[REDIS_ARGV_MAX];
	char num[REDIS_ARGV_MAX][REDIS_ARGV_NUM_SZ];  /* numbers printed */
};

/** The client, one per process; redis_init() sets it up */
struct redis_client {
	const struct rh_conf *cfg;
	char *host;                 /* the server (Sentinel: the master) */
	uint16_t port;
	char *probe_chan;
	redisAsyncContext *cmd;     /* commands and scripts */
	redisAsyncContext *sub;     /* channels */
	enum redis_state state;
	unsigned ready;             /* connections connected and AUTHed */
	unsigned pending;           /* session commands before "up" */
	struct list subs;           /* struct redis_sub */
	struct list scripts;        /* struct redis_script */
	char run_id[REDIS_RUN_ID_SZ];  /* of this session's server */
	bool new_server;            /* not the last session's server */
	bool auth_logged;           /* this outage's AUTH refusal is */
	bool cluster_logged;        /* a Redis Cluster node was named */
	bool closing;
};

struct redis_shard;

extern struct redis_client redis_cl;

typedef void (redis_master_h)(int err, const char *host, uint16_t port,
			      void *arg);

/* redis.c */
void redis_fail(const char *what, const char *detail);
void redis_set_up(void);
void redis_redirect(const char *host, uint16_t port);
bool redis_sentinel_mode(void);
int  redis_ctx_open(redisAsyncContext **acp, const char *host,
		    uint16_t port, redisConnectCallback *connh,
		    redisDisconnectCallback *disconnh, char *why,
		    size_t whysz);
void redis_ctx_free(redisAsyncContext **acp);
int  redis_auth_send(redisAsyncContext *ac, redisCallbackFn *fn,
		     void *arg);

/* redis_argv.c */
int  redis_argv_add(struct redis_argv *a, const char *p, size_t n);
int  redis_argv_vadd(struct redis_argv *a, const char *fmt, va_list ap);

/* redis_loop.c */
int  redis_loop_attach(redisAsyncContext *ac);

/* redis_session.c */
int  redis_session_open(void);
void redis_session_reset(void);
void redis_session_close(void);
const char *redis_script_sha(const struct redis_script *s);
void redis_session_shard_ready(const struct redis_shard *shard);

/* redis_shard.c */
uint16_t redis_slot(const char *name);
int  redis_shard_map(const redisReply *slots);
const struct redis_shard *redis_shard_of(const char *name);
bool redis_shard_keys(const struct redis_shard *shard);
void redis_shard_addr(const struct redis_shard *shard, const char **host,
		      uint16_t *port);
redisAsyncContext *redis_shard_cmd(const char *name);
redisAsyncContext *redis_shard_sub(const char *name);
void redis_shard_reset(void);
unsigned redis_shard_count(void);

/* redis_sentinel.c */
int  redis_sentinel_init(const struct rh_conf *cfg, redis_master_h *switchh);
void redis_sentinel_close(void);
int  redis_sentinel_resolve(redis_master_h *h, void *arg);
void redis_sentinel_cancel(void);
int  redis_sentinel_status(struct odict *od);
