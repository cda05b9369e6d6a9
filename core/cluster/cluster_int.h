/**
 * @file cluster_int.h  Internal to the cluster module: the signing key, the sequence
 */

/** Every step of the (re)connect sequence is done */
typedef void (cluster_sync_end_h)(void);

/* cluster_metrics.c */
int  cluster_metrics_print(struct re_printf *pf, void *arg);

/* cluster_msg.c */
int  cluster_msg_init(const char *secret);
void cluster_msg_close(void);

/* cluster_sync.c */
void cluster_sync_start(cluster_sync_end_h *endh);
void cluster_sync_stop(void);
void cluster_sync_close(void);
