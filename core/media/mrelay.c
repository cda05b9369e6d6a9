/**
 * @file mrelay.c  The media relays (rtpengines): health, choice, counts
 *
 * One relay per `media_relay` line, each with its own ng client. Health
 * is what the SPEC asks for and nothing more: a relay is down until it
 * answers an ng ping, and down again once a ping goes unanswered through
 * all of its retries. Pings run back to back, one at a time, started
 * `ping_interval_ms` apart, or at once when the previous one took longer
 * (a relay that does not answer is still asked every retry interval). Any
 * answer counts as alive, even an error result: a relay that parses our
 * datagram and replies is up. A relay starts down, so the first answer
 * reports it up like any later recovery; the state handler is the hook a
 * policy's on_relay_down will hang on.
 *
 * New calls are spread over the relays that are up by smooth weighted
 * round robin (nginx's): each choice adds every candidate's weight to its
 * running score, takes the highest score and takes the total off it. It
 * is exact (weights 1 and 3 give one call in four to the first) and
 * spreads picks evenly instead of in runs, with no randomness to make
 * tests flaky. A relay that comes back starts from a score of zero.
 *
 * Relays are reference counted: a call anchored in one holds it, so the
 * relay (and its ng client, which the call still needs for its delete)
 * outlives the set when the set is freed first; it is only no longer
 * checked.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "ng.h"
#include "mrelay.h"
#include "media_int.h"

enum {
	MRELAY_PING_MS = 1000,
	MRELAY_NAME_SZ = 64,
	MRELAY_ODICT_HSZ = 16,
};

struct mrelay_set {
	struct list relays;
	struct mrelay_opts opts;
	mrelay_state_h *stateh;
	void *arg;
};

struct mrelay {
	struct le le;
	struct mrelay_set *set;    /* NULL once the set is gone */
	struct ng_client *ng;
	struct ng_req *ping;       /* the ping in flight */
	struct tmr tmr;            /* next ping */
	struct sa addr;            /* its ng address */
	char name[MRELAY_NAME_SZ]; /* udp:IP:PORT */
	uint32_t weight;
	int64_t score;             /* smooth weighted round robin */
	bool up;
	uint32_t calls;
	uint64_t ping_sent;        /* jiffies */
	uint64_t rtt_ms;           /* of the last answered ping */
};


static void relay_destructor(void *arg)
{
	struct mrelay *r = arg;

	list_unlink(&r->le);
	tmr_cancel(&r->tmr);
	mem_deref(r->ping);
	mem_deref(r->ng);
}


/* The set goes, the calls may keep their relay: it is only not checked */
static void set_destructor(void *arg)
{
	struct mrelay_set *set = arg;
	struct le *le;

	for (le = list_head(&set->relays); le; le = le->next) {
		struct mrelay *r = le->data;

		tmr_cancel(&r->tmr);
		r->ping = mem_deref(r->ping);
		r->set = NULL;
	}

	list_flush(&set->relays);
}


static void ping_start(void *arg);


static void ping_handler(int err, const struct odict *reply, void *arg)
{
	struct mrelay *r = arg;
	struct mrelay_set *set = r->set;
	uint64_t elapsed = tmr_jiffies() - r->ping_sent;
	uint64_t interval = set->opts.ping_interval_ms;
	bool up = !err || err == EPROTO;

	(void)reply;

	if (up)
		r->rtt_ms = elapsed;

	tmr_start(&r->tmr, elapsed < interval ? interval - elapsed : 0,
		  ping_start, r);

	if (up == r->up)
		return;

	r->up = up;
	r->score = 0;
	if (up)
		log_info("media", "relay %s is up", r->name);
	else
		log_warn("media", "relay %s is down: %m", r->name, err);

	/* last: the handler may free the set, and with it this relay */
	if (set->stateh)
		set->stateh(r, up, set->arg);
}


static void ping_start(void *arg)
{
	struct mrelay *r = arg;
	int err;

	r->ping_sent = tmr_jiffies();
	err = ng_ping(&r->ping, r->ng, ping_handler, r);
	if (err)
		ping_handler(err, NULL, r);
}


static int relay_add(struct mrelay_set *set, const struct conf_media_relay *c)
{
	struct mrelay *r;
	int err;

	r = mem_zalloc(sizeof(*r), relay_destructor);
	if (!r)
		return ENOMEM;

	r->set = set;
	r->addr = c->addr;
	r->weight = c->weight ? c->weight : 1;
	(void)re_snprintf(r->name, sizeof(r->name), "udp:%J", &c->addr);

	err = ng_client_alloc(&r->ng, &c->addr, &set->opts.ng);
	if (err) {
		mem_deref(r);
		return err;
	}

	list_append(&set->relays, &r->le, r);
	tmr_start(&r->tmr, 0, ping_start, r);

	return 0;
}


/**
 * The relays of the configuration, checked from now on (all down until
 * their first answer)
 *
 * @param setp   New set
 * @param relayv The `media_relay` lines
 * @param relayc How many
 * @param opts   Checks and retries, NULL for the defaults
 * @param stateh Called on every up/down change, may be NULL
 * @param arg    Handler argument
 *
 * @return 0 if success, otherwise errorcode
 */
