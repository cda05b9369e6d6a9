/**
 * @file redis.c  Redis client on the main loop: async, two connections, reconnect
 *
 * hiredis runs asynchronously on the libuv loop that lives inside libre's
 * loop (uvre.c), so no call here ever blocks the SIP path. There are two
 * connections, because a SUBSCRIBEd connection takes nothing but pub/sub:
 * `cmd` for commands and scripts, `sub` for the channels. They are one
 * session: the client is "up" only when both are connected, every Lua
 * script is loaded (its SHA1 comes back from SCRIPT LOAD, so we never hash
 * locally) and every channel is confirmed. Consumers learn of it through
 * one state handler, and since a channel is confirmed before "up", a
 * consumer that reads Redis on "up" cannot miss a message published after
 * its read.
 *
 * Any failure of either connection tears both down and reconnects after a
 * backoff (100 ms doubling to 2 s). Commands are refused (ENOTCONN) while
 * not up instead of being queued here: only the caller knows whether a
 * change can be re-derived later (replication re-snapshots), so queueing
 * is its decision. Every accepted command gets its reply handler called
 * exactly once, with an error when the connection dies first, so callers
 * can own references through it.
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
#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <re.h>
#include "log.h"
#include "uvre.h"
#include "metrics.h"
#include "redis.h"

enum {
	BACKOFF_MIN_MS = 100,
	BACKOFF_MAX_MS = 2000,
	PROBE_MS       = 1000,
	TIMEOUT_MS     = 3000,
	PROBE_CMD      = 1 << 0,
	PROBE_SUB      = 1 << 1,
	ERROR_SZ       = 128,
	ADDR_SZ        = 160,       /* "host:port" */
};

/** A channel, subscribed again on every connect */
struct redis_sub {
	struct le le;
	char *chan;
	redis_msg_h *h;
	void *arg;
	bool confirmed;
};

/** A Lua script, loaded again on every connect */
struct redis_script {
	struct le le;
	char *src;
	char *sha;
};

/** One command in flight */
struct redis_cmd {
	redis_reply_h *h;
	void *arg;
};

static struct {
	char *host;
	uint16_t port;
	char *probe_chan;
	redisAsyncContext *cmd;
	redisAsyncContext *sub;
	enum redis_state state;
	unsigned connected;        /* contexts whose connect succeeded */
	unsigned pending;          /* script loads and subscriptions to go */
	struct list subs;
	struct list scripts;
	struct tmr reset;          /* tears down outside hiredis callbacks */
	struct tmr retry;
	struct tmr watchdog;
	uint32_t backoff;
	uint64_t since;            /* jiffies of the last state change */
	uint64_t probe_at;         /* jiffies of the probe in flight, 0 none */
	unsigned probe_acks;
	uint64_t ups;
	char last_error[ERROR_SZ];
	redis_state_h *stateh;
	void *arg;
	bool warned;               /* this outage was logged */
	bool init;
	bool closing;
} rds;

static const char *state_names[] = {"down", "connecting", "up"};


static void sub_destructor(void *arg)
{
	struct redis_sub *sub = arg;

	list_unlink(&sub->le);
	mem_deref(sub->chan);
}


static void script_destructor(void *arg)
{
	struct redis_script *s = arg;

	list_unlink(&s->le);
	mem_deref(s->src);
	mem_deref(s->sha);
}


static void session_start(void);
static void connect_start(void);
static void reset_handler(void *arg);


static void set_state(enum redis_state st)
{
	enum redis_state prev = rds.state;

	if (prev == st)
		return;

	rds.state = st;
	rds.since = tmr_jiffies();
	metrics_redis_up(st == REDIS_ST_UP);

	/* consumers care about up and about losing up, not the attempts */
	if (rds.stateh && (st == REDIS_ST_UP || prev == REDIS_ST_UP))
		rds.stateh(st, rds.arg);
}


/** Something broke: remember why, and reset both connections soon. */
static void fail(const char *what, const char *detail)
{
	if (rds.closing || tmr_isrunning(&rds.reset))
		return;

	re_snprintf(rds.last_error, sizeof(rds.last_error), "%s: %s", what,
		    detail ? detail : "?");
	tmr_start(&rds.reset, 0, reset_handler, NULL);
}


static void ctx_free(redisAsyncContext **acp)
{
	redisAsyncContext *ac = *acp;

	if (!ac)
		return;

	*acp = NULL;          /* our disconnect handler now ignores it */
	redisAsyncFree(ac);   /* runs the pending reply handlers */
}


