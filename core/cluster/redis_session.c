/**
 * @file redis_session.c  Redis client: a fresh pair of connections taken to "up"
 *
 * A session is redis.c's two connections from the moment they are opened
 * until either fails. With `redis_password`, each connection sends AUTH
 * first ("AUTH [user] password") and is used only once it is accepted: a
 * SUBSCRIBE pipelined behind it would put hiredis in subscribed mode,
 * where AUTH's reply has no callback to go to. A refusal is logged once
 * per outage, naming the keys to check. With both connections ready, the
 * session loads every Lua script (its SHA1 comes back from SCRIPT LOAD, so
 * we never hash locally), subscribes every channel, asks the server's run
 * id (INFO: a server other than last session's may have lost what that one
 * acknowledged), whether it is a Redis Cluster node (INFO cluster: not
 * supported, the keys of one script would sit on several masters, so the
 * session fails with one error naming it rather than with MOVED and
 * CROSSSLOT replies later) and, under Sentinel, its role (a sentinel cut
 * off from the others may still name the old master). When every answer
 * is in, the client is "up": since the channels are confirmed by then, a
 * consumer that reads Redis on "up" cannot miss a message published after
 * its read.
 *
 * The channels and scripts registered live here and are sent again on
 * every session. A channel may also come and go while up (replication
 * listens to the sharing tags this node holds or backs up): one joining
 * tells its owner when Redis confirms it (redis_subscribe_ready), which is
 * when a read of what was written before misses nothing; one leaving is
 * kept until hiredis answers its UNSUBSCRIBE, since hiredis calls the
 * channel's handler with it until then.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "redis_int.h"

/**
 * A channel, subscribed again on every connect. hiredis keeps it as the
 * channel's callback argument until the UNSUBSCRIBE is answered (or the
 * connection is freed), so an unwanted one lives until then.
 */
struct redis_sub {
	struct le le;
	char *chan;
	redis_msg_h *h;
	redis_ready_h *readyh;
	void *arg;
	bool confirmed;
	bool sent;            /* SUBSCRIBE went out on this session's `sub` */
	bool wanted;          /* false: unsubscribing, freed once answered */
};

/** A Lua script, loaded again on every connect */
struct redis_script {
	struct le le;
	char *src;
	char *sha;
};


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


/** Both connections are there and the session's commands went out */
static bool started(void)
{
	return redis_cl.ready == 2;
}


/** One of the session's commands answered; the last one makes it up */
static void answered(void)
{
	if (redis_cl.state != REDIS_ST_CONNECTING || !redis_cl.pending)
		return;

	if (!--redis_cl.pending)
		redis_set_up();
}


static bool is_ours(const redisAsyncContext *ac)
{
	return ac && (ac == redis_cl.cmd || ac == redis_cl.sub);
}


static void script_loaded(redisAsyncContext *ac, void *r, void *arg)
{
	struct redis_script *s = arg;
	redisReply *reply = r;

	if (!reply || !is_ours(ac))
		return;

	if (reply->type != REDIS_REPLY_STRING) {
		const char *e = reply->type == REDIS_REPLY_ERROR ? reply->str
			: "?";

		log_error("redis", "SCRIPT LOAD: %s%s", e,
			  !strncmp(e, "NOAUTH", 6) ? " (set redis_password)"
			  : "");
		redis_fail("script load", e);
		return;
	}

	s->sha = mem_deref(s->sha);
	if (str_dup(&s->sha, reply->str)) {
		redis_fail("script load", "out of memory");
		return;
	}

	answered();
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

	/* hiredis lets go of an unwanted one: its UNSUBSCRIBE was answered */
	if (!sub->wanted) {
		if (!reply || reply_is_str(reply, 0, "unsubscribe"))
			mem_deref(sub);
		return;
	}

	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;

	if (reply_is_str(reply, 0, "subscribe")) {
		if (!sub->confirmed)
			answered();
		sub->confirmed = true;
		if (sub->readyh)
			sub->readyh(sub->chan, sub->arg);
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
	if (redisAsyncCommand(redis_cl.sub, sub_handler, sub, "SUBSCRIBE %s",
			      sub->chan) != REDIS_OK)
		return ENOTCONN;

	sub->sent = true;
	return 0;
}


/* "run_id:<hex>" of INFO server; unknown counts as another server */
static void info_reply(redisAsyncContext *ac, void *r, void *arg)
{
	char prev[REDIS_RUN_ID_SZ];
	redisReply *reply = r;
	struct pl id = PL_INIT;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	str_ncpy(prev, redis_cl.run_id, sizeof(prev));
	redis_cl.run_id[0] = '\0';
	if (reply->type == REDIS_REPLY_STRING &&
	    !re_regex(reply->str, reply->len, "run_id:[0-9a-f]+", &id))
		(void)pl_strcpy(&id, redis_cl.run_id,
				sizeof(redis_cl.run_id));

	redis_cl.new_server = str_isset(prev) &&
		str_cmp(prev, redis_cl.run_id);
	answered();
}


/* "cluster_enabled:1" of INFO cluster: a Redis Cluster node */
static void cluster_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	if (reply->type != REDIS_REPLY_STRING ||
	    !strstr(reply->str, "cluster_enabled:1")) {
		answered();
		return;
	}

	if (!redis_cl.cluster_logged)
		log_error("redis", "%s:%u is a Redis Cluster node "
			  "(cluster_enabled:1), which rehome does not support "
			  "yet: point `redis` at a standalone Redis, or use "
			  "Sentinel", redis_cl.host, redis_cl.port);
	redis_cl.cluster_logged = true;
	redis_fail("info", "Redis Cluster not supported");
}


