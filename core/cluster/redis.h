/**
 * @file redis.h  Redis client on the main loop: async, two connections, reconnect
 */

#ifndef REHOME_REDIS_H
#define REHOME_REDIS_H

struct redisReply;
struct redis_script;
struct odict;
struct rh_conf;

enum redis_state {
	REDIS_ST_DOWN = 0,     /* no connection; retrying with backoff */
	REDIS_ST_CONNECTING,   /* connecting, loading scripts, subscribing */
	REDIS_ST_UP,           /* commands accepted, subscriptions live */
};

/**
 * Reply of one command. Called exactly once per accepted command: with
 * err 0 and the reply, EPROTO and the error reply, or ECONNRESET /
 * ECONNABORTED (NULL reply) when the connection went away or closed.
 */
typedef void (redis_reply_h)(int err, const struct redisReply *reply,
			     void *arg);
/** A message on a subscribed channel */
typedef void (redis_msg_h)(const struct pl *chan, const struct pl *msg,
			   void *arg);
/** A channel is confirmed: nothing published on it from now is missed */
typedef void (redis_ready_h)(const char *chan, void *arg);
typedef void (redis_state_h)(enum redis_state st, void *arg);

int  redis_init(const struct rh_conf *cfg, const char *probe_chan);
void redis_close(void);
int  redis_subscribe(const char *chan, redis_msg_h *h, void *arg);
int  redis_subscribe_ready(const char *chan, redis_msg_h *h,
			   redis_ready_h *readyh, void *arg);
int  redis_unsubscribe(const char *chan);
int  redis_script_add(struct redis_script **sp, const char *src);
int  redis_command(redis_reply_h *h, void *arg, const char *fmt, ...);
int  redis_publish(const char *chan, const uint8_t *msg, size_t len,
		   redis_reply_h *h, void *arg);
const char *redis_publish_cmd(void);
bool redis_cluster_mode(void);
const char *redis_msg_origin(void);
int  redis_eval(const struct redis_script *script, redis_reply_h *h,
		void *arg, const char *fmt, ...);
void redis_set_state_handler(redis_state_h *h, void *arg);
enum redis_state redis_state(void);
bool redis_is_up(void);
bool redis_new_server(void);
int  redis_status(struct odict *od);

#endif