static void teardown(void)
{
	struct le *le;

	ctx_free(&rds.cmd);
	ctx_free(&rds.sub);
	rds.connected = 0;
	rds.pending = 0;
	rds.probe_at = 0;

	LIST_FOREACH(&rds.subs, le) {
		struct redis_sub *sub = le->data;

		sub->confirmed = false;
	}
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
	if (!rds.warned)
		log_warn("redis", "%s:%u %s (%s); calls go on, changes are "
			 "re-snapshotted on reconnect", rds.host, rds.port,
			 rds.state == REDIS_ST_UP ? "down" : "unreachable",
			 rds.last_error);
	else
		log_debug("redis", "%s:%u: %s, retry in %u ms", rds.host,
			  rds.port, rds.last_error, rds.backoff);
	rds.warned = true;

	/* down first: handlers run by the teardown must see it */
	set_state(REDIS_ST_DOWN);
	teardown();

	tmr_start(&rds.retry, rds.backoff, retry_handler, NULL);
	rds.backoff = min(rds.backoff * 2, (uint32_t)BACKOFF_MAX_MS);
}


/** Both connections are there and the session's commands went out */
static bool session_started(void)
{
	return rds.connected == 2;
}


static void maybe_up(void)
{
	if (rds.state != REDIS_ST_CONNECTING || rds.pending)
		return;

	++rds.ups;
	rds.backoff = BACKOFF_MIN_MS;
	rds.warned = false;
	log_info("redis", "%s:%u up", rds.host, rds.port);
	set_state(REDIS_ST_UP);
}


static void connect_handler(const redisAsyncContext *ac, int status)
{
	if (ac != rds.cmd && ac != rds.sub)
		return;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		if (ac == rds.cmd)
			rds.cmd = NULL;
		else
			rds.sub = NULL;
		fail("connect", ac->errstr);
		return;
	}

	if (++rds.connected == 2)
		session_start();
}


static void disconnect_handler(const redisAsyncContext *ac, int status)
{
	(void)status;

	if (ac == rds.cmd)
		rds.cmd = NULL;
	else if (ac == rds.sub)
		rds.sub = NULL;
	else
		return;

	fail("connection lost", ac->errstr ? ac->errstr : "closed");
}


static int ctx_open(redisAsyncContext **acp)
{
	redisAsyncContext *ac;

	ac = redisAsyncConnect(rds.host, rds.port);
	if (!ac)
		return ENOMEM;

	if (ac->err) {
		fail("connect", ac->errstr);
		redisAsyncFree(ac);
		return ECONNREFUSED;
	}

	if (redisLibuvAttach(ac, uvre_loop()) != REDIS_OK) {
		redisAsyncFree(ac);
		return ENOMEM;
	}

	redisAsyncSetConnectCallback(ac, connect_handler);
	redisAsyncSetDisconnectCallback(ac, disconnect_handler);
	*acp = ac;

	return 0;
}


static void connect_start(void)
{
	int err;

	set_state(REDIS_ST_CONNECTING);

	err = ctx_open(&rds.cmd);
	if (!err)
		err = ctx_open(&rds.sub);
	if (err)
		fail("connect", "cannot open a connection");

	uvre_kick();
}


