/**
 * @file repl_int.h  Inside dialog replication: what its files share
 *
 * repl.c owns the module's state (below), its life cycle, the serving rule
 * and the status; repl_publish.c writes this node's changes to Redis;
 * repl_apply.c applies what other nodes wrote, and hands dialogs over when
 * a tag moves; repl_sync.c loads every snapshot after a (re)connect. The
 * cluster layer below knows none of them: repl.c adds the sync to its
 * (re)connect sequence and an observer of tags changing hands. The
 * state is one struct, because every piece counts into the same status;
 * what only one piece uses (the write script, the endings queue, the sync
 * under way) stays static in that piece. repl_metrics.c prints the
 * dialogs no other node could continue, at each scrape. repl_tags.c
 * keeps the sharing tags this node listens to, one channel each.
 *
 * Not for other modules: use repl.h.
 */

#include "cluster.h"
#include "redis.h"

struct dialog;

enum {
	REPL_KEY_SIZE    = 256,
	REPL_LAG_SAMPLES = 8192,
};

#define REPL_INFO_TAGS "repl_tags"   /* heartbeat info: tags listened to */

/** Where a replication message comes from */
enum repl_origin {
	REPL_ORIGIN_CHANNEL = 0,   /* live message */
	REPL_ORIGIN_SNAPSHOT,      /* loaded at (re)connect */
	REPL_ORIGIN_REPAIR,        /* read back after our write was refused */
};

/** The module's state, one per process; repl_init() sets it up */
struct repl_state {
	char chan[REPL_KEY_SIZE];         /* <cluster>:repl:   (+ tag) */
	char tags_key[REPL_KEY_SIZE];     /* <cluster>:shtags  */
	char dlg_prefix[REPL_KEY_SIZE];   /* <cluster>:dlg:    */
	uint64_t ttl_ms;                  /* snapshots' TTL    */
	bool up;
	struct {
		uint64_t sent, received, stale, dropped, fenced, conflicts,
			 skipped, dirty, ended_lost, loaded;
	} n;
	uint32_t lag[REPL_LAG_SAMPLES];   /* channel delays, us */
	size_t lagc;
};

extern struct repl_state repl_st;

/* repl.c */
uint64_t repl_now_us(void);
bool repl_is_me(const char *node);
bool repl_replicated_here(const struct dialog *dlg);
int  repl_key_print(char *buf, size_t sz, uint64_t did);

/* repl_publish.c */
int  repl_publish_init(void);
void repl_publish_start(void);
void repl_publish_close(void);
int  repl_publish(const struct dialog *dlg, const char *ev);
int  repl_snapshot_get(const char *key, redis_reply_h *h, void *arg);
void repl_endings_send(void);
void repl_endings_replay(void);
uint32_t repl_endings_pending(void);

/* repl_apply.c */
void repl_msg_apply(const struct pl *msg, enum repl_origin origin);
void repl_channel_handler(const struct pl *chan, const struct pl *msg,
			  void *arg);
void repl_repair(uint64_t did);
void repl_shtag_changed(const char *tag, const char *holder, void *arg);

/* repl_metrics.c */
int  repl_metrics_print(struct re_printf *pf, void *arg);
int  repl_unprotected_status(struct odict *od);
void repl_metrics_start(void);
void repl_metrics_stop(void);

/* repl_sync.c */
typedef void (repl_sync_tag_h)(const char *tag);
bool repl_sync_seen(uint64_t did, bool ended);
int  repl_sync(cluster_done_h *h, void *arg);
int  repl_sync_tag(const char *tag, repl_sync_tag_h *h);
void repl_sync_stop(void *arg);

/* repl_tags.c */
int  repl_tags_init(const struct rh_conf *cfg);
void repl_tags_close(void);
int  repl_tag_chan(char *buf, size_t sz, const char *tag);
bool repl_tag_watched(const char *tag);
bool repl_tags_node_listens(const struct cluster_node *node,
			    const char *tag);
void repl_tags_holder(const char *tag, const char *holder);
void repl_tags_loaded(void);
