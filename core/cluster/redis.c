/**
 * @file redis.c  Redis client on the main loop: async, two connections, reconnect
 *
 * hiredis runs asynchronously on libre's loop (redis_loop.c: commands
 * queued in one loop turn leave in one write at its end), so no call
 * here ever blocks the SIP path. There are two
 * connections, because a SUBSCRIBEd connection takes nothing but pub/sub:
 * `cmd` for commands and scripts, `sub` for the channels. They are one
 * session (redis_session.c): the client is "up" only when both are
 * connected and authenticated, every Lua script is loaded and every
 * channel is confirmed. Consumers learn of it through one state handler.
 *
 * The server is `redis HOST:PORT`, or, with `redis_sentinel`, whatever
 * master the sentinels name before each connect (redis_sentinel.c). A
 * fail-over reaches us three ways: the connection to the old master
 * breaks, a sentinel announces `+switch-master`, or a command is refused
 * with READONLY (the old master came back as a replica); each one resets
 * the session, and the next connect asks the sentinels again. To the
 * modules above a fail-over is a reconnect like any other: they re-read
 * and re-write what they hold on every "up" (and redis_new_server() tells
 * them that acknowledged writes may have been lost).
 *
 * On a Redis Cluster (`redis_cluster`) the session lives on the master
 * of the keys' slot, with one more pair of connections to each other
 * master (redis_shard.c); channels are published with SPUBLISH on the
 * master of their slot (redis_publish()). The node named in the config
 * is where each session starts: after a reset we go back to it and ask
 * for the map again, so a fail-over of the keys' master is followed like
 * any other reset. A MOVED reply also resets the session.
 *
 * Any failure of either connection tears both down and reconnects after a
 * backoff (100 ms doubling to 2 s; a new master announced by Sentinel is
 * tried at once). Commands are refused (ENOTCONN) while not up instead of
 * being queued here: only the caller knows whether a change can be
 * re-derived later (replication re-snapshots), so queueing is its
 * decision. Every accepted command gets its reply handler called exactly
 * once, with an error when the connection dies first, so callers can own
 * references through it.
 *
 * A TCP connection to a hung Redis stays "connected", so a watchdog probes
 * every second: it publishes on this node's private channel and wants both
 * the PUBLISH reply (cmd) and the message itself (sub) within 3 s. hiredis
 * has no timers of its own; the probe doubles as the connect timeout.
 *
 * Teardown never happens inside a hiredis callback (freeing a context
 * there is forbidden): failures only arm a zero-delay libre timer.
 */
#include <string.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "redis.h"
#include "redis_int.h"

enum {
	BACKOFF_MIN_MS = 100,
	BACKOFF_MAX_MS = 2000,
	PROBE_MS       = 1000,
	TIMEOUT_MS     = 3000,
	PROBE_CMD      = 1 << 0,
	PROBE_SUB      = 1 << 1,
};

/** One command in flight */
struct redis_cmd {
	redis_reply_h *h;
	void *arg;
};

struct redis_client redis_cl;

/* what only this file uses */
static struct {
	struct tmr reset;          /* tears down outside hiredis callbacks */
	struct tmr retry;
	struct tmr watchdog;
	uint32_t backoff;
	uint64_t since;            /* jiffies of the last state change */
	uint64_t opened;           /* jiffies the connections were opened */
	uint64_t probe_at;         /* jiffies of the probe in flight, 0 none */
	unsigned probe_acks;
	uint64_t ups;
	char last_error[REDIS_ERROR_SZ];
	redis_state_h *stateh;
	void *arg;
	bool resolving;            /* asking the sentinels for the master */
	bool warned;               /* this outage was logged */
	bool redirected;           /* next connect: the keys' master */
} rd;

static const char *state_names[] = {"down", "connecting", "up"};


static void connect_start(void);
static void reset_handler(void *arg);


