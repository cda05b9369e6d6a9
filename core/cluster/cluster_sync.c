/**
 * @file cluster_sync.c  The (re)connect sequence: steps added by the modules above
 *
 * After every (re)connect each module that keeps state in Redis catches
 * up: the sharing tags read every tag, then replication loads every
 * dialog. Each adds a step here: a handler that starts its work and
 * reports its end through the done handler it is given. The steps run
 * one after the other, in the order added, each only once the previous
 * one is done, because each needs what came before (replication's fence
 * and serving rule need the tags). A step that fails ends the sequence;
 * the next reconnect runs it from the start. When Redis goes away every
 * step is told, in the same order, to drop what it has under way.
 *
 * The steps are handlers, not calls by name, so that dependencies point
 * one way: the modules above use the cluster, never the reverse. A step
 * belongs to the module that added it; releasing it takes it out.
 */
#include <re.h>
#include "log.h"
#include "cluster.h"
#include "cluster_int.h"

/** A step of the sequence */
struct cluster_step {
	struct le le;
	const char *name;           /* for logs */
	cluster_sync_h *synch;
	cluster_down_h *downh;
	void *arg;
};

static struct {
	struct list steps;          /* struct cluster_step, in order */
	struct cluster_step *cur;   /* the step under way, if any */
	cluster_sync_end_h *endh;
} sq;


static void step_destructor(void *arg)
{
	struct cluster_step *step = arg;

	if (sq.cur == step)
		sq.cur = NULL;
	list_unlink(&step->le);
}


static void step_done(int err);


static void step_start(struct cluster_step *step)
{
	int err;

	sq.cur = step;
	if (!step) {
		sq.endh();
		return;
	}

	err = step->synch(step_done, step->arg);
	if (err) {
		sq.cur = NULL;
		log_warn("cluster", "%s sync: %m", step->name, err);
	}
}


static void step_done(int err)
{
	struct cluster_step *step = sq.cur;

	if (!step || err) {
		sq.cur = NULL;
		return;
	}

	step_start(list_ledata(step->le.next));
}


/** Redis is up (subscribed): run every step, then endh */
void cluster_sync_start(cluster_sync_end_h *endh)
{
	sq.endh = endh;
	step_start(list_ledata(list_head(&sq.steps)));
}


/** Redis went away: the sequence stops, and every step is told */
void cluster_sync_stop(void)
{
	struct le *le;

	sq.cur = NULL;

	LIST_FOREACH(&sq.steps, le) {
		const struct cluster_step *step = le->data;

		step->downh(step->arg);
	}
}


/** The steps still added belong to their modules: only let them go */
void cluster_sync_close(void)
{
	list_clear(&sq.steps);
	sq.cur = NULL;
	sq.endh = NULL;
}


/**
 * Add a step to the (re)connect sequence, after those added before; it
 * runs on every (re)connect until *stepp is released. downh is called
 * whenever Redis goes away, in the same order. name (for logs) is not
 * copied: a string literal.
 */
int cluster_sync_step_add(struct cluster_step **stepp, const char *name,
			  cluster_sync_h *synch, cluster_down_h *downh,
			  void *arg)
{
	struct cluster_step *step;

	if (!stepp || !name || !synch || !downh)
		return EINVAL;
	if (!cluster_enabled())
		return ENOTCONN;

	step = mem_zalloc(sizeof(*step), step_destructor);
	if (!step)
		return ENOMEM;

	step->name = name;
	step->synch = synch;
	step->downh = downh;
	step->arg = arg;
	list_append(&sq.steps, &step->le, step);

	*stepp = step;
	return 0;
}
