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

/** The snapshots of a tag repl_tag_watch() was asked for are here (err 0) */
typedef void (repl_watch_h)(int err, void *arg);

/* life cycle, after cluster_init(); without a cluster these do nothing */
int  repl_init(const struct rh_conf *cfg);
void repl_close(void);
void repl_conf_apply(const struct rh_conf *cfg);
enum repl_serve repl_serve_rule(const struct dialog *dlg, const char **nodep);
int  repl_status(struct odict *od, void *arg);
int  repl_tag_watch(const char *tag, repl_watch_h *h, void *arg);
