/**
 * @file cluster.c  Cluster membership: heartbeats, node states, (re)connect
 *
 * This is the bottom of the cluster layer and its entry point: it starts
 * the Redis client and the sharing tags (shtag.c, on top of it), and runs
 * the sequence that every (re)connect goes through, in an order that loses
 * nothing: the channels are subscribed before Redis counts as up (redis.c),
 * then the steps the modules above added run one after the other
 * (cluster_sync.c: the tags are read, then replication, a layer above,
 * loads every dialog snapshot, writes this node's own dialogs again and
 * reports the node "synced"), and only then may the node claim the tags
 * its config wants.
 *
 * Membership is plain heartbeats: every node_timeout/5 a node publishes
 * its state and listeners on `<cluster>:nodes` and refreshes the key
 * `<cluster>:node:<id>` that expires after node_timeout. The key lets the
 * tag script ask atomically "is the holder alive?"; the message gives
 * everyone else the listeners (to reach a node's same-tag interface) and
 * the state. A node is down when no heartbeat arrived for node_timeout,
 * and immediately when it says goodbye on a clean stop. While our own
 * Redis connection is down we hear nobody, and that says nothing about
 * the others: timeouts are frozen and restart with a full grace period on
 * reconnect, so a Redis outage never looks like every node dying.
 *
 * The heartbeat key is also this node's lease (cluster_lease.c): it acts
 * for its tags only while it renewed the key recently. A node whose Redis
 * connection closed is down at once, without waiting for node_timeout
 * (cluster_watch.c).
 *
 * Every message is signed and checked in cluster_msg.c.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "metrics.h"
#include "ctl.h"
#include "redis.h"
#include "cluster.h"
#include "cluster_int.h"
#include "shtag.h"

enum {
	HB_DIVISOR    = 5,              /* heartbeats per node_timeout */
	HB_MIN_MS     = 20,
	JSON_DEPTH    = 4,
	KEY_SIZE      = 256,
	ADDR_SZ       = 64,             /* "[IPv6]:port" */
};

static struct {
	const struct rh_conf *cfg;
	struct list nodes;          /* struct cluster_node, self first */
	struct cluster_node *self;
	struct tmr hb;
	struct tmr expire;    /* at the earliest heartbeat deadline */
	uint32_t hb_ms;
	char hb_key[KEY_SIZE];
	char hb_chan[KEY_SIZE];
	cluster_node_h *nodeh;
	void *arg;
	bool claimed;               /* the config's tag wishes were tried */
	bool up;
} cl;

static const char *state_names[] = {"down", "up", "draining"};


static void node_destructor(void *arg)
{
	struct cluster_node *node = arg;

	list_unlink(&node->le);
	list_flush(&node->lsnrl);
	mem_deref(node->id);
	mem_deref(node->meta);
	mem_deref(node->info);
}


static void lsnr_destructor(void *arg)
{
	struct cluster_lsnr *l = arg;

	list_unlink(&l->le);
	mem_deref(l->tag);
}


static int node_alloc(struct cluster_node **nodep, const char *id)
{
	struct cluster_node *node;
	int err;

	node = mem_zalloc(sizeof(*node), node_destructor);
	if (!node)
		return ENOMEM;

	err = str_dup(&node->id, id);
	if (err) {
		mem_deref(node);
		return err;
	}

	list_append(&cl.nodes, &node->le, node);
	*nodep = node;
	return 0;
}


static int lsnr_add(struct cluster_node *node, const char *tag,
		    enum sip_transp tp, const struct sa *addr)
{
	struct cluster_lsnr *l;
	int err;

	l = mem_zalloc(sizeof(*l), lsnr_destructor);
	if (!l)
		return ENOMEM;

	err = str_dup(&l->tag, tag);
	if (err) {
		mem_deref(l);
		return err;
	}

	l->tp = tp;
	l->addr = *addr;
	list_append(&node->lsnrl, &l->le, l);
	return 0;
}


/* ---- nodes ---------------------------------------------------------- */


const char *cluster_node_state_name(enum cluster_node_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "?";
}


static int node_state_decode(enum cluster_node_state *stp, const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++) {
		if (0 == str_cmp(s, state_names[i])) {
			*stp = (enum cluster_node_state)i;
			return 0;
		}
	}

	return EINVAL;
}


static void node_set_state(struct cluster_node *node,
			   enum cluster_node_state st, const char *why)
{
	enum cluster_node_state prev = node->state;

	if (prev == st)
		return;