/* "host:port", or the master's name while Sentinel has not named it */
static int addr_print(struct re_printf *pf, void *arg)
{
	(void)arg;

	if (!redis_cl.host)
		return re_hprintf(pf, "master %s", redis_cl.cfg->redis_master);

	return re_hprintf(pf, "%s:%u", redis_cl.host, redis_cl.port);
}


static void set_state(enum redis_state st)
{
	enum redis_state prev = redis_cl.state;

	if (prev == st)
		return;

	redis_cl.state = st;
	rd.since = tmr_jiffies();
	metrics_redis_up(st == REDIS_ST_UP);

	/* consumers care about up and about losing up, not the attempts */
	if (rd.stateh && (st == REDIS_ST_UP || prev == REDIS_ST_UP))
		rd.stateh(st, rd.arg);
}


/** Something broke: remember why, and reset both connections soon. */
void redis_fail(const char *what, const char *detail)
{
	if (redis_cl.closing || tmr_isrunning(&rd.reset))
		return;

	re_snprintf(rd.last_error, sizeof(rd.last_error), "%s: %s", what,
		    detail ? detail : "?");
	tmr_start(&rd.reset, 0, reset_handler, NULL);
}


/** Free a context we own, outside its callbacks; NULL-safe */
void redis_ctx_free(redisAsyncContext **acp)
{
	redisAsyncContext *ac = *acp;

	if (!ac)
		return;

	*acp = NULL;          /* our disconnect handler now ignores it */
	redisAsyncFree(ac);   /* runs the pending reply handlers */
}


static void teardown(void)
{
	redis_sentinel_cancel();
	rd.resolving = false;
	redis_ctx_free(&redis_cl.cmd);
	redis_ctx_free(&redis_cl.sub);
	redis_shard_reset();
	redis_session_reset();
	rd.probe_at = 0;
}


static void retry_handler(void *arg)
{
	(void)arg;
	connect_start();
}


static void reset_handler(void *arg)
{
	(void)arg;

	/* one warning per outage, not one per attempt */
	if (!rd.warned)
		log_warn("redis", "%H %s (%s); calls go on, changes are "
			 "re-snapshotted on reconnect", addr_print, NULL,
			 redis_cl.state == REDIS_ST_UP ? "down" : "unreachable",
			 rd.last_error);
	else
		log_debug("redis", "%H: %s, retry in %u ms", addr_print, NULL,
			  rd.last_error, rd.backoff);
	rd.warned = true;

	/* down first: handlers run by the teardown must see it */
	set_state(REDIS_ST_DOWN);
	teardown();

	tmr_start(&rd.retry, rd.backoff, retry_handler, NULL);
	rd.backoff = min(rd.backoff * 2, (uint32_t)BACKOFF_MAX_MS);
}


/** The session's last answer is in: commands are accepted now */
void redis_set_up(void)
{
	++rd.ups;
	rd.backoff = BACKOFF_MIN_MS;
	rd.warned = false;
	redis_cl.auth_logged = false;
	log_info("redis", "%H up%s", addr_print, NULL, redis_cl.new_server ?
		 " (not the server of the last session)" : "");
	set_state(REDIS_ST_UP);
}


static void session_open(void)
{
	rd.opened = tmr_jiffies();
	(void)redis_session_open();
}


static bool is_current(const char *host, uint16_t port)
{
	return redis_cl.host && port == redis_cl.port &&
		0 == str_casecmp(host, redis_cl.host);
}


/* redis_master_h: the sentinels named the master, connect to it */
static void master_found(int err, const char *host, uint16_t port,
			 void *arg)
{
	(void)arg;

	rd.resolving = false;
	if (err) {
		redis_fail("sentinel", "no sentinel named the master");
		return;
	}

	if (!is_current(host, port)) {
		redis_cl.host = mem_deref(redis_cl.host);
		if (str_dup(&redis_cl.host, host)) {
			redis_fail("sentinel", "out of memory");
			return;
		}

		log_info("redis", "master %s is %s:%u (from Sentinel)",
			 redis_cl.cfg->redis_master, host, port);
		redis_cl.port = port;
	}

	session_open();
}


