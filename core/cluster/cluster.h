/**
 * @file cluster.h  Cluster membership: heartbeats, node states, signed messages
 */

#ifndef REHOME_CLUSTER_H
#define REHOME_CLUSTER_H

struct rh_conf;
struct odict;

enum cluster_node_state {
	CLUSTER_NODE_DOWN = 0,   /* no heartbeat for node_timeout, or left */
	CLUSTER_NODE_UP,
	CLUSTER_NODE_DRAINING,   /* alive, moving its calls away */
};

/** A listener a node announces: same tag = same purpose on every node */
struct cluster_lsnr {
	struct le le;
	char *tag;
	enum sip_transp tp;
	struct sa addr;
};

/** A node of the cluster, this one included (self) */
struct cluster_node {
	struct le le;
	char *id;
	enum cluster_node_state state;
	bool self;
	bool synced;             /* has loaded every replicated dialog */
	bool watched;            /* heard since our Redis session began */
	uint64_t last_seen;      /* jiffies of its last heartbeat */
	struct list lsnrl;       /* struct cluster_lsnr */
	struct odict *meta;      /* its node_meta: key -> value, or NULL */
	struct odict *info;      /* cluster_info_set() there, or NULL */
};

typedef void (cluster_node_h)(const struct cluster_node *node,
			      enum cluster_node_state prev, void *arg);
typedef bool (cluster_node_apply_h)(const struct cluster_node *node,
				    void *arg);
/** End of one step of the (re)connect sequence: err 0 runs the next */
typedef void (cluster_done_h)(int err);
/** Start one step of the (re)connect sequence; done(err) when it ends */
typedef int  (cluster_sync_h)(cluster_done_h *done, void *arg);
/** Redis went away: whatever the step had under way is void */
typedef void (cluster_down_h)(void *arg);

struct cluster_step;

/* life cycle; without `redis` in the config these do nothing */
int  cluster_init(const struct rh_conf *cfg);
void cluster_close(void);
bool cluster_enabled(void);
bool cluster_lease_valid(void);
const char *cluster_node_id(void);
const char *cluster_name(void);

/* nodes */
void cluster_set_node_handler(cluster_node_h *h, void *arg);
const struct cluster_node *cluster_node_apply(cluster_node_apply_h *h,
					      void *arg);
const struct cluster_node *cluster_node_find(const char *id);
bool cluster_node_alive(const char *id);
int  cluster_node_lsnr(struct sa *addr, const char *id, const char *tag,
		       enum sip_transp tp);
const struct cluster_node *cluster_node_by_addr(const struct sa *addr);
int  cluster_set_draining(bool draining);
const char *cluster_node_state_name(enum cluster_node_state st);
int  cluster_status(struct odict *od, void *arg);
int  cluster_info_set(const char *key, const char *value);

/*
 * The (re)connect sequence: once Redis is up (subscribed), every step in
 * the order added, each after the previous one is done; the modules above
 * add theirs. Releasing the step (mem_deref) takes it out. "Synced" (has
 * loaded every replicated dialog) is reported by the module that loads
 * them; heartbeats and status carry it, and it is off while Redis is down.
 */
int  cluster_sync_step_add(struct cluster_step **stepp, const char *name,
			   cluster_sync_h *synch, cluster_down_h *downh,
			   void *arg);
void cluster_set_synced(bool synced);
bool cluster_synced(void);

/*
 * Signed messages: "<seal> <stamp> <body>", the seal being HMAC-SHA256 in
 * hex under repl_secret of everything after it (64 '-' when no secret is
 * configured), the stamp "<boot> <seq> <ms> <node>" the sender's boot id,
 * sequence number, clock and node id (cluster_fresh.c). Build the body
 * after what cluster_msg_alloc() wrote, then seal it. A message heard live
 * is opened with cluster_msg_open(), which also drops replays and stale
 * ones; one read back from Redis (a snapshot) with
 * cluster_msg_open_stored(). Both count what they drop.
 */
int  cluster_msg_alloc(struct mbuf **mbp);
int  cluster_msg_seal(struct mbuf *mb);
int  cluster_msg_open(struct pl *body, const struct pl *msg);
int  cluster_msg_open_stored(struct pl *body, const struct pl *msg);

/*
 * Signed records, kept in Redis: "<seal>\n<data>", the seal being the same
 * HMAC in base64 (unpadded) of everything after it, newline included; no
 * stamp. cluster_record_seal() makes the seal of "\n<data>".
 */
enum { CLUSTER_RECORD_SEAL = 43 };

int  cluster_record_seal(char *seal, size_t sz, const struct pl *body);
bool cluster_record_is(const struct pl *rec);
int  cluster_record_open(struct pl *data, const struct pl *rec);

#endif