	node->state = st;

	if (st == CLUSTER_NODE_DOWN)
		log_info("cluster", "node %s left (%s)", node->id, why);
	else if (prev == CLUSTER_NODE_DOWN)
		log_info("cluster", "node %s joined (%s)", node->id,
			 cluster_node_state_name(st));
	else
		log_info("cluster", "node %s is %s", node->id,
			 cluster_node_state_name(st));

	if (cl.nodeh)
		cl.nodeh(node, prev, cl.arg);
}


static bool id_cmp(struct le *le, void *arg)
{
	const struct cluster_node *node = le->data;

	return 0 == str_cmp(node->id, arg);
}


static struct cluster_node *node_find(const char *id)
{
	if (!id)
		return NULL;

	return list_ledata(list_apply(&cl.nodes, true, id_cmp, (void *)id));
}


static int lsnrs_encode(struct odict *od, const struct cluster_node *node)
{
	struct odict *arr;
	struct le *le;
	unsigned i = 0;
	int err;

	err = odict_alloc(&arr, 8);
	if (err)
		return err;

	LIST_FOREACH(&node->lsnrl, le) {
		const struct cluster_lsnr *l = le->data;
		struct odict *o;
		char key[CTL_INDEX_SZ], addr[ADDR_SZ];

		err = odict_alloc(&o, 4);
		if (err)
			break;

		re_snprintf(key, sizeof(key), "%u", i++);
		re_snprintf(addr, sizeof(addr), "%J", &l->addr);
		err  = odict_entry_add(o, "tag", ODICT_STRING, l->tag);
		err |= odict_entry_add(o, "tp", ODICT_STRING,
				       sip_transp_name(l->tp));
		err |= odict_entry_add(o, "addr", ODICT_STRING, addr);
		if (!err)
			err = odict_entry_add(arr, key, ODICT_OBJECT, o);
		mem_deref(o);
		if (err)
			break;
	}

	if (!err)
		err = odict_entry_add(od, "listeners", ODICT_ARRAY, arr);

	mem_deref(arr);
	return err;
}


static int transp_decode(enum sip_transp *tpp, const char *name)
{
	for (enum sip_transp tp = SIP_TRANSP_UDP; tp < SIP_TRANSPC; tp++) {
		if (0 == str_casecmp(name, sip_transp_name(tp))) {
			*tpp = tp;
			return 0;
		}
	}

	return EINVAL;
}


static void lsnrs_decode(struct cluster_node *node, const struct odict *od)
{
	const struct odict_entry *arr;
	struct le *le;

	arr = odict_get_type(od, ODICT_ARRAY, "listeners");
	if (!arr)
		return;

	list_flush(&node->lsnrl);

	LIST_FOREACH(&arr->u.odict->lst, le) {
		const struct odict_entry *e = le->data;
		const char *tag, *tp, *addr;
		enum sip_transp transp;
		struct sa sa;

		if (e->type != ODICT_OBJECT)
			continue;

		tag  = odict_string(e->u.odict, "tag");
		tp   = odict_string(e->u.odict, "tp");
		addr = odict_string(e->u.odict, "addr");
		if (!tag || !tp || !addr || transp_decode(&transp, tp) ||
		    sa_decode(&sa, addr, strlen(addr)))
			continue;

		(void)lsnr_add(node, tag, transp, &sa);
	}
}


/* ---- heartbeats ----------------------------------------------------- */


static int heartbeat_encode(struct mbuf *mb, enum cluster_node_state st)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "node", ODICT_STRING, cl.self->id);
	err |= odict_entry_add(od, "state", ODICT_STRING,
			       cluster_node_state_name(st));
	err |= odict_entry_add(od, "synced", ODICT_BOOL, cl.self->synced);
	err |= odict_entry_add(od, "ts", ODICT_INT, (int64_t)tmr_jiffies());
	if (!err)
		err = lsnrs_encode(od, cl.self);
	if (!err)
		err = cluster_info_encode(od, cl.self);
	if (!err)
		err = mbuf_printf(mb, "%H", json_encode_odict, od);

	mem_deref(od);
	return err;
}


static int heartbeat_send(enum cluster_node_state st)
{
	struct mbuf *mb = NULL;
	int err;

	err = cluster_msg_alloc(&mb);
	if (!err)
		err = heartbeat_encode(mb, st);
	if (!err)
		err = cluster_msg_seal(mb);
	if (err)
		goto out;

	if (st == CLUSTER_NODE_DOWN)
		err = redis_command(NULL, NULL, "DEL %s", cl.hb_key);
	else
		err = cluster_lease_renew(mb);
	if (!err)
		err = redis_publish(cl.hb_chan, mb->buf, mb->end, NULL,
				    NULL);

 out:
	mem_deref(mb);
	return err;
}