int mrelay_set_alloc(struct mrelay_set **setp,
		     const struct conf_media_relay *relayv, size_t relayc,
		     const struct mrelay_opts *opts,
		     mrelay_state_h *stateh, void *arg)
{
	struct mrelay_set *set;
	int err = 0;

	if (!setp || (!relayv && relayc))
		return EINVAL;

	set = mem_zalloc(sizeof(*set), set_destructor);
	if (!set)
		return ENOMEM;

	if (opts)
		set->opts = *opts;
	if (!set->opts.ping_interval_ms)
		set->opts.ping_interval_ms = MRELAY_PING_MS;
	set->stateh = stateh;
	set->arg = arg;

	for (size_t i = 0; i < relayc && !err; i++)
		err = relay_add(set, &relayv[i]);

	if (err)
		mem_deref(set);
	else
		*setp = set;

	return err;
}


/**
 * The relay for a new call: one that is up, by weight
 *
 * @return The relay (the caller takes a reference to keep it), or NULL
 *         when none is up
 */
struct mrelay *mrelay_choose(struct mrelay_set *set)
{
	struct mrelay *best = NULL;
	int64_t total = 0;
	struct le *le;

	if (!set)
		return NULL;

	for (le = list_head(&set->relays); le; le = le->next) {
		struct mrelay *r = le->data;

		if (!r->up)
			continue;

		r->score += r->weight;
		total += r->weight;
		if (!best || r->score > best->score)
			best = r;
	}

	if (best)
		best->score -= total;

	return best;
}


/**
 * The relay named as in the config, `udp:IP:PORT`, or `IP:PORT`
 */
struct mrelay *mrelay_find(const struct mrelay_set *set, const char *name)
{
	struct pl pl;
	struct sa sa;
	struct le *le;

	if (!set || !name)
		return NULL;

	pl_set_str(&pl, name);
	if (pl.l > 4 && !strncasecmp(pl.p, "udp:", 4))
		pl_advance(&pl, 4);

	if (sa_decode(&sa, pl.p, pl.l))
		return NULL;

	for (le = list_head(&set->relays); le; le = le->next) {
		struct mrelay *r = le->data;

		if (sa_cmp(&r->addr, &sa, SA_ALL))
			return r;
	}

	return NULL;
}


static int relay_status(struct odict *arr, const struct mrelay *r,
			unsigned idx)
{
	const struct ng_stats *st = ng_client_stats(r->ng);
	struct odict *o;
	char key[16];
	int err;

	err = odict_alloc(&o, MRELAY_ODICT_HSZ);
	if (err)
		return err;

	err  = odict_entry_add(o, "relay", ODICT_STRING, r->name);
	err |= odict_entry_add(o, "state", ODICT_STRING,
			       r->up ? "up" : "down");
	err |= odict_entry_add(o, "weight", ODICT_INT, (int64_t)r->weight);
	err |= odict_entry_add(o, "calls", ODICT_INT, (int64_t)r->calls);
	err |= odict_entry_add(o, "rtt_ms", ODICT_INT, (int64_t)r->rtt_ms);
	err |= odict_entry_add(o, "sent", ODICT_INT, (int64_t)st->sent);
	err |= odict_entry_add(o, "retries", ODICT_INT, (int64_t)st->retries);
	err |= odict_entry_add(o, "timeouts", ODICT_INT,
			       (int64_t)st->timeouts);
	err |= odict_entry_add(o, "errors", ODICT_INT, (int64_t)st->errors);
	err |= odict_entry_add(o, "garbled", ODICT_INT, (int64_t)st->garbled);
	err |= odict_entry_add(o, "stray", ODICT_INT, (int64_t)st->stray);
	if (err)
		goto out;

	(void)re_snprintf(key, sizeof(key), "%u", idx);
	err = odict_entry_add(arr, key, ODICT_OBJECT, o);

 out:
	mem_deref(o);
	return err;
}


/**
 * What GET /v1/media/relays shows: `{"relays": [{"relay", "state",
 * "weight", "calls", "rtt_ms", and the ng counters}]}`
 */
int mrelay_status(struct odict **odp, const struct mrelay_set *set)
{
	struct odict *od = NULL, *arr = NULL;
	unsigned idx = 0;
	struct le *le;
	int err;

	if (!odp || !set)
		return EINVAL;

	err  = odict_alloc(&od, MRELAY_ODICT_HSZ);
	err |= odict_alloc(&arr, MRELAY_ODICT_HSZ);
	if (err) {
		err = ENOMEM;
		goto out;
	}

	for (le = list_head(&set->relays); le && !err; le = le->next)
		err = relay_status(arr, le->data, idx++);
	if (err)
		goto out;

	err = odict_entry_add(od, "relays", ODICT_ARRAY, arr);

 out:
	mem_deref(arr);
	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


const char *mrelay_name(const struct mrelay *relay)
{
	return relay ? relay->name : NULL;
}


bool mrelay_is_up(const struct mrelay *relay)
{
	return relay && relay->up;
}


uint32_t mrelay_calls(const struct mrelay *relay)
{
	return relay ? relay->calls : 0;
}


struct ng_client *mrelay_ng(const struct mrelay *relay)
{
	return relay ? relay->ng : NULL;
}


void mrelay_call_attach(struct mrelay *relay)
{
	++relay->calls;
}


void mrelay_call_detach(struct mrelay *relay)
{
	if (relay->calls)
		--relay->calls;
}
