/**
 * @file linger.c  Objects kept alive a while after their work, one timer
 *
 * Answered server transactions must absorb retransmissions for 64*T1
 * (32 s) and the ACK of a 2xx must be sent again for each copy of it that
 * comes back meanwhile. libre 1.1.0 keeps every timer in one sorted list,
 * so a timer per lingering object would make every new timer walk tens of
 * thousands of entries at a few hundred calls per second (two thirds of
 * rehomed's CPU, measured). Instead the objects wait in a wheel of
 * one-second buckets, each a libre list, that the proxy's one-second tick
 * turns: keeping an object is an append, and each tick frees one bucket.
 * Nothing is searched; the cost is one list element inside each object
 * and one reference held on it.
 *
 * An object stays at least `secs` seconds and at most one second more.
 */
#include <re.h>
#include "linger.h"

enum { BUCKETS = LINGER_MAX_S + 2 };

static struct {
	struct list bucket[BUCKETS];
	unsigned pos;               /* the bucket the last tick freed */
} lg;


/**
 * Keep obj alive for secs seconds (at most LINGER_MAX_S): the wheel holds
 * a reference on it through le, a list element of the object's own that
 * its destructor unlinks. Keeping it again moves it to the new time.
 */
void linger_keep(struct le *le, void *obj, uint32_t secs)
{
	unsigned i = (lg.pos + 1 + MIN(MAX(secs, 1u), LINGER_MAX_S)) % BUCKETS;

	if (!le || !obj)
		return;

	if (le->list) {
		list_unlink(le);
		list_append(&lg.bucket[i], le, obj);
		return;
	}

	list_append(&lg.bucket[i], le, mem_ref(obj));
}


static void flush(struct list *bucket)
{
	struct le *le;

	while ((le = list_head(bucket)) != NULL) {
		list_unlink(le);
		mem_deref(le->data);
	}
}


/** Once a second: what has waited long enough goes. */
void linger_tick(void)
{
	lg.pos = (lg.pos + 1) % BUCKETS;
	flush(&lg.bucket[lg.pos]);
}


void linger_close(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(lg.bucket); i++)
		flush(&lg.bucket[i]);
}