static void heartbeat_recv(const struct pl *chan, const struct pl *msg,
			   void *arg)
{
	enum cluster_node_state st = CLUSTER_NODE_DOWN;
	struct cluster_node *node;
	struct odict *od = NULL;
	const char *id, *state;
	struct pl body;
	bool synced = false;
	int err;
	(void)chan;
	(void)arg;

	if (cluster_msg_open(&body, msg))
		return;   /* counted */

	err = json_decode_odict(&od, 8, body.p, body.l, JSON_DEPTH);
	if (err)
		goto bad;

	id = odict_string(od, "node");
	state = odict_string(od, "state");
	if (!id || !state || node_state_decode(&st, state))
		goto bad;

	if (0 == str_cmp(id, cl.self->id))
		goto out;

	node = node_find(id);
	if (!node && node_alloc(&node, id))
		goto out;

	lsnrs_decode(node, od);
	cluster_info_decode(node, od);
	(void)odict_get_boolean(od, &synced, "synced");
	node->synced = synced;
	node->watched = st != CLUSTER_NODE_DOWN;
	node->last_seen = tmr_jiffies();
	node_set_state(node, st, "said goodbye");
	goto out;

 bad:
	metrics_repl_dropped("malformed");
 out:
	mem_deref(od);
}


static void expire_handler(void *arg);


/*
 * Nodes whose heartbeats stopped for node_timeout are down. The check runs
 * again at the earliest deadline of the live nodes, so a dead node is seen
 * within a millisecond of node_timeout, not up to a heartbeat later.
 */
static void expire_nodes(void)
{
	uint64_t now = tmr_jiffies();
	uint64_t next = 0;
	struct le *le;

	LIST_FOREACH(&cl.nodes, le) {
		struct cluster_node *node = le->data;
		uint64_t deadline = node->last_seen + cl.cfg->node_timeout + 1;

		if (node->self || node->state == CLUSTER_NODE_DOWN)
			continue;

		if (now >= deadline) {
			node_set_state(node, CLUSTER_NODE_DOWN,
				       "heartbeat timeout");
			continue;
		}

		if (!next || deadline < next)
			next = deadline;
	}

	if (next)
		tmr_start(&cl.expire, next - now, expire_handler, NULL);
	else
		tmr_cancel(&cl.expire);
}


static void expire_handler(void *arg)
{
	(void)arg;

	if (redis_is_up())
		expire_nodes();
}


static void hb_handler(void *arg)
{
	(void)arg;

	tmr_start(&cl.hb, cl.hb_ms, hb_handler, NULL);

	if (!redis_is_up())
		return;

	(void)heartbeat_send(cl.self->state);
	expire_nodes();
}


/* ---- the (re)connect sequence --------------------------------------- */


/** Every step done: tell the others, and claim the config's tags once */
static void steps_done(void)
{
	(void)heartbeat_send(cl.self->state);

	if (!cl.claimed) {
		cl.claimed = true;
		shtag_claim();
	}
}


static void grace_nodes(void)
{
	uint64_t now = tmr_jiffies();
	struct le *le;

	LIST_FOREACH(&cl.nodes, le) {
		struct cluster_node *node = le->data;

		node->last_seen = now;
		node->watched = false;
	}
}


static void redis_state_handler(enum redis_state st, void *arg)
{
	(void)arg;

	if (st != REDIS_ST_UP) {
		cl.self->synced = false;
		cluster_lease_drop();
		cluster_sync_stop();
		return;
	}

	/* we heard nobody while down: give everybody a full period */
	grace_nodes();
	(void)heartbeat_send(cl.self->state);

	cluster_sync_start(steps_done);
}


/* ---- life cycle ----------------------------------------------------- */


static int self_init(const struct rh_conf *cfg)
{
	int err;

	err = node_alloc(&cl.self, cfg->node_id);
	if (err)
		return err;

	cl.self->self = true;
	cl.self->state = CLUSTER_NODE_UP;
	err = cluster_info_init(cl.self, cfg);
	if (err)
		return err;

	for (size_t i = 0; i < cfg->listenc; i++) {
		err = lsnr_add(cl.self, cfg->listen[i].tag, cfg->listen[i].tp,
			       &cfg->listen[i].addr);
		if (err)
			return err;
	}

	return 0;
}


