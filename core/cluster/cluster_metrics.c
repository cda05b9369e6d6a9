/**
 * @file cluster_metrics.c  The cluster's metrics: nodes, Redis, replication, tags
 *
 * One collector, added by cluster_init(), prints every family of the
 * cluster layer and of replication above it: the nodes as this node sees
 * them (rehome_cluster_node_up, from the membership list at each scrape),
 * then what ctl's registry counted for them (Redis up, messages, lag,
 * tags: metrics_cluster_print). A node without Redis never adds it, so
 * its exposition has none of these families rather than zeros that would
 * look like an outage.
 */
#include <re.h>
#include "metrics.h"
#include "cluster.h"
#include "cluster_int.h"

struct print_ctx {
	struct re_printf *pf;
	int err;
};


static bool node_print(const struct cluster_node *node, void *arg)
{
	struct print_ctx *ctx = arg;
	const char *lv[] = {"node", node->id, NULL};

	ctx->err = re_hprintf(ctx->pf, "rehome_cluster_node_up%H %d\n",
			      metrics_labels_print, lv,
			      node->state != CLUSTER_NODE_DOWN);

	return ctx->err != 0;
}


/** metrics_collector_h: the nodes, then the counted families */
int cluster_metrics_print(struct re_printf *pf, void *arg)
{
	struct print_ctx ctx = {pf, 0};
	(void)arg;

	ctx.err = metrics_family_print(pf, "rehome_cluster_node_up", "gauge",
				       "1 while a node of the cluster is alive "
				       "(up or draining) as this node sees it");
	if (!ctx.err)
		(void)cluster_node_apply(node_print, &ctx);

	return ctx.err | metrics_cluster_print(pf);
}
