/**
 * @file cluster_info.c  What a node tells the others about itself: meta and info
 *
 * Each heartbeat carries two small objects of strings besides the node's
 * state and listeners: "meta", the `node_meta` lines of its config (its
 * site, rack: what policies choose by), and "info", what the modules
 * above the cluster publish about the running node (the hash of its
 * policy). A receiver keeps the last of each it heard, so a node that
 * died is still known by its site. Both are shown in GET /v1/status per
 * node, meta as an object and each info entry as a field of its own.
 *
 * Trade-off: an info change goes out with the next heartbeat, not at
 * once, so the others see it within node_timeout / 5.
 */
#include <string.h>
#include <re.h>
#include "conf.h"
#include "json.h"
#include "cluster.h"
#include "cluster_int.h"

enum { ENTRIES = 8 };


/** This node's meta from its config */
int cluster_info_init(struct cluster_node *self, const struct rh_conf *cfg)
{
	int err;

	err = odict_alloc(&self->meta, ENTRIES);
	for (size_t i = 0; i < cfg->node_metac && !err; i++)
		err = json_str_add(self->meta, cfg->node_meta[i].key,
				   cfg->node_meta[i].value);

	if (!err)
		err = odict_alloc(&self->info, ENTRIES);

	return err;
}


/**
 * Publish `key` about this node in its heartbeats, "" or NULL: no more.
 * The other nodes show it in their status (GET /v1/status, nodes[]).
 */
int cluster_info_set(const char *key, const char *value)
{
	struct cluster_node *self = cluster_self();

	if (!key)
		return EINVAL;
	if (!self)
		return ENOTCONN;

	odict_entry_del(self->info, key);
	if (!str_isset(value))
		return 0;

	return json_str_add(self->info, key, value);
}


/** "meta" and "info" into a heartbeat */
int cluster_info_encode(struct odict *od, const struct cluster_node *node)
{
	int err = 0;

	if (node->meta)
		err |= odict_entry_add(od, "meta", ODICT_OBJECT, node->meta);
	if (node->info)
		err |= odict_entry_add(od, "info", ODICT_OBJECT, node->info);

	return err;
}


/** Keep an object of strings from a heartbeat */
static void take(struct odict **odp, const struct odict *hb, const char *key)
{
	const struct odict_entry *e = odict_get_type(hb, ODICT_OBJECT, key);
	struct odict *od;
	struct le *le;

	if (!e || odict_alloc(&od, ENTRIES))
		return;

	LIST_FOREACH(&e->u.odict->lst, le) {
		const struct odict_entry *v = le->data;

		if (v->type == ODICT_STRING &&
		    json_str_add(od, v->key, v->u.str)) {
			mem_deref(od);
			return;
		}
	}

	mem_deref(*odp);
	*odp = od;
}


/** A heartbeat heard from another node */
void cluster_info_decode(struct cluster_node *node, const struct odict *hb)
{
	take(&node->meta, hb, "meta");
	take(&node->info, hb, "info");
}


/** A node's object in GET /v1/status: "meta", and the info entries */
int cluster_info_status(struct odict *o, const struct cluster_node *node)
{
	struct le *le;
	int err = 0;

	if (node->meta)
		err = odict_entry_add(o, "meta", ODICT_OBJECT, node->meta);
	if (!node->info)
		return err;

	LIST_FOREACH(&node->info->lst, le) {
		const struct odict_entry *v = le->data;

		if (!odict_lookup(o, v->key))
			err |= json_str_add(o, v->key, v->u.str);
	}

	return err;
}