/**
 * Join the cluster named in the config: connect to Redis, start
 * heartbeats and tags. Nothing happens without `redis`.
 */
int cluster_init(const struct rh_conf *cfg)
{
	char probe[KEY_SIZE];
	int err;

	if (!cfg)
		return EINVAL;
	if (!cfg->has_redis)
		return 0;
	if (cl.up)
		return EALREADY;

	memset(&cl, 0, sizeof(cl));
	cl.cfg = cfg;
	cl.hb_ms = max(cfg->node_timeout / HB_DIVISOR, (uint32_t)HB_MIN_MS);
	re_snprintf(cl.hb_key, sizeof(cl.hb_key), "%s:node:%s", cfg->keyns,
		    cfg->node_id);
	re_snprintf(cl.hb_chan, sizeof(cl.hb_chan), "%s:nodes", cfg->cluster);
	re_snprintf(probe, sizeof(probe), "%s:probe:%s", cfg->keyns,
		    cfg->node_id);

	err = cluster_msg_init(cfg);
	if (err)
		goto out;

	err = self_init(cfg);
	if (err)
		goto out;

	err = redis_init(cfg, probe);
	if (err)
		goto out;

	err = cluster_lease_init(cfg);
	if (err)
		goto out;

	cl.up = true;
	redis_set_state_handler(redis_state_handler, NULL);

	err = redis_subscribe(cl.hb_chan, heartbeat_recv, NULL);
	if (err)
		goto out;

	err = shtag_init(cfg);
	if (err)
		goto out;

	err = ctl_status_add(cluster_status, NULL);
	if (err)
		goto out;

	err = metrics_collector_add(cluster_metrics_print, NULL);
	if (err)
		goto out;

	err = cluster_watch_init(cfg);
	if (err)
		goto out;

	tmr_start(&cl.hb, cl.hb_ms, hb_handler, NULL);
	if (cfg->redis_sentinelc)
		log_info("cluster", "node '%s' joining cluster '%s' via redis "
			 "master %s (Sentinel)", cfg->node_id, cfg->cluster,
			 cfg->redis_master);
	else
		log_info("cluster", "node '%s' joining cluster '%s' via redis "
			 "%s:%u", cfg->node_id, cfg->cluster, cfg->redis_host,
			 cfg->redis_port);

 out:
	if (err) {
		log_error("cluster", "init: %m", err);
		cluster_close();
	}
	return err;
}


/** Leave: say goodbye (so others see us down now), then stop. */
void cluster_close(void)
{
	if (!cl.cfg)
		return;

	tmr_cancel(&cl.hb);
	tmr_cancel(&cl.expire);
	cluster_watch_close();
	if (redis_is_up())
		(void)heartbeat_send(CLUSTER_NODE_DOWN);

	shtag_close();
	cluster_lease_close();
	redis_close();

	cluster_sync_close();
	list_flush(&cl.nodes);
	cluster_msg_close();
	memset(&cl, 0, sizeof(cl));
}


bool cluster_enabled(void)
{
	return cl.up;
}


struct cluster_node *cluster_self(void)
{
	return cl.self;
}


const char *cluster_node_id(void)
{
	return cl.self ? cl.self->id : NULL;
}


const char *cluster_name(void)
{
	return cl.cfg ? cl.cfg->cluster : NULL;
}


/** One handler for node join (-> up), leave (-> down) and draining. */
void cluster_set_node_handler(cluster_node_h *h, void *arg)
{
	cl.nodeh = h;
	cl.arg = arg;
}


struct apply_ctx {
	cluster_node_apply_h *h;
	void *arg;
};


static bool apply_handler(struct le *le, void *arg)
{
	struct apply_ctx *ctx = arg;

	return ctx->h(le->data, ctx->arg);
}


/** Call h for every known node, self first, until it returns true. */
const struct cluster_node *cluster_node_apply(cluster_node_apply_h *h,
					      void *arg)
{
	struct apply_ctx ctx = {h, arg};

	if (!h)
		return NULL;

	return list_ledata(list_apply(&cl.nodes, true, apply_handler, &ctx));
}


const struct cluster_node *cluster_node_find(const char *id)
{
	return node_find(id);
}


/** Its connection to Redis closed (cluster_watch.c): down now. */
void cluster_node_gone(const char *id, const char *why)
{
	struct cluster_node *node = node_find(id);

	if (!node || node->self)
		return;

	node->watched = false;
	node_set_state(node, CLUSTER_NODE_DOWN, why);
}


