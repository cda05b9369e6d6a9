/**
 * @file shtag_observer.c  Sharing tags: who is told when a tag changes hands
 *
 * A tag changing hands matters to the layers above (replication adopts
 * or hands over the tag's dialogs), so any number of modules may follow
 * it: each adds an observer and owns it, and releasing it takes it out.
 * Observers are told in the order added, as soon as a new holder is
 * learnt and before the tag's change handler, so that the dialogs have
 * moved before whoever re-homes them hears of it.
 */
#include <re.h>
#include "shtag.h"
#include "shtag_int.h"

/** Told when a tag changes hands */
struct shtag_observer {
	struct le le;
	shtag_holder_h *h;
	void *arg;
};

static struct list observers;   /* struct shtag_observer, in order */


static void observer_destructor(void *arg)
{
	struct shtag_observer *obs = arg;

	list_unlink(&obs->le);
}


/**
 * Add an observer told whenever a tag changes hands; releasing *obsp
 * removes it.
 */
int shtag_observer_add(struct shtag_observer **obsp, shtag_holder_h *h,
		       void *arg)
{
	struct shtag_observer *obs;

	if (!obsp || !h)
		return EINVAL;

	obs = mem_zalloc(sizeof(*obs), observer_destructor);
	if (!obs)
		return ENOMEM;

	obs->h = h;
	obs->arg = arg;
	list_append(&observers, &obs->le, obs);

	*obsp = obs;
	return 0;
}


/** Tag `name` has a new holder ("" nobody) */
void shtag_observers_tell(const char *name, const char *holder)
{
	struct le *le = observers.head;

	while (le) {
		const struct shtag_observer *obs = le->data;

		le = le->next;   /* an observer may release itself */
		obs->h(name, holder, obs->arg);
	}
}


/** The observers left belong to their modules: only let them go */
void shtag_observers_close(void)
{
	list_clear(&observers);
}
