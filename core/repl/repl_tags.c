/**
 * @file repl_tags.c  Dialog replication: the sharing tags this node listens to
 *
 * Each dialog change is published on its tag's channel,
 * `<cluster>:repl:<tag>`, and a node listens only to the tags it may have
 * to continue: those its config names (`shtag T active|backup`, and the
 * default_shtag), their sub-tags (`T.<node>`, which move and drain
 * create, rehome_handoff.c: any tag named `T.` something, as soon as a
 * node holds it) and those it takes later. So a node receives the
 * changes of the tags it backs up, not every change of the cluster, and
 * adding nodes (each backing up a few tags) does not multiply what every
 * node receives. Snapshots stay the durable truth: a node loads only the
 * watched tags' snapshots (repl_sync.c), and one that takes a tag it did
 * not listen to subscribes first and, once Redis confirms the channel,
 * loads that tag's snapshots, then adopts them (repl_tag_watch() lets a
 * caller wait for that before it re-homes the calls). A tag taken here
 * that the config does not name is let go when another node takes it:
 * its replicas here would no longer be kept up to date, so they are
 * dropped with the subscription.
 *
 * The tags listened to are in this node's heartbeats (info "repl_tags",
 * space-separated), so that another node knows who keeps a tag's
 * replicas (repl_metrics.c: a dialog is protected by a node listening to
 * its tag).
 *
 * Trade-off: a tag that no node's config names and no node holds is
 * replicated to Redis only (its snapshots); whoever takes it loads them.
 * The snapshots' keys do not carry the tag, so loading one tag reads
 * every snapshot and keeps that tag's.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "did.h"
#include "cseq.h"
#include "dialog.h"
#include "redis.h"
#include "cluster.h"
#include "shtag.h"
#include "repl.h"
#include "repl_int.h"

/** One who waits for a tag's snapshots */
struct waiter {
	struct le le;
	repl_watch_h *h;
	void *arg;
};

/** A tag this node listens to */
struct rtag {
	struct le le;
	char *name;
	char *chan;
	bool conf;            /* named by the config: never let go */
	bool loaded;          /* its snapshots are applied here */
	struct list waiters;  /* struct waiter */
};

static struct list tags;   /* struct rtag */


static void waiters_call(struct rtag *t, int err)
{
	struct le *le;

	while ((le = list_head(&t->waiters))) {
		struct waiter *w = le->data;

		list_unlink(le);
		w->h(err, w->arg);
		mem_deref(w);
	}
}


static void rtag_destructor(void *arg)
{
	struct rtag *t = arg;

	list_unlink(&t->le);
	(void)redis_unsubscribe(t->chan);
	waiters_call(t, ECANCELED);
	mem_deref(t->name);
	mem_deref(t->chan);
}


static struct rtag *rtag_find(const char *name)
{
	struct le *le;

	LIST_FOREACH(&tags, le) {
		struct rtag *t = le->data;

		if (!str_cmp(t->name, name))
			return t;
	}

	return NULL;
}


/** The tags listened to, into this node's heartbeats: "A B ..." */
static void info_publish(void)
{
	struct mbuf *mb = mbuf_alloc(256);
	char *s = NULL;
	struct le *le;
	int err = mb ? 0 : ENOMEM;

	LIST_FOREACH(&tags, le) {
		const struct rtag *t = le->data;

		if (!err)
			err = mbuf_printf(mb, "%s%s", le == tags.head ? "" : " ",
					  t->name);
	}

	if (!err) {
		mb->pos = 0;
		err = mbuf_strdup(mb, &s, mb->end);
	}
	if (!err)
		err = cluster_info_set(REPL_INFO_TAGS, s);
	if (err)
		log_warn("repl", "tags listened to not told: %m", err);

	mem_deref(s);
	mem_deref(mb);
}


/**
 * Whether node keeps replicas of tag: it says it listens to the tag, or
 * says nothing of its tags (a node of an earlier version: every tag).
 */
bool repl_tags_node_listens(const struct cluster_node *node, const char *tag)
{
	const char *v = node->info ? odict_string(node->info, REPL_INFO_TAGS)
		: NULL;
	struct pl rest, word;

	if (!v)
		return true;

	pl_set_str(&rest, v);
	while (!re_regex(rest.p, rest.l, "[^ ]+", &word)) {
		if (!pl_strcmp(&word, tag))
			return true;
		pl_advance(&rest, word.p + word.l - rest.p);
	}

	return false;
}


/** The channel of tag's changes: <cluster>:repl:<tag> */
int repl_tag_chan(char *buf, size_t sz, const char *tag)
{
	return re_snprintf(buf, sz, "%s%s", repl_st.chan, tag ? tag : "") > 0
		? 0 : ENOMEM;
}


bool repl_tag_watched(const char *name)
{
	return NULL != rtag_find(name);
}