/** Up or draining: it answers heartbeats and serves what it holds. */
bool cluster_node_alive(const char *id)
{
	const struct cluster_node *node = node_find(id);

	return node && node->state != CLUSTER_NODE_DOWN;
}


/** Address of node `id`'s listener with this tag and transport. */
int cluster_node_lsnr(struct sa *addr, const char *id, const char *tag,
		      enum sip_transp tp)
{
	const struct cluster_node *node = node_find(id);
	struct le *le;

	if (!addr || !tag)
		return EINVAL;
	if (!node)
		return ENOENT;

	LIST_FOREACH(&node->lsnrl, le) {
		const struct cluster_lsnr *l = le->data;

		if (l->tp == tp && 0 == str_cmp(l->tag, tag)) {
			*addr = l->addr;
			return 0;
		}
	}

	return ENOENT;
}


static bool addr_cmp(struct le *le, void *arg)
{
	const struct cluster_node *node = le->data;
	struct le *l;

	if (node->self)
		return false;

	LIST_FOREACH(&node->lsnrl, l) {
		const struct cluster_lsnr *lsnr = l->data;

		if (sa_cmp(&lsnr->addr, arg, SA_ALL))
			return true;
	}

	return false;
}


/** The other node that has a listener at addr (a request it relayed). */
const struct cluster_node *cluster_node_by_addr(const struct sa *addr)
{
	if (!addr)
		return NULL;

	return list_ledata(list_apply(&cl.nodes, true, addr_cmp,
				      (void *)addr));
}


/** Announce (or stop announcing) that this node is draining. */
int cluster_set_draining(bool draining)
{
	if (!cl.self)
		return ENOTCONN;

	node_set_state(cl.self, draining ? CLUSTER_NODE_DRAINING
			: CLUSTER_NODE_UP, "");
	if (redis_is_up())
		(void)heartbeat_send(cl.self->state);

	return 0;
}


static int node_status(struct odict *arr, const struct cluster_node *node,
		       unsigned i)
{
	struct odict *o;
	char key[CTL_INDEX_SZ];
	int err;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	re_snprintf(key, sizeof(key), "%u", i);
	err  = odict_entry_add(o, "id", ODICT_STRING, node->id);
	err |= odict_entry_add(o, "state", ODICT_STRING,
			       cluster_node_state_name(node->state));
	err |= odict_entry_add(o, "self", ODICT_BOOL, node->self);
	err |= odict_entry_add(o, "synced", ODICT_BOOL, node->synced);
	if (!node->self)
		err |= odict_entry_add(o, "last_seen_ms", ODICT_INT,
				       (int64_t)(tmr_jiffies() -
						 node->last_seen));
	if (!err)
		err = lsnrs_encode(o, node);
	if (!err)
		err = cluster_info_status(o, node);
	if (!err)
		err = odict_entry_add(arr, key, ODICT_OBJECT, o);

	mem_deref(o);
	return err;
}


/**
 * ctl_status_h: add the cluster's part of GET /v1/status to od:
 * "cluster", "synced", "nodes", "redis", "shtags" (replication adds
 * "repl" right after, with its own hook).
 */
int cluster_status(struct odict *od, void *arg)
{
	struct odict *arr;
	struct le *le;
	unsigned i = 0;
	int err;
	(void)arg;

	if (!od)
		return EINVAL;
	if (!cl.up)
		return 0;

	err = odict_alloc(&arr, 8);
	if (err)
		return err;

	LIST_FOREACH(&cl.nodes, le) {
		err = node_status(arr, le->data, i++);
		if (err)
			goto out;
	}

	err  = odict_entry_add(od, "cluster", ODICT_STRING, cl.cfg->cluster);
	err |= odict_entry_add(od, "synced", ODICT_BOOL, cluster_synced());
	err |= odict_entry_add(od, "nodes", ODICT_ARRAY, arr);
	err |= cluster_fresh_status(od);
	err |= redis_status(od);
	err |= shtag_status(od);

 out:
	mem_deref(arr);
	return err;
}


/** Reported by the step that loads the replicated dialogs */
void cluster_set_synced(bool synced)
{
	if (cl.self)
		cl.self->synced = synced;
}


/** This node has loaded every replicated dialog since Redis came up */
bool cluster_synced(void)
{
	return cl.self && cl.self->synced;
}