static void role_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	const char *role;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	/* not allowed to ask (ACL): READONLY replies will tell instead */
	if (reply->type != REDIS_REPLY_ARRAY || !reply->elements ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		log_debug("redis", "ROLE: %s", reply->type ==
			  REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		answered();
		return;
	}

	role = reply->element[0]->str;
	if (str_cmp(role, "master")) {
		log_warn("redis", "%s:%u is a %s, not the master: asking "
			 "Sentinel again", redis_cl.host, redis_cl.port, role);
		redis_fail("role", "not the master");
		return;
	}

	answered();
}


/** Both connections ready: scripts, channels, run id, cluster, role; up */
static void session_start(void)
{
	bool sentinel = redis_sentinel_mode();
	struct le *le;

	redis_cl.pending = list_count(&redis_cl.scripts) +
		list_count(&redis_cl.subs) + 2 + sentinel;

	LIST_FOREACH(&redis_cl.scripts, le) {
		struct redis_script *s = le->data;

		if (redisAsyncCommand(redis_cl.cmd, script_loaded, s,
				      "SCRIPT LOAD %s", s->src) != REDIS_OK)
			goto fail;
	}

	LIST_FOREACH(&redis_cl.subs, le) {
		if (sub_send(le->data))
			goto fail;
	}

	if (redisAsyncCommand(redis_cl.cmd, info_reply, NULL,
			      "INFO server") != REDIS_OK ||
	    redisAsyncCommand(redis_cl.cmd, cluster_reply, NULL,
			      "INFO cluster") != REDIS_OK ||
	    (sentinel && redisAsyncCommand(redis_cl.cmd, role_reply, NULL,
					   "ROLE") != REDIS_OK))
		goto fail;

	return;

 fail:
	redis_fail("session", "cannot send");
}


static void ready(void)
{
	if (++redis_cl.ready == 2)
		session_start();
}


static void auth_reply(redisAsyncContext *ac, void *r, void *arg)
{
	const struct rh_conf *cfg = redis_cl.cfg;
	redisReply *reply = r;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	if (reply->type != REDIS_REPLY_ERROR) {
		ready();
		return;
	}

	if (!redis_cl.auth_logged)
		log_error("redis", "%s:%u refused AUTH%s%s: %s (check "
			  "redis_password%s)", redis_cl.host, redis_cl.port,
			  str_isset(cfg->redis_user) ? " as " : "",
			  cfg->redis_user, reply->str,
			  str_isset(cfg->redis_user) ? " and redis_user" : "");
	redis_cl.auth_logged = true;
	redis_fail("auth", reply->str);
}


static void connect_handler(const redisAsyncContext *ac, int status)
{
	redisAsyncContext *c = ac == redis_cl.cmd ? redis_cl.cmd
		: ac == redis_cl.sub ? redis_cl.sub : NULL;

	if (!c)
		return;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		if (c == redis_cl.cmd)
			redis_cl.cmd = NULL;
		else
			redis_cl.sub = NULL;
		redis_fail("connect", ac->errstr);
		return;
	}

	if (!str_isset(redis_cl.cfg->redis_password)) {
		ready();
		return;
	}

	if (redis_auth_send(c, auth_reply, NULL))
		redis_fail("auth", "cannot send");
}