/** A sub-tag of a tag the config names: "<tag>.<anything>" */
static bool conf_family(const char *name)
{
	struct le *le;

	LIST_FOREACH(&tags, le) {
		const struct rtag *t = le->data;
		size_t n = str_len(t->name);

		if (t->conf && !strncmp(name, t->name, n) && name[n] == '.')
			return true;
	}

	return false;
}


static void tag_loaded(const char *name)
{
	struct rtag *t = rtag_find(name);

	if (!t || t->loaded)
		return;

	t->loaded = true;

	/* taken before its dialogs were here: adopt them now */
	if (repl_is_me(shtag_holder(name)))
		repl_shtag_changed(name, shtag_holder(name), NULL);

	waiters_call(t, 0);
}


/* redis_ready_h: the channel is live; load what was written before */
static void chan_ready(const char *chan, void *arg)
{
	struct rtag *t = arg;
	int err;
	(void)chan;

	/* at (re)connect the full load covers it */
	if (t->loaded || !redis_is_up())
		return;

	err = repl_sync_tag(t->name, tag_loaded);
	if (err) {
		log_warn("repl", "tag %s: cannot load its snapshots: %m",
			 t->name, err);
		waiters_call(t, err);
	}
}


static int rtag_add(struct rtag **tp, const char *name, bool conf)
{
	char chan[REPL_KEY_SIZE];
	struct rtag *t;
	int err;

	t = mem_zalloc(sizeof(*t), rtag_destructor);
	if (!t)
		return ENOMEM;

	t->conf = conf;
	err = repl_tag_chan(chan, sizeof(chan), name);
	if (!err)
		err = str_dup(&t->name, name);
	if (!err)
		err = str_dup(&t->chan, chan);
	if (err)
		goto out;

	list_append(&tags, &t->le, t);
	err = redis_subscribe_ready(t->chan, repl_channel_handler, chan_ready,
				    t);
	if (!err)
		log_debug("repl", "listening to tag %s", name);

 out:
	if (err)
		mem_deref(t);
	else if (tp)
		*tp = t;
	return err;
}


/**
 * Listen to tag's changes, loading its snapshots if that is new: h(0,
 * arg) once they are here. EALREADY (h not called) when they are.
 */
int repl_tag_watch(const char *name, repl_watch_h *h, void *arg)
{
	struct rtag *t;
	struct waiter *w;
	int err;

	if (!str_isset(name) || !h)
		return EINVAL;
	if (!repl_st.up)
		return EALREADY;   /* no cluster: nothing to load */

	t = rtag_find(name);
	if (t && t->loaded)
		return EALREADY;

	w = mem_zalloc(sizeof(*w), NULL);
	if (!w)
		return ENOMEM;

	if (!t && conf_family(name)) {
		/* a holder of it would have been heard of: nothing to load */
		mem_deref(w);
		err = rtag_add(&t, name, true);
		if (err)
			return err;
		t->loaded = true;
		info_publish();
		return EALREADY;
	}

	if (!t) {
		err = rtag_add(&t, name, false);
		if (err) {
			mem_deref(w);
			return err;
		}
		log_info("repl", "tag %s: listening, loading its snapshots",
			 name);
		info_publish();
	}

	w->h = h;
	w->arg = arg;
	list_append(&t->waiters, &w->le, w);
	return 0;
}


static bool drop_handler(struct dialog *dlg, void *arg)
{
	if (dlg->replica && !str_cmp(dlg->shtag, arg))
		dialog_remove(dlg);

	return false;
}


/**
 * Tag `name` changed hands: listen to one taken here or a sub-tag of
 * ours; let go of one another node took that the config does not name
 * (with its replicas).
 */
void repl_tags_holder(const char *name, const char *holder)
{
	struct rtag *t = rtag_find(name);
	bool mine = repl_is_me(holder), family;

	if (!str_isset(holder))
		return;

	family = !t && conf_family(name);
	if (!t && (mine || family) && !rtag_add(&t, name, family)) {
		log_info("repl", "tag %s: held by %s, listening and loading "
			 "its snapshots", name, holder);
		info_publish();
	}

	if (mine || !t || t->conf)
		return;

	log_info("repl", "tag %s: %s took it, no longer listening", name,
		 holder);
	mem_deref(t);
	info_publish();
	(void)dialog_apply(drop_handler, (void *)name);
}


/** The full load (repl_sync) applied every watched tag's snapshots */
void repl_tags_loaded(void)
{
	struct le *le;

	for (le = list_head(&tags); le; ) {
		struct rtag *t = le->data;

		le = le->next;
		t->loaded = true;
		waiters_call(t, 0);
	}
}


/** Listen to the tags the config names, and the default one */
int repl_tags_init(const struct rh_conf *cfg)
{
	int err = 0;

	for (size_t i = 0; i < cfg->shtagc && !err; i++)
		err = rtag_add(NULL, cfg->shtag[i].name, true);

	if (!err && !rtag_find(cfg->default_shtag))
		err = rtag_add(NULL, cfg->default_shtag, true);

	if (!err)
		info_publish();

	return err;
}


void repl_tags_close(void)
{
	list_flush(&tags);
}