/** On a Redis Cluster: the keys live on host:port, move the session there */
void redis_redirect(const char *host, uint16_t port)
{
	char *h = NULL;

	if (str_dup(&h, host)) {
		redis_fail("cluster", "out of memory");
		return;
	}

	log_info("redis", "the keys of %s live on cluster master %s:%u",
		 redis_cl.cfg->keyns, host, port);
	mem_deref(redis_cl.host);
	redis_cl.host = h;
	redis_cl.port = port;
	rd.redirected = true;
	rd.warned = true;          /* a move, not an outage */
	rd.backoff = BACKOFF_MIN_MS;
	redis_fail("cluster", "moving to the keys' master");
}


/* every session but a redirected one starts at the configured node */
static int seed_restore(void)
{
	char *h = NULL;
	int err;

	if (rd.redirected) {
		rd.redirected = false;
		return 0;
	}

	err = str_dup(&h, redis_cl.cfg->redis_host);
	if (err)
		return err;

	mem_deref(redis_cl.host);
	redis_cl.host = h;
	redis_cl.port = redis_cl.cfg->redis_port;
	return 0;
}


static void connect_start(void)
{
	int err;

	set_state(REDIS_ST_CONNECTING);

	if (redis_cluster_mode() && seed_restore()) {
		redis_fail("cluster", "out of memory");
		return;
	}

	if (!redis_sentinel_mode()) {
		session_open();
		return;
	}

	rd.resolving = true;
	err = redis_sentinel_resolve(master_found, NULL);
	if (err) {
		rd.resolving = false;
		redis_fail("sentinel", "cannot ask the sentinels");
	}
}


/* redis_master_h: Sentinel announced a fail-over of our master */
static void master_switched(int err, const char *host, uint16_t port,
			    void *arg)
{
	char addr[REDIS_ADDR_SZ];
	(void)err;
	(void)arg;

	if (redis_cl.state == REDIS_ST_UP && is_current(host, port))
		return;

	log_info("redis", "Sentinel: master %s moved to %s:%u, reconnecting",
		 redis_cl.cfg->redis_master, host, port);

	/* no backoff for a master that is known to be there */
	rd.backoff = BACKOFF_MIN_MS;
	re_snprintf(addr, sizeof(addr), "now %s:%u", host, port);
	if (tmr_isrunning(&rd.retry))
		tmr_start(&rd.retry, 0, retry_handler, NULL);
	else
		redis_fail("master switched", addr);
}


/**
 * A connection to host:port on the main loop, with our handlers. On error
 * nothing is left open and `why` says what went wrong.
 */
int redis_ctx_open(redisAsyncContext **acp, const char *host,
		   uint16_t port, redisConnectCallback *connh,
		   redisDisconnectCallback *disconnh, char *why,
		   size_t whysz)
{
	redisAsyncContext *ac;

	ac = redisAsyncConnect(host, port);
	if (!ac) {
		str_ncpy(why, "out of memory", whysz);
		return ENOMEM;
	}

	if (ac->err) {
		str_ncpy(why, ac->errstr, whysz);
		redisAsyncFree(ac);
		return ECONNREFUSED;
	}

	if (redis_loop_attach(ac)) {
		str_ncpy(why, "cannot attach to the loop", whysz);
		redisAsyncFree(ac);
		return ENOMEM;
	}

	redisAsyncSetConnectCallback(ac, connh);
	redisAsyncSetDisconnectCallback(ac, disconnh);
	*acp = ac;

	return 0;
}


