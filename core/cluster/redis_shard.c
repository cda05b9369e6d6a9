/**
 * @file redis_shard.c  Redis client on a Redis Cluster: slots, masters, routing
 *
 * With `redis_cluster HOST:PORT` the session asks that node CLUSTER SLOTS
 * and keeps which master serves each of the 16384 slots. Every key of a
 * rehome cluster carries the hash tag `{<cluster>}` (cfg->keyns), so all
 * keys sit in one slot and every script stays atomic on one master: the
 * session's own pair of connections (redis_cl.cmd/sub) goes to that
 * master (redis_redirect() moves it there if the named node is another).
 * Channels carry no hash tag (except the probe and tag-event channels,
 * which scripts use and so share the keys' slot): they spread over the
 * masters, each is SSUBSCRIBEd on the master of its slot and SPUBLISHed
 * there. So this file holds one more pair of connections (commands and
 * channels) to each other master, made with the session and torn down
 * with it: any of them failing, or a MOVED reply (a slot migrated, a
 * fail-over), resets the whole session, which asks CLUSTER SLOTS again.
 *
 * The slot of a name is computed here (CRC16, as the Redis Cluster spec
 * defines it) rather than asked of the server with CLUSTER KEYSLOT: the
 * answer is needed synchronously on every publish, and a round trip per
 * channel would add latency and a state to wait in for nothing.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "redis_int.h"

enum {
	SLOTS = 16384,
};

/** A master of the Redis Cluster and our connections to it */
struct redis_shard {
	struct le le;
	char *host;
	uint16_t port;
	char addr[REDIS_ADDR_SZ]; /* "host:port" */
	redisAsyncContext *cmd;   /* NULL for the keys' master (redis_cl's) */
	redisAsyncContext *sub;
	unsigned ready;           /* connections connected and AUTHed */
	bool keys;                /* the keys' master: redis_cl.cmd/sub */
};

static struct {
	struct list shards;
	struct redis_shard *slot[SLOTS];
} sh;


static void shard_destructor(void *arg)
{
	struct redis_shard *s = arg;

	list_unlink(&s->le);
	redis_ctx_free(&s->cmd);
	redis_ctx_free(&s->sub);
	mem_deref(s->host);
}


/* CRC16-CCITT (XModem), bit by bit: the Redis Cluster key hash */
static uint16_t crc16(const char *p, size_t n)
{
	uint16_t crc = 0;

	while (n--) {
		crc ^= (uint16_t)((uint8_t)*p++ << 8);
		for (int i = 0; i < 8; i++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1) ^ 0x1021
				: (uint16_t)(crc << 1);
	}

	return crc;
}


/** The slot of a key or shard channel: only {tag} is hashed, if any */
uint16_t redis_slot(const char *name)
{
	const char *open, *close;
	size_t n = str_len(name);

	open = memchr(name, '{', n);
	if (open) {
		close = memchr(open + 1, '}', n - (size_t)(open + 1 - name));
		if (close && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) &
				(SLOTS - 1);
	}

	return crc16(name, n) & (SLOTS - 1);
}


static struct redis_shard *shard_find(struct pl *host, uint16_t port)
{
	struct le *le;

	LIST_FOREACH(&sh.shards, le) {
		struct redis_shard *s = le->data;

		if (s->port == port && !pl_strcasecmp(host, s->host))
			return s;
	}

	return NULL;
}


static int shard_get(struct redis_shard **sp, const redisReply *node)
{
	struct redis_shard *s;
	struct pl host;
	uint16_t port;
	int err;

	if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
	    node->element[0]->type != REDIS_REPLY_STRING ||
	    node->element[1]->type != REDIS_REPLY_INTEGER)
		return EBADMSG;

	/* an empty host: the node we asked */
	pl_set_str(&host, node->element[0]->len ? node->element[0]->str
		   : redis_cl.host);
	port = (uint16_t)node->element[1]->integer;

	s = shard_find(&host, port);
	if (s) {
		*sp = s;
		return 0;
	}

	s = mem_zalloc(sizeof(*s), shard_destructor);
	if (!s)
		return ENOMEM;

	err = pl_strdup(&s->host, &host);
	if (err) {
		mem_deref(s);
		return err;
	}

	s->port = port;
	re_snprintf(s->addr, sizeof(s->addr), "%s:%u", s->host, port);
	s->keys = port == redis_cl.port && !pl_strcasecmp(&host,
							  redis_cl.host);
	list_append(&sh.shards, &s->le, s);
	*sp = s;
	return 0;
}


static struct redis_shard *shard_by_ctx(const redisAsyncContext *ac)
{
	struct le *le;

	LIST_FOREACH(&sh.shards, le) {
		struct redis_shard *s = le->data;

		if (ac && (ac == s->cmd || ac == s->sub))
			return s;
	}

	return NULL;
}


static void ready(struct redis_shard *s)
{
	if (++s->ready == 2)
		redis_session_shard_ready(s);
}


