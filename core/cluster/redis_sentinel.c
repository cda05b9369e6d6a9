/**
 * @file redis_sentinel.c  Redis Sentinel: where the master is, and when it moves
 *
 * With `redis_sentinel`, the Redis client (redis.c) does not know the
 * master's address: before every (re)connect it asks here, and the
 * sentinels are asked one after the other, `SENTINEL
 * get-master-addr-by-name NAME`, each with a timeout, the first answer
 * winning; the sentinel that answered is asked first next time. redis.c
 * then checks with ROLE that the server is really the master, as
 * Sentinel's client guidelines want: a sentinel cut off from the others
 * may still name the old one.
 *
 * A fail-over must not wait for our connection to the old master to
 * break (a master that is cut off but alive keeps it up), so one
 * connection to a sentinel stays subscribed to `+switch-master`; a switch
 * of our master is reported to redis.c at once. When that connection
 * drops, the next sentinel is watched; once subscribed again, the master
 * is asked for, since a switch may have come while nobody listened.
 *
 * With `redis_password`, sentinel connections send the same AUTH as the
 * data connections. A sentinel without a password answers it with an
 * error saying so, which is ignored; any other refusal is logged once.
 * So the sentinels have either the same credentials as Redis or none.
 *
 * hiredis contexts are never freed in their own callbacks: a callback
 * records the outcome and a zero-delay libre timer acts on it.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "redis_int.h"

enum {
	ASK_TIMEOUT_MS = 1000,      /* per sentinel asked */
	WATCH_RETRY_MS = 1000,
	ERROR_SZ       = 128,
};

/** Asking the sentinels for the master, one at a time */
struct query {
	redisAsyncContext *ac;
	unsigned idx;               /* the sentinel asked */
	unsigned tried;
	struct tmr tmr;             /* its timeout, and the next step */
	redis_master_h *h;          /* set while under way */
	void *arg;
	char host[CONF_HOST_SZ];    /* its answer */
	uint16_t port;
	bool found;
};

/** The subscription to +switch-master on one sentinel */
struct watch {
	redisAsyncContext *ac;
	unsigned idx;               /* the sentinel watched */
	struct tmr tmr;             /* retry, subscribe timeout */
	bool subscribed;
	bool once;                  /* was subscribed before */
};

static struct {
	const struct rh_conf *cfg;
	struct query q;
	struct watch w;
	unsigned first;             /* the sentinel to ask first */
	uint64_t switches;
	redis_master_h *switchh;
	bool auth_logged;
} sen;


static void watch_start(void *arg);
static void recheck_found(int err, const char *host, uint16_t port,
			  void *arg);


static const struct conf_hostport *sentinel(unsigned idx)
{
	return &sen.cfg->redis_sentinel[idx % sen.cfg->redis_sentinelc];
}


/* "host:port" of a sentinel, for the logs */
static int sentinel_print(struct re_printf *pf, void *arg)
{
	const struct conf_hostport *hp = sentinel(*(unsigned *)arg);

	return re_hprintf(pf, "%s:%u", hp->host, hp->port);
}


/*
 * AUTH on a sentinel connection: a sentinel without a password says so,
 * and that is fine; any other refusal is the operator's to see.
 */
static bool auth_refused(unsigned idx, const redisReply *reply)
{
	if (reply->type != REDIS_REPLY_ERROR ||
	    strstr(reply->str, "without any password configured") ||
	    strstr(reply->str, "no password is set"))
		return false;

	if (!sen.auth_logged)
		log_error("redis", "sentinel %H refused AUTH: %s (give the "
			  "sentinels the password of redis_password, or "
			  "none)", sentinel_print, &idx, reply->str);
	sen.auth_logged = true;
	return true;
}


static int open_sentinel(redisAsyncContext **acp, unsigned idx,
			 redisConnectCallback *connh,
			 redisDisconnectCallback *disconnh,
			 redisCallbackFn *authh)
{
	const struct conf_hostport *hp = sentinel(idx);
	char why[ERROR_SZ];
	int err;

	err = redis_ctx_open(acp, hp->host, hp->port, connh, disconnh, why,
			     sizeof(why));
	if (err) {
		log_debug("redis", "sentinel %H: %s", sentinel_print, &idx,
			  why);
		return err;
	}

	if (str_isset(sen.cfg->redis_password))
		err = redis_auth_send(*acp, authh, NULL);

	return err;
}


/* ---- asking for the master ------------------------------------------ */


static void q_step(void *arg);


static void q_next_soon(void)
{
	tmr_start(&sen.q.tmr, 0, q_step, NULL);
}


static void q_connect_handler(const redisAsyncContext *ac, int status)
{
	struct query *q = &sen.q;

	if (ac != q->ac || status == REDIS_OK)
		return;

	q->ac = NULL;       /* hiredis frees it */
	log_debug("redis", "sentinel %H: %s", sentinel_print, &q->idx,
		  ac->errstr);
	q_next_soon();
}