/** AUTH with redis_password (as redis_user if set) on a connection */
int redis_auth_send(redisAsyncContext *ac, redisCallbackFn *fn, void *arg)
{
	const struct rh_conf *cfg = redis_cl.cfg;
	int r;

	if (str_isset(cfg->redis_user))
		r = redisAsyncCommand(ac, fn, arg, "AUTH %s %s",
				      cfg->redis_user, cfg->redis_password);
	else
		r = redisAsyncCommand(ac, fn, arg, "AUTH %s",
				      cfg->redis_password);

	return r == REDIS_OK ? 0 : ENOTCONN;
}


bool redis_sentinel_mode(void)
{
	return redis_cl.cfg && redis_cl.cfg->redis_sentinelc > 0;
}


static void probe_msg_handler(const struct pl *chan, const struct pl *msg,
			      void *arg)
{
	(void)chan;
	(void)msg;
	(void)arg;

	rd.probe_acks |= PROBE_SUB;
}


static void probe_reply_handler(int err, const struct redisReply *reply,
				void *arg)
{
	(void)reply;
	(void)arg;

	if (!err)
		rd.probe_acks |= PROBE_CMD;
}


static void watchdog_handler(void *arg)
{
	uint64_t now = tmr_jiffies();
	(void)arg;

	tmr_start(&rd.watchdog, PROBE_MS, watchdog_handler, NULL);

	/* the sentinels are asked with a timeout of their own */
	if (redis_cl.state == REDIS_ST_CONNECTING && !rd.resolving &&
	    now - rd.opened > TIMEOUT_MS) {
		redis_fail("connect", "timeout");
		return;
	}

	if (redis_cl.state != REDIS_ST_UP)
		return;

	if (rd.probe_at && rd.probe_acks != (PROBE_CMD | PROBE_SUB)) {
		if (now - rd.probe_at > TIMEOUT_MS)
			redis_fail("watchdog", "no answer for 3 s");
		return;
	}

	rd.probe_at = now;
	rd.probe_acks = 0;
	(void)redis_publish(redis_cl.probe_chan, (const uint8_t *)"probe", 5,
			    probe_reply_handler, NULL);
}


/**
 * Start connecting to the Redis of the config (`redis`, or the master
 * that `redis_sentinel` names). `probe_chan` is a channel private to this
 * process, used by the watchdog to see both connections work end to end.
 */
int redis_init(const struct rh_conf *cfg, const char *probe_chan)
{
	int err;

	if (!cfg || !probe_chan)
		return EINVAL;
	if (redis_cl.cfg)
		return EALREADY;

	memset(&redis_cl, 0, sizeof(redis_cl));
	memset(&rd, 0, sizeof(rd));
	redis_cl.cfg = cfg;
	rd.backoff = BACKOFF_MIN_MS;

	err = str_dup(&redis_cl.probe_chan, probe_chan);
	if (err)
		goto out;

	if (cfg->redis_sentinelc)
		err = redis_sentinel_init(cfg, master_switched);
	else
		err = str_dup(&redis_cl.host, cfg->redis_host);
	if (err)
		goto out;

	redis_cl.port = cfg->redis_port;
	err = redis_subscribe(probe_chan, probe_msg_handler, NULL);
	if (err)
		goto out;

	tmr_start(&rd.watchdog, PROBE_MS, watchdog_handler, NULL);
	connect_start();

 out:
	if (err)
		redis_close();
	return err;
}


void redis_close(void)
{
	if (!redis_cl.cfg)
		return;

	redis_cl.closing = true;
	tmr_cancel(&rd.reset);
	tmr_cancel(&rd.retry);
	tmr_cancel(&rd.watchdog);

	/* a last word (a node's goodbye) may still sit in the buffer */
	if (redis_cl.cmd && redis_cl.state == REDIS_ST_UP)
		redisAsyncHandleWrite(redis_cl.cmd);

	redis_cl.state = REDIS_ST_DOWN;
	metrics_redis_up(false);
	teardown();

	redis_sentinel_close();
	redis_session_close();
	mem_deref(redis_cl.host);
	mem_deref(redis_cl.probe_chan);
	memset(&redis_cl, 0, sizeof(redis_cl));
	memset(&rd, 0, sizeof(rd));
}


