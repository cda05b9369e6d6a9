/**
 * @file repl.h  Dialog replication: signed changes over pub/sub, snapshots in Redis
 */

#include "cluster.h"

struct rh_conf;
struct odict;
struct dialog;

/** What a node may do with an in-dialog request (docs/cluster.md) */
enum repl_serve {
	REPL_SERVE = 0,   /* this node serves the dialog: change it */
	REPL_RELAY,       /* a live node serves it: send the request there */
	REPL_HOLD,        /* nobody may change it now: let the endpoint retry */
};

int  repl_init(const struct rh_conf *cfg);
void repl_close(void);
bool repl_synced(void);
enum repl_serve repl_serve_rule(const struct dialog *dlg, const char **nodep);
int  repl_status(struct odict *od);

/* the cluster layer (cluster.c, shtag.c) */
int  repl_sync(cluster_done_h *h);
void repl_redis_down(void);
void repl_shtag_changed(const char *tag, const char *holder);