static void disconnect_handler(const redisAsyncContext *ac, int status)
{
	(void)status;

	if (ac == redis_cl.cmd)
		redis_cl.cmd = NULL;
	else if (ac == redis_cl.sub)
		redis_cl.sub = NULL;
	else
		return;

	redis_fail("connection lost", ac->errstr ? ac->errstr : "closed");
}


/** Open both connections to redis_cl.host:port; a failure is reported */
int redis_session_open(void)
{
	char why[REDIS_ERROR_SZ];
	int err;

	err = redis_ctx_open(&redis_cl.cmd, redis_cl.host, redis_cl.port,
			     connect_handler, disconnect_handler, why,
			     sizeof(why));
	if (!err)
		err = redis_ctx_open(&redis_cl.sub, redis_cl.host,
				     redis_cl.port, connect_handler,
				     disconnect_handler, why, sizeof(why));
	if (err)
		redis_fail("connect", why);

	return err;
}


/** The connections are gone (redis.c freed them): start over */
void redis_session_reset(void)
{
	struct le *le;

	redis_cl.ready = 0;
	redis_cl.pending = 0;

	LIST_FOREACH(&redis_cl.subs, le) {
		struct redis_sub *sub = le->data;

		sub->confirmed = false;
		sub->sent = false;
	}
}


void redis_session_close(void)
{
	list_flush(&redis_cl.subs);
	list_flush(&redis_cl.scripts);
}


static struct redis_sub *sub_find(const char *chan)
{
	struct le *le;

	LIST_FOREACH(&redis_cl.subs, le) {
		struct redis_sub *sub = le->data;

		if (!str_cmp(sub->chan, chan))
			return sub;
	}

	return NULL;
}


/**
 * Listen on a channel, now and after every reconnect. Register channels
 * before the first connect (right after redis_init) to have them confirmed
 * before "up".
 */
int redis_subscribe(const char *chan, redis_msg_h *h, void *arg)
{
	return redis_subscribe_ready(chan, h, NULL, arg);
}


/**
 * redis_subscribe(), and readyh (if set) each time Redis confirms the
 * channel: from then on no message published on it is missed, so that is
 * when to read what was written before. A channel unsubscribed and not
 * answered yet is taken back.
 */
int redis_subscribe_ready(const char *chan, redis_msg_h *h,
			  redis_ready_h *readyh, void *arg)
{
	struct redis_sub *sub;
	int err;

	if (!chan || !h)
		return EINVAL;
	if (!redis_cl.cfg)
		return ENOTCONN;

	sub = sub_find(chan);
	if (sub && sub->wanted)
		return EALREADY;

	if (!sub) {
		sub = mem_zalloc(sizeof(*sub), sub_destructor);
		if (!sub)
			return ENOMEM;

		err = str_dup(&sub->chan, chan);
		if (err) {
			mem_deref(sub);
			return err;
		}

		list_append(&redis_cl.subs, &sub->le, sub);
	}

	sub->h = h;
	sub->readyh = readyh;
	sub->arg = arg;
	sub->wanted = true;

	/* a session under way: join it (else the next one subscribes) */
	if (started() && !sub_send(sub) &&
	    redis_cl.state == REDIS_ST_CONNECTING)
		++redis_cl.pending;

	return 0;
}


/** Stop listening on a channel: its handler is not called again */
int redis_unsubscribe(const char *chan)
{
	struct redis_sub *sub = chan ? sub_find(chan) : NULL;

	if (!sub || !sub->wanted)
		return ENOENT;

	/* a session still connecting waits for it no more */
	if (sub->sent && !sub->confirmed)
		answered();

	sub->wanted = false;
	sub->confirmed = false;

	if (!sub->sent) {
		mem_deref(sub);
		return 0;
	}

	/* hiredis holds it until the answer, or until it frees `sub` */
	if (redis_cl.sub)
		(void)redisAsyncCommand(redis_cl.sub, NULL, NULL,
					"UNSUBSCRIBE %s", sub->chan);

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
	if (!redis_cl.cfg)
		return ENOTCONN;

	s = mem_zalloc(sizeof(*s), script_destructor);
	if (!s)
		return ENOMEM;

	err = str_dup(&s->src, src);
	if (err) {
		mem_deref(s);
		return err;
	}

	list_append(&redis_cl.scripts, &s->le, s);
	if (started())
		redis_fail("new script", "reconnecting to load it");

	*sp = s;
	return 0;
}


/** The SHA1 a script was loaded as, NULL before its first load */
const char *redis_script_sha(const struct redis_script *s)
{
	return s ? s->sha : NULL;
}
