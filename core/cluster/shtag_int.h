/**
 * @file shtag_int.h  Inside sharing tags: what its files share
 *
 * shtag.c owns the tag table, the compare-and-set script and the channel;
 * shtag_sync.c reads every tag on each (re)connect, claims the config's
 * tags at start and restores what Redis lost, through shtag.c's table
 * and script; shtag_ctl.c serves the control routes on top of the public
 * API; shtag_observer.c keeps who follows tags changing hands.
 *
 * Not for other modules: use shtag.h.
 */

#include "shtag.h"

struct redisReply;
struct rh_conf;

/** A sharing tag as this node knows it; the table is shtag.c's */
struct shtag {
	struct le le;
	char *name;
	char *holder;          /* as last known; "" = nobody */
	uint64_t epoch;        /* as last known */
	uint64_t seen;         /* epoch in Redis at the last sync, 0 absent */
	bool wish;             /* config: active at start */
	bool active;
	unsigned claims;
};

/* shtag.c: the table, learning states, the script */
struct list *shtag_table(void);
struct shtag *shtag_tag_find(const char *name);
int  shtag_tag_get(struct shtag **tagp, const char *name);
void shtag_learn(struct shtag *tag, uint64_t epoch, const char *holder);
int  shtag_send_claim(struct shtag *tag, shtag_result_h *h, void *arg);
int  shtag_send_assert(struct shtag *tag, shtag_result_h *h, void *arg);
void shtag_reqs_fail(int err);
void shtag_set_started(void);

/* shtag_sync.c: the (re)connect read, the start-up claim, the restore */
int  shtag_sync_init(const struct rh_conf *cfg);
void shtag_sync_close(void);
/* the tags hash as read by a lease renewal (cluster_lease.c) */
void shtag_lease_reply(const struct redisReply *reply);

/* shtag_ctl.c */
int shtag_ctl_init(void);

/* shtag_observer.c */
void shtag_observers_tell(const char *name, const char *holder);
void shtag_observers_close(void);