static void reply_handler(redisAsyncContext *ac, void *r, void *arg)
{
	struct redis_cmd *cmd = arg;
	redisReply *reply = r;
	int err = 0;
	(void)ac;

	if (!reply)
		err = redis_cl.closing ? ECONNABORTED : ECONNRESET;
	else if (reply->type == REDIS_REPLY_ERROR)
		err = EPROTO;

	/* our master became a replica: find the new one */
	if (err == EPROTO && !strncmp(reply->str, "READONLY", 8))
		redis_fail("read-only", "the server is a replica now");

	/* a Redis Cluster's slot moved: ask for the map again */
	if (err == EPROTO && !strncmp(reply->str, "MOVED", 5))
		redis_fail("moved", reply->str);

	cmd->h(err, reply, cmd->arg);
	mem_deref(cmd);
}


/** The reply's handler, NULL to ignore the reply; ENOTCONN if not up */
static int cmd_alloc(struct redis_cmd **cmdp, redisAsyncContext *ac,
		     redis_reply_h *h, void *arg)
{
	struct redis_cmd *cmd = NULL;

	if (redis_cl.state != REDIS_ST_UP || !ac)
		return ENOTCONN;

	if (h) {
		cmd = mem_zalloc(sizeof(*cmd), NULL);
		if (!cmd)
			return ENOMEM;

		cmd->h = h;
		cmd->arg = arg;
	}

	*cmdp = cmd;
	return 0;
}


static int command_send(redisAsyncContext *ac, redis_reply_h *h,
			void *arg, const char *fmt, va_list ap)
{
	struct redis_cmd *cmd;
	int err;

	err = cmd_alloc(&cmd, ac, h, arg);
	if (err)
		return err;

	if (redisvAsyncCommand(ac, cmd ? reply_handler : NULL, cmd,
			       fmt, ap) != REDIS_OK) {
		mem_deref(cmd);
		return ENOTCONN;
	}

	return 0;
}


static int command_send_argv(redisAsyncContext *ac, redis_reply_h *h,
			     void *arg, struct redis_argv *a)
{
	struct redis_cmd *cmd;
	int err;

	err = cmd_alloc(&cmd, ac, h, arg);
	if (err)
		return err;

	if (redisAsyncCommandArgv(ac, cmd ? reply_handler : NULL, cmd,
				  a->argc, a->argv, a->len) != REDIS_OK) {
		mem_deref(cmd);
		return ENOTCONN;
	}

	return 0;
}


/**
 * Send a command (hiredis format: %s one argument, %b binary + length).
 * ENOTCONN when Redis is not up; h may be NULL to ignore the reply.
 */
int redis_command(redis_reply_h *h, void *arg, const char *fmt, ...)
{
	va_list ap;
	int err;

	if (!fmt)
		return EINVAL;

	va_start(ap, fmt);
	err = command_send(redis_cl.cmd, h, arg, fmt, ap);
	va_end(ap);

	return err;
}


static int command_on(redisAsyncContext *ac, redis_reply_h *h, void *arg,
		      const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = command_send(ac, h, arg, fmt, ap);
	va_end(ap);

	return err;
}


/**
 * Publish msg on chan: PUBLISH, or on a Redis Cluster SPUBLISH on the
 * master of chan's slot (reaching only that master's subscribers instead
 * of every node of the cluster). h may be NULL.
 */
int redis_publish(const char *chan, const uint8_t *msg, size_t len,
		  redis_reply_h *h, void *arg)
{
	if (!chan || !msg)
		return EINVAL;

	if (!redis_cluster_mode())
		return command_on(redis_cl.cmd, h, arg, "PUBLISH %s %b", chan,
				  msg, len);

	return command_on(redis_shard_cmd(chan), h, arg, "SPUBLISH %s %b",
			  chan, msg, len);
}