static void auth_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	struct redis_shard *s = shard_by_ctx(ac);
	(void)arg;

	if (!reply || !s)
		return;

	if (reply->type == REDIS_REPLY_ERROR) {
		redis_fail("auth", reply->str);
		return;
	}

	ready(s);
}


static void connect_handler(const redisAsyncContext *ac, int status)
{
	struct redis_shard *s = shard_by_ctx(ac);

	if (!s)
		return;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		if (ac == s->cmd)
			s->cmd = NULL;
		else
			s->sub = NULL;
		redis_fail("cluster connect", ac->errstr);
		return;
	}

	if (!str_isset(redis_cl.cfg->redis_password)) {
		ready(s);
		return;
	}

	if (redis_auth_send(ac == s->cmd ? s->cmd : s->sub, auth_reply, NULL))
		redis_fail("auth", "cannot send");
}


static void disconnect_handler(const redisAsyncContext *ac, int status)
{
	struct redis_shard *s = shard_by_ctx(ac);
	(void)status;

	if (!s)
		return;

	if (ac == s->cmd)
		s->cmd = NULL;
	else
		s->sub = NULL;

	redis_fail("cluster connection lost", ac->errstr ? ac->errstr
		   : "closed");
}


static int shard_open(struct redis_shard *s)
{
	char why[REDIS_ERROR_SZ];
	int err;

	err = redis_ctx_open(&s->cmd, s->host, s->port, connect_handler,
			     disconnect_handler, why, sizeof(why));
	if (!err)
		err = redis_ctx_open(&s->sub, s->host, s->port,
				     connect_handler, disconnect_handler, why,
				     sizeof(why));
	if (err)
		log_warn("redis", "cluster master %s:%u: %s", s->host, s->port,
			 why);

	return err;
}


static int map_entry(const redisReply *e)
{
	struct redis_shard *s;
	long long lo, hi;
	int err;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
	    e->element[0]->type != REDIS_REPLY_INTEGER ||
	    e->element[1]->type != REDIS_REPLY_INTEGER)
		return EBADMSG;

	lo = e->element[0]->integer;
	hi = e->element[1]->integer;
	if (lo < 0 || hi >= SLOTS || lo > hi)
		return EBADMSG;

	err = shard_get(&s, e->element[2]);
	if (err)
		return err;

	for (long long i = lo; i <= hi; i++)
		sh.slot[i] = s;

	return 0;
}


/**
 * Take the answer of CLUSTER SLOTS (asked of the session's node). EXDEV:
 * the keys' slot is served by another master, the session must move
 * there (nothing opened). Else the other masters' connections are opened;
 * redis_session_shard_ready() says when each pair is ready.
 */
int redis_shard_map(const redisReply *slots)
{
	const struct redis_shard *keys;
	struct le *le;
	int err = 0;

	redis_shard_reset();
	if (!slots || slots->type != REDIS_REPLY_ARRAY)
		return EBADMSG;

	for (size_t i = 0; i < slots->elements && !err; i++)
		err = map_entry(slots->element[i]);
	if (err)
		goto out;

	keys = redis_shard_of(redis_cl.cfg->keyns);
	if (!keys) {
		err = ENOENT;
		goto out;
	}

	if (!keys->keys) {
		err = EXDEV;
		goto out;
	}

	LIST_FOREACH(&sh.shards, le) {
		struct redis_shard *s = le->data;

		if (!s->keys && shard_open(s)) {
			err = ECONNREFUSED;
			goto out;
		}
	}

 out:
	if (err && err != EXDEV)
		redis_shard_reset();
	return err;
}


/** The master serving a key or channel, NULL while unknown */
const struct redis_shard *redis_shard_of(const char *name)
{
	return name ? sh.slot[redis_slot(name)] : NULL;
}


bool redis_shard_keys(const struct redis_shard *shard)
{
	return shard && shard->keys;
}


void redis_shard_addr(const struct redis_shard *shard, const char **host,
		      uint16_t *port)
{
	*host = shard->host;
	*port = shard->port;
}


static redisAsyncContext *shard_ctx(const char *name, bool sub)
{
	const struct redis_shard *s = redis_shard_of(name);

	if (!s)
		return NULL;
	if (s->keys)
		return sub ? redis_cl.sub : redis_cl.cmd;
	if (s->ready < 2)
		return NULL;

	return sub ? s->sub : s->cmd;
}


/** The command connection to the master of name's slot, NULL: not yet */
redisAsyncContext *redis_shard_cmd(const char *name)
{
	return shard_ctx(name, false);
}


/** The channel connection to the master of name's slot, NULL: not yet */
redisAsyncContext *redis_shard_sub(const char *name)
{
	return shard_ctx(name, true);
}


/** Forget the map and close the other masters' connections */
void redis_shard_reset(void)
{
	struct le *le;

	/* one at a time: freeing a context runs its handlers, which look
	 * the list up, so it must stay whole (list_flush() does not) */
	while ((le = sh.shards.head))
		mem_deref(le->data);

	memset(sh.slot, 0, sizeof(sh.slot));
}


unsigned redis_shard_count(void)
{
	return list_count(&sh.shards);
}