static void q_disconnect_handler(const redisAsyncContext *ac, int status)
{
	struct query *q = &sen.q;
	(void)status;

	if (ac != q->ac)
		return;

	q->ac = NULL;
	q_next_soon();
}


static void q_auth_reply(redisAsyncContext *ac, void *r, void *arg)
{
	(void)arg;

	if (r && ac == sen.q.ac && auth_refused(sen.q.idx, r))
		q_next_soon();
}


/* ["ip", "port"], or nil when the sentinel does not know the name */
static void addr_reply(redisAsyncContext *ac, void *r, void *arg)
{
	struct query *q = &sen.q;
	redisReply *reply = r;
	struct pl port;
	(void)arg;

	if (!reply || ac != q->ac)
		return;

	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[1]->type == REDIS_REPLY_STRING) {
		pl_set_str(&port, reply->element[1]->str);
		str_ncpy(q->host, reply->element[0]->str, sizeof(q->host));
		q->port = (uint16_t)pl_u32(&port);
		q->found = q->port != 0;
	}
	else {
		log_debug("redis", "sentinel %H does not know master %s: %s",
			  sentinel_print, &q->idx, sen.cfg->redis_master,
			  reply->type == REDIS_REPLY_ERROR ? reply->str
			  : "nil");
	}

	q_next_soon();
}


static void ask(unsigned idx)
{
	struct query *q = &sen.q;
	int err;

	q->idx = idx;
	err = open_sentinel(&q->ac, idx, q_connect_handler,
			    q_disconnect_handler, q_auth_reply);
	if (!err && redisAsyncCommand(q->ac, addr_reply, NULL, "SENTINEL "
				      "get-master-addr-by-name %s",
				      sen.cfg->redis_master) != REDIS_OK)
		err = ENOTCONN;

	tmr_start(&q->tmr, err ? 0 : ASK_TIMEOUT_MS, q_step, NULL);
}


/* After an answer, a failure or the timeout: report, or the next one */
static void q_step(void *arg)
{
	struct query *q = &sen.q;
	redis_master_h *h = q->h;
	(void)arg;

	redis_ctx_free(&q->ac);

	if (!q->found && ++q->tried < sen.cfg->redis_sentinelc) {
		ask(q->idx + 1);
		return;
	}

	q->h = NULL;
	tmr_cancel(&q->tmr);
	if (!q->found) {
		h(EHOSTUNREACH, NULL, 0, q->arg);
		return;
	}

	sen.first = q->idx % sen.cfg->redis_sentinelc;
	h(0, q->host, q->port, q->arg);
}


/**
 * Ask the sentinels where the master is; h gets the first answer, or
 * EHOSTUNREACH when none gave one. A question already out is taken over:
 * its answer goes to h instead.
 */
int redis_sentinel_resolve(redis_master_h *h, void *arg)
{
	struct query *q = &sen.q;
	bool asking = q->h != NULL;

	if (!h)
		return EINVAL;
	if (!sen.cfg)
		return ENOTSUP;

	q->h = h;
	q->arg = arg;
	if (asking)
		return 0;

	q->tried = 0;
	q->found = false;
	ask(sen.first);

	return 0;
}


/** Forget the question under way, if any: its handler is not called */
void redis_sentinel_cancel(void)
{
	if (!sen.cfg)
		return;

	tmr_cancel(&sen.q.tmr);
	redis_ctx_free(&sen.q.ac);
	sen.q.h = NULL;
}


/* ---- watching for fail-overs ---------------------------------------- */


static void watch_lost(const char *why)
{
	struct watch *w = &sen.w;

	if (w->subscribed)
		log_warn("redis", "sentinel %H: %s; watching the next one",
			 sentinel_print, &w->idx, why);
	else
		log_debug("redis", "sentinel %H: %s", sentinel_print, &w->idx,
			  why);

	w->subscribed = false;
	++w->idx;
	tmr_start(&w->tmr, WATCH_RETRY_MS, watch_start, NULL);
}


static void w_connect_handler(const redisAsyncContext *ac, int status)
{
	if (ac != sen.w.ac || status == REDIS_OK)
		return;

	sen.w.ac = NULL;    /* hiredis frees it */
	watch_lost(ac->errstr);
}


static void w_disconnect_handler(const redisAsyncContext *ac, int status)
{
	(void)status;

	if (ac != sen.w.ac)
		return;

	sen.w.ac = NULL;
	watch_lost(ac->errstr ? ac->errstr : "closed");
}