static void script_loaded(redisAsyncContext *ac, void *r, void *arg)
{
	struct redis_script *s = arg;
	redisReply *reply = r;
	(void)ac;

	if (!reply)
		return;

	if (reply->type != REDIS_REPLY_STRING) {
		log_error("redis", "SCRIPT LOAD: %s",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
		fail("script load", "refused");
		return;
	}

	s->sha = mem_deref(s->sha);
	if (str_dup(&s->sha, reply->str)) {
		fail("script load", "out of memory");
		return;
	}

	--rds.pending;
	maybe_up();
}


static bool reply_is_str(const redisReply *reply, size_t i, const char *s)
{
	const redisReply *e;

	if (i >= reply->elements)
		return false;

	e = reply->element[i];
	return e->type == REDIS_REPLY_STRING && 0 == str_casecmp(e->str, s);
}


static void sub_handler(redisAsyncContext *ac, void *r, void *arg)
{
	struct redis_sub *sub = arg;
	redisReply *reply = r;
	struct pl chan, msg;
	(void)ac;

	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;

	if (reply_is_str(reply, 0, "subscribe")) {
		if (!sub->confirmed && rds.state == REDIS_ST_CONNECTING) {
			--rds.pending;
			maybe_up();
		}
		sub->confirmed = true;
		return;
	}

	if (!reply_is_str(reply, 0, "message") ||
	    reply->element[2]->type != REDIS_REPLY_STRING)
		return;

	chan.p = reply->element[1]->str;
	chan.l = reply->element[1]->len;
	msg.p = reply->element[2]->str;
	msg.l = reply->element[2]->len;
	sub->h(&chan, &msg, sub->arg);
}


static int sub_send(struct redis_sub *sub)
{
	if (redisAsyncCommand(rds.sub, sub_handler, sub, "SUBSCRIBE %s",
			      sub->chan) != REDIS_OK)
		return ENOTCONN;

	uvre_kick();
	return 0;
}


/** Both connections are there: load the scripts, subscribe, then up. */
static void session_start(void)
{
	struct le *le;

	rds.pending = list_count(&rds.scripts) + list_count(&rds.subs);

	LIST_FOREACH(&rds.scripts, le) {
		struct redis_script *s = le->data;

		if (redisAsyncCommand(rds.cmd, script_loaded, s,
				      "SCRIPT LOAD %s", s->src) != REDIS_OK) {
			fail("script load", "cannot send");
			return;
		}
	}

	LIST_FOREACH(&rds.subs, le) {
		if (sub_send(le->data)) {
			fail("subscribe", "cannot send");
			return;
		}
	}

	maybe_up();
	uvre_kick();
}


static void probe_msg_handler(const struct pl *chan, const struct pl *msg,
			      void *arg)
{
	(void)chan;
	(void)msg;
	(void)arg;

	rds.probe_acks |= PROBE_SUB;
}


static void probe_reply_handler(int err, const struct redisReply *reply,
				void *arg)
{
	(void)reply;
	(void)arg;

	if (!err)
		rds.probe_acks |= PROBE_CMD;
}


static void watchdog_handler(void *arg)
{
	uint64_t now = tmr_jiffies();
	(void)arg;

	tmr_start(&rds.watchdog, PROBE_MS, watchdog_handler, NULL);

	if (rds.state == REDIS_ST_CONNECTING &&
	    now - rds.since > TIMEOUT_MS) {
		fail("connect", "timeout");
		return;
	}

	if (rds.state != REDIS_ST_UP)
		return;

	if (rds.probe_at && rds.probe_acks != (PROBE_CMD | PROBE_SUB)) {
		if (now - rds.probe_at > TIMEOUT_MS)
			fail("watchdog", "no answer for 3 s");
		return;
	}

	rds.probe_at = now;
	rds.probe_acks = 0;
	(void)redis_command(probe_reply_handler, NULL, "PUBLISH %s probe",
			    rds.probe_chan);
}


/**
 * Start connecting to Redis. `probe_chan` is a channel private to this
 * process, used by the watchdog to see both connections work end to end.
 */
int redis_init(const char *host, uint16_t port, const char *probe_chan)
{
	int err;

	if (!host || !port || !probe_chan)
		return EINVAL;
	if (rds.init)
		return EALREADY;
	if (!uvre_loop())
		return ENOTCONN;

	memset(&rds, 0, sizeof(rds));
	err  = str_dup(&rds.host, host);
	err |= str_dup(&rds.probe_chan, probe_chan);
	if (err)
		goto out;

	rds.port = port;
	rds.backoff = BACKOFF_MIN_MS;
	rds.init = true;

	err = redis_subscribe(probe_chan, probe_msg_handler, NULL);
	if (err)
		goto out;

	tmr_start(&rds.watchdog, PROBE_MS, watchdog_handler, NULL);
	connect_start();

 out:
	if (err)
		redis_close();
	return err;
}


void redis_close(void)
{
	if (!rds.init)
		return;

	rds.closing = true;
	tmr_cancel(&rds.reset);
	tmr_cancel(&rds.retry);
	tmr_cancel(&rds.watchdog);

	/* a last word (a node's goodbye) may still sit in the buffer */
	if (rds.cmd && rds.state == REDIS_ST_UP)
		redisAsyncHandleWrite(rds.cmd);

	rds.state = REDIS_ST_DOWN;
	metrics_redis_up(false);
	teardown();

	list_flush(&rds.subs);
	list_flush(&rds.scripts);
	mem_deref(rds.host);
	mem_deref(rds.probe_chan);
	memset(&rds, 0, sizeof(rds));
	uvre_kick();
}


/**
 * Listen on a channel, now and after every reconnect. Register channels
 * before the first connect (right after redis_init) to have them confirmed
 * before "up".
 */
int redis_subscribe(const char *chan, redis_msg_h *h, void *arg)
{
	struct redis_sub *sub;
	int err;

	if (!chan || !h)
		return EINVAL;
	if (!rds.init)
		return ENOTCONN;

	sub = mem_zalloc(sizeof(*sub), sub_destructor);
	if (!sub)
		return ENOMEM;

	err = str_dup(&sub->chan, chan);
	if (err) {
		mem_deref(sub);
		return err;
	}

	sub->h = h;
	sub->arg = arg;
	list_append(&rds.subs, &sub->le, sub);

	/* a session under way: join it (else the next one subscribes) */
	if (session_started() && !sub_send(sub) &&
	    rds.state == REDIS_ST_CONNECTING)
		++rds.pending;

	return 0;
}


/**
 * Register a Lua script run with redis_eval(); it is (re)loaded on every
 * connect, before "up". The object belongs to this module.
 */
int redis_script_add(struct redis_script **sp, const char *src)
{
	struct redis_script *s;
	int err;

	if (!sp || !src)
		return EINVAL;
	if (!rds.init)
		return ENOTCONN;

	s = mem_zalloc(sizeof(*s), script_destructor);
	if (!s)
		return ENOMEM;

	err = str_dup(&s->src, src);
	if (err) {
		mem_deref(s);
		return err;
	}

	list_append(&rds.scripts, &s->le, s);
	if (session_started())
		fail("new script", "reconnecting to load it");

	*sp = s;
	return 0;
}


static void reply_handler(redisAsyncContext *ac, void *r, void *arg)
{
	struct redis_cmd *cmd = arg;
	redisReply *reply = r;
	int err = 0;
	(void)ac;

	if (!reply)
		err = rds.closing ? ECONNABORTED : ECONNRESET;
	else if (reply->type == REDIS_REPLY_ERROR)
		err = EPROTO;

	cmd->h(err, reply, cmd->arg);
	mem_deref(cmd);
}


static int command_send(redis_reply_h *h, void *arg, const char *fmt,
			va_list ap)
{
	struct redis_cmd *cmd = NULL;

	if (rds.state != REDIS_ST_UP || !rds.cmd)
		return ENOTCONN;

	if (h) {
		cmd = mem_zalloc(sizeof(*cmd), NULL);
		if (!cmd)
			return ENOMEM;

		cmd->h = h;
		cmd->arg = arg;
	}

	if (redisvAsyncCommand(rds.cmd, cmd ? reply_handler : NULL, cmd, fmt,
			       ap) != REDIS_OK) {
		mem_deref(cmd);
		return ENOTCONN;
	}

	uvre_kick();
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
	err = command_send(h, arg, fmt, ap);
	va_end(ap);

	return err;
}


/** Run a registered script: fmt gives "NUMKEYS KEY.. ARG.." */
int redis_eval(const struct redis_script *script, redis_reply_h *h,
	       void *arg, const char *fmt, ...)
{
	char *full = NULL;
	va_list ap;
	int err;

	if (!script || !fmt)
		return EINVAL;
	if (!script->sha)
		return ENOTCONN;

	err = re_sdprintf(&full, "EVALSHA %s %s", script->sha, fmt);
	if (err)
		return err;

	va_start(ap, fmt);
	err = command_send(h, arg, full, ap);
	va_end(ap);

	mem_deref(full);
	return err;
}


/** One handler, told when the session goes up or down. */
void redis_set_state_handler(redis_state_h *h, void *arg)
{
	rds.stateh = h;
	rds.arg = arg;
}


enum redis_state redis_state(void)
{
	return rds.state;
}


bool redis_is_up(void)
{
	return rds.state == REDIS_ST_UP;
}


static const char *redis_state_name(enum redis_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "?";
}


/** Add "redis": {state, addr, since_ms, connects, last_error} to od. */
int redis_status(struct odict *od)
{
	struct odict *o;
	char addr[ADDR_SZ];
	int err;

	if (!od)
		return EINVAL;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	re_snprintf(addr, sizeof(addr), "%s:%u", rds.host ? rds.host : "",
		    rds.port);
	err  = odict_entry_add(o, "state", ODICT_STRING,
			       redis_state_name(rds.state));
	err |= odict_entry_add(o, "addr", ODICT_STRING, addr);
	err |= odict_entry_add(o, "since_ms", ODICT_INT,
			       (int64_t)(tmr_jiffies() - rds.since));
	err |= odict_entry_add(o, "connects", ODICT_INT, (int64_t)rds.ups);
	err |= odict_entry_add(o, "last_error", ODICT_STRING, rds.last_error);
	if (!err)
		err = odict_entry_add(od, "redis", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}
