/**
 * @file cluster_int.h  Internal to the cluster module: the signing key, stamps, the sequence
 */

struct rh_conf;
struct odict;

/** Who sent a message and when: the stamp under its signature */
struct cluster_stamp {
	uint64_t boot;          /* the sender's boot id, never 0 */
	uint64_t seq;           /* its messages since that boot, from 1 */
	uint64_t ts;            /* its wall clock, ms */
	struct pl node;         /* its node id */
};

/** What a receiver knows of one sender (all zero: nothing yet) */
struct cluster_seen {
	uint64_t boot;          /* of its last accepted message */
	uint64_t seq;           /* the highest of that boot */
	uint64_t ts;            /* the latest clock of that boot */
};

/** Every step of the (re)connect sequence is done */
typedef void (cluster_sync_end_h)(void);

/* cluster.c */
struct cluster_node *cluster_self(void);

/* cluster_info.c */
int  cluster_info_init(struct cluster_node *self, const struct rh_conf *cfg);
int  cluster_info_encode(struct odict *od, const struct cluster_node *node);
void cluster_info_decode(struct cluster_node *node, const struct odict *hb);
int  cluster_info_status(struct odict *o, const struct cluster_node *node);

/* cluster_metrics.c */
int  cluster_metrics_print(struct re_printf *pf, void *arg);

/* cluster_msg.c */
int  cluster_msg_init(const struct rh_conf *cfg);
void cluster_msg_close(void);

/* cluster_fresh.c */
uint64_t cluster_clock_ms(void);
int  cluster_fresh_init(const struct cluster_stamp *self,
			uint32_t node_timeout);
void cluster_fresh_close(void);
int  cluster_fresh_check(struct cluster_seen *seen,
			 const struct cluster_stamp *st, uint64_t now,
			 uint64_t window);
int  cluster_fresh_accept(const struct cluster_stamp *st);
void cluster_fresh_dropped(int err);
int  cluster_fresh_status(struct odict *od);

/* cluster_sync.c */
void cluster_sync_start(cluster_sync_end_h *endh);
void cluster_sync_stop(void);
void cluster_sync_close(void);
