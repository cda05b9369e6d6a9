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
 * acknowledged), whether it is a Redis Cluster node (INFO cluster: it
 * must be one exactly when `redis_cluster` names it, else the session
 * fails with one error saying so rather than with MOVED and CROSSSLOT
 * replies later; on a cluster, CLUSTER SLOTS gives the masters,
 * redis_shard.c) and, under Sentinel, its role (a sentinel cut
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
 *
 * On a Redis Cluster a channel is SSUBSCRIBEd on the master of its slot,
 * but hiredis 0.14 async knows only (P)SUBSCRIBE: an `smessage` arriving
 * with no command pending would hit the assert of redisProcessCallbacks
 * unless the context is flagged subscribed. So each channel is also
 * SUBSCRIBEd by its plain name on the same connection, right after its
 * SSUBSCRIBE: hiredis then flags the context subscribed and, since only
 * a leading 'p' selects its pattern table, looks `smessage` (and
 * `ssubscribe`, `sunsubscribe`) up by the channel's name in its channel
 * table, reaching our handler, which tells them apart by element[0]. The
 * SSUBSCRIBE and SUNSUBSCRIBE go with no callback of their own (hiredis
 * queues one in its `invalid` list, never shifted while subscribed, freed
 * with the context: a few bytes per channel joined, per session); the
 * channel counts as confirmed on the plain `subscribe` reply, which Redis
 * sends after the SSUBSCRIBE's took effect. Nothing is PUBLISHed on a
 * Redis Cluster, so the plain subscription receives nothing.
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

/* the channel whose message is being handed to its handler */
static const struct redis_sub *dispatching;

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

	if (!(reply_is_str(reply, 0, "message") ||
	      reply_is_str(reply, 0, "smessage")) ||
	    reply->element[2]->type != REDIS_REPLY_STRING)
		return;

	chan.p = reply->element[1]->str;
	chan.l = reply->element[1]->len;
	msg.p = reply->element[2]->str;
	msg.l = reply->element[2]->len;
	dispatching = sub;
	sub->h(&chan, &msg, sub->arg);
	dispatching = NULL;
}


/**
 * Inside a redis_msg_h: the channel the message came through ("" but on a
 * Redis Cluster). There one sender's messages keep their order per
 * channel only: two masters' streams interleave at will, and even on one
 * master a dialog's message, SPUBLISHed once its snapshot script answered,
 * goes out after a heartbeat stamped later but published at once.
 */
const char *redis_msg_origin(void)
{
	if (!dispatching || !redis_cluster_mode())
		return "";

	return dispatching->chan;
}


/* On a cluster: 0 and nothing sent while the channel's master is not
 * ready (redis_session_shard_ready() sends it then) */
static int sub_send(struct redis_sub *sub)
{
	redisAsyncContext *ac = redis_cl.sub;

	if (redis_cluster_mode()) {
		ac = redis_shard_sub(sub->chan);
		if (!ac)
			return 0;

		if (redisAsyncCommand(ac, NULL, NULL, "SSUBSCRIBE %s",
				      sub->chan) != REDIS_OK)
			return ENOTCONN;
	}

	if (redisAsyncCommand(ac, sub_handler, sub, "SUBSCRIBE %s",
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


static int subs_send(void)
{
	struct le *le;

	LIST_FOREACH(&redis_cl.subs, le) {
		struct redis_sub *sub = le->data;

		if (sub->wanted && !sub->sent && sub_send(sub))
			return ENOTCONN;
	}

	return 0;
}


/** The master's pair of connections is ready: its channels go out */
void redis_session_shard_ready(const struct redis_shard *shard)
{
	(void)shard;

	if (subs_send()) {
		redis_fail("session", "cannot subscribe");
		return;
	}

	answered();
}


/* CLUSTER SLOTS: the masters; move to the keys' one, or subscribe */
static void slots_reply(redisAsyncContext *ac, void *r, void *arg)
{
	const struct redis_shard *keys;
	redisReply *reply = r;
	const char *host;
	uint16_t port;
	int err;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	err = redis_shard_map(reply);
	if (err == EXDEV) {
		keys = redis_shard_of(redis_cl.cfg->keyns);
		redis_shard_addr(keys, &host, &port);
		redis_redirect(host, port);
		return;
	}

	/* the run id of the keys' master, not of a node we move away from */
	if (err || subs_send() || redisAsyncCommand(redis_cl.cmd, info_reply,
						     NULL, "INFO server")
	    != REDIS_OK) {
		redis_fail("cluster slots", reply->type == REDIS_REPLY_ERROR ?
			   reply->str : "unexpected reply");
		return;
	}

	/* up once every other master's connections are ready too */
	redis_cl.pending += redis_shard_count() - 1;
	answered();
}


/* "cluster_enabled:1" of INFO cluster: a Redis Cluster node, which it
 * must be exactly when `redis_cluster` names it */
static void cluster_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	bool cluster;
	(void)arg;

	if (!reply || !is_ours(ac))
		return;

	cluster = reply->type == REDIS_REPLY_STRING &&
		strstr(reply->str, "cluster_enabled:1");
	if (cluster == redis_cluster_mode()) {
		if (!cluster)
			answered();
		else if (redisAsyncCommand(redis_cl.cmd, slots_reply, NULL,
					   "CLUSTER SLOTS") != REDIS_OK)
			redis_fail("session", "cannot send");
		return;
	}

	if (!redis_cl.cluster_logged)
		log_error("redis", "%s:%u is %sa Redis Cluster node "
			  "(cluster_enabled:%d): name it with `%s`",
			  redis_cl.host, redis_cl.port, cluster ? "" : "not ",
			  cluster, cluster ? "redis_cluster" : "redis");
	redis_cl.cluster_logged = true;
	redis_fail("info", cluster ? "a Redis Cluster node" :
		   "not a Redis Cluster node");
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

	/* on a cluster, once the masters are known (slots_reply) */
	if (!redis_cluster_mode() && subs_send())
		goto fail;

	if ((!redis_cluster_mode() &&
	     redisAsyncCommand(redis_cl.cmd, info_reply, NULL,
			       "INFO server") != REDIS_OK) ||
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
	redisAsyncContext *ac;

	if (!sub || !sub->wanted)
		return ENOENT;

	/* a session still connecting waits for it no more (on a cluster
	 * it may not be sent yet: its master is not known or ready) */
	if (started() && !sub->confirmed)
		answered();

	sub->wanted = false;
	sub->confirmed = false;

	if (!sub->sent) {
		mem_deref(sub);
		return 0;
	}

	/* hiredis holds it until the answer, or until it frees `sub` */
	ac = redis_cluster_mode() ? redis_shard_sub(sub->chan) : redis_cl.sub;
	if (ac && redis_cluster_mode())
		(void)redisAsyncCommand(ac, NULL, NULL, "SUNSUBSCRIBE %s",
					sub->chan);
	if (ac)
		(void)redisAsyncCommand(ac, NULL, NULL, "UNSUBSCRIBE %s",
					sub->chan);

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