/**
 * The command a script publishes with: SPUBLISH on a Redis Cluster, where
 * a script may only publish on a channel of its keys' slot.
 */
const char *redis_publish_cmd(void)
{
	return redis_cluster_mode() ? "SPUBLISH" : "PUBLISH";
}


bool redis_cluster_mode(void)
{
	return redis_cl.cfg && redis_cl.cfg->redis_cluster;
}


/** EVALSHA as argv (redis_argv.c); EINVAL: a format hiredis must read */
static int eval_argv(const char *sha, redis_reply_h *h, void *arg,
		     const char *fmt, va_list ap)
{
	struct redis_argv a;
	int err;

	a.argc = 0;
	err  = redis_argv_add(&a, "EVALSHA", 7);
	err |= redis_argv_add(&a, sha, strlen(sha));
	if (!err)
		err = redis_argv_vadd(&a, fmt, ap);
	if (err)
		return EINVAL;

	return command_send_argv(redis_cl.cmd, h, arg, &a);
}


/** Run a registered script: fmt gives "NUMKEYS KEY.. ARG.." */
int redis_eval(const struct redis_script *script, redis_reply_h *h,
	       void *arg, const char *fmt, ...)
{
	const char *sha = redis_script_sha(script);
	char *full = NULL;
	va_list ap;
	int err;

	if (!script || !fmt)
		return EINVAL;
	if (!sha)
		return ENOTCONN;

	va_start(ap, fmt);
	err = eval_argv(sha, h, arg, fmt, ap);
	va_end(ap);
	if (err != EINVAL)
		return err;

	err = re_sdprintf(&full, "EVALSHA %s %s", sha, fmt);
	if (err)
		return err;

	va_start(ap, fmt);
	err = command_send(redis_cl.cmd, h, arg, full, ap);
	va_end(ap);

	mem_deref(full);
	return err;
}


/** One handler, told when the session goes up or down. */
void redis_set_state_handler(redis_state_h *h, void *arg)
{
	rd.stateh = h;
	rd.arg = arg;
}


enum redis_state redis_state(void)
{
	return redis_cl.state;
}


bool redis_is_up(void)
{
	return redis_cl.state == REDIS_ST_UP;
}


/**
 * This session's server is not the last session's (a fail-over to a
 * replica, a restart): writes the last one acknowledged may be lost.
 */
bool redis_new_server(void)
{
	return redis_cl.new_server;
}


static const char *redis_state_name(enum redis_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "?";
}


/**
 * Add "redis": {state, addr, since_ms, connects, last_error, and with
 * Sentinel "sentinel": {master, sentinels, watching, switches}} to od.
 */
int redis_status(struct odict *od)
{
	struct odict *o;
	char addr[REDIS_ADDR_SZ];
	int err;

	if (!od)
		return EINVAL;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	re_snprintf(addr, sizeof(addr), "%s:%u",
		    redis_cl.host ? redis_cl.host : "", redis_cl.port);
	err  = odict_entry_add(o, "state", ODICT_STRING,
			       redis_state_name(redis_cl.state));
	err |= odict_entry_add(o, "addr", ODICT_STRING, addr);
	err |= odict_entry_add(o, "since_ms", ODICT_INT,
			       (int64_t)(tmr_jiffies() - rd.since));
	err |= odict_entry_add(o, "connects", ODICT_INT, (int64_t)rd.ups);
	err |= odict_entry_add(o, "last_error", ODICT_STRING, rd.last_error);
	if (!err && redis_sentinel_mode())
		err = redis_sentinel_status(o);
	if (!err && redis_cluster_mode())
		err = odict_entry_add(o, "cluster_masters", ODICT_INT,
				      (int64_t)redis_shard_count());
	if (!err)
		err = odict_entry_add(od, "redis", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}