/* "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT" */
static void switch_recv(const redisReply *msg)
{
	struct pl name, ip, port;
	char host[CONF_HOST_SZ];

	if (re_regex(msg->str, msg->len, "[^ ]+ [^ ]+ [0-9]+ [^ ]+ [0-9]+",
		     &name, NULL, NULL, &ip, &port) ||
	    pl_strcmp(&name, sen.cfg->redis_master) ||
	    pl_strcpy(&ip, host, sizeof(host)))
		return;

	++sen.switches;
	sen.switchh(0, host, (uint16_t)pl_u32(&port), NULL);
}


static void watch_reply(redisAsyncContext *ac, void *r, void *arg)
{
	struct watch *w = &sen.w;
	redisReply *reply = r;
	(void)arg;

	if (!reply || ac != w->ac || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;

	if (!str_casecmp(reply->element[0]->str, "subscribe")) {
		tmr_cancel(&w->tmr);
		w->subscribed = true;
		log_debug("redis", "watching sentinel %H for fail-overs",
			  sentinel_print, &w->idx);

		/* a switch may have come while nobody listened */
		if (w->once && !sen.q.h)
			(void)redis_sentinel_resolve(recheck_found, NULL);
		w->once = true;
		return;
	}

	if (!str_casecmp(reply->element[0]->str, "message") &&
	    reply->element[2]->type == REDIS_REPLY_STRING)
		switch_recv(reply->element[2]);
}


static void recheck_found(int err, const char *host, uint16_t port,
			  void *arg)
{
	(void)arg;

	if (!err && !(redis_cl.host && port == redis_cl.port &&
		      !str_casecmp(host, redis_cl.host)))
		sen.switchh(0, host, port, NULL);
}


/* Subscribe only once AUTH is through: see redis_session.c */
static void w_auth_reply(redisAsyncContext *ac, void *r, void *arg)
{
	(void)arg;

	if (!r || ac != sen.w.ac)
		return;

	if (auth_refused(sen.w.idx, r) ||
	    redisAsyncCommand(ac, watch_reply, NULL,
			      "SUBSCRIBE +switch-master") != REDIS_OK)
		redisAsyncDisconnect(ac);
}


/* Not subscribed in time (a sentinel that swallows SUBSCRIBE): next */
static void subscribe_timeout(void *arg)
{
	(void)arg;

	redis_ctx_free(&sen.w.ac);
	watch_lost("no subscription");
}


static void watch_start(void *arg)
{
	struct watch *w = &sen.w;
	int err;
	(void)arg;

	err = open_sentinel(&w->ac, w->idx, w_connect_handler,
			    w_disconnect_handler, w_auth_reply);
	if (!err && !str_isset(sen.cfg->redis_password) &&
	    redisAsyncCommand(w->ac, watch_reply, NULL,
			      "SUBSCRIBE +switch-master") != REDIS_OK)
		err = ENOTCONN;

	if (err) {
		redis_ctx_free(&w->ac);
		watch_lost("cannot connect");
		return;
	}

	tmr_start(&w->tmr, ASK_TIMEOUT_MS, subscribe_timeout, NULL);
}


/* ---- life cycle and status ------------------------------------------ */


/** Start watching the sentinels; switchh gets the masters they announce */
int redis_sentinel_init(const struct rh_conf *cfg, redis_master_h *switchh)
{
	if (!cfg || !cfg->redis_sentinelc || !switchh)
		return EINVAL;

	memset(&sen, 0, sizeof(sen));
	sen.cfg = cfg;
	sen.switchh = switchh;
	watch_start(NULL);

	return 0;
}


void redis_sentinel_close(void)
{
	if (!sen.cfg)
		return;

	redis_sentinel_cancel();
	tmr_cancel(&sen.w.tmr);
	redis_ctx_free(&sen.w.ac);
	memset(&sen, 0, sizeof(sen));
}


/** Add "sentinel": {master, sentinels, watching, switches} to od */
int redis_sentinel_status(struct odict *od)
{
	struct odict *o;
	char list[CONF_MAX_SENTINELS * (CONF_HOST_SZ + 8)] = "";
	char watching[CONF_HOST_SZ + 8] = "";
	size_t n = 0;
	int err;

	for (unsigned i = 0; i < sen.cfg->redis_sentinelc; i++)
		n += re_snprintf(list + n, sizeof(list) - n, "%s%H",
				 i ? "," : "", sentinel_print, &i);

	if (sen.w.subscribed)
		re_snprintf(watching, sizeof(watching), "%H", sentinel_print,
			    &sen.w.idx);

	err = odict_alloc(&o, 4);
	if (err)
		return err;

	err  = odict_entry_add(o, "master", ODICT_STRING,
			       sen.cfg->redis_master);
	err |= odict_entry_add(o, "sentinels", ODICT_STRING, list);
	err |= odict_entry_add(o, "watching", ODICT_STRING, watching);
	err |= odict_entry_add(o, "switches", ODICT_INT,
			       (int64_t)sen.switches);
	if (!err)
		err = odict_entry_add(od, "sentinel", ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}
