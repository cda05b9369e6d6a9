/**
 * @file metrics.c  Counters, gauges and histograms, exported in Prometheus text format
 *
 * Everything is a plain static array: the SIP path only increments an
 * integer, with no allocation and no lock (the whole engine runs in
 * libre's main loop thread). Counters keyed by a free-form string
 * (drop reasons, re-home outcomes, policy events) live in small fixed
 * tables searched linearly; the few distinct values make that cheaper than
 * hashing, and a table that fills up folds new values into "other" so a
 * buggy caller cannot grow memory. Gauges that other modules count on
 * demand (dialogs by tag and state) come from collectors they register:
 * one walk per scrape instead of work on every call, and ctl stays below
 * the modules whose state it shows.
 *
 * Histograms have fixed buckets in microseconds, chosen per family: an
 * observation is one search of a dozen integers and three additions; the
 * cumulative counts Prometheus wants are summed when printed. A labelled
 * histogram finds its label value in an lset like the counters do.
 *
 * Names follow Prometheus' conventions (docs/metrics.md): `rehome_` once,
 * the unit in the name (`_seconds`, `_bytes`), `_total` on counters. A
 * label without a value is left out of the sample, which is what
 * Prometheus makes of an empty one anyway. The cluster's families are
 * counted here like the others but printed by the cluster's collector
 * (metrics_cluster_print), so a node without Redis shows none of them.
 */
#include <string.h>
#include <re.h>
#include "metrics.h"

enum {
	SCODE_MIN  = 100,
	SCODE_MAX  = 699,
	LABEL_SIZE = 48,
	LSET_SIZE  = 32,
	SHTAG_MAX  = 128,
	BUCKET_MAX = 16,
	LE_SIZE    = 24,     /* a bucket bound as text */
};

static const char *methods[] = {
	"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO",
	"PRACK", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "REGISTER",
	"PUBLISH", "other",
};

static const char overflow_label[] = "other";

/* replication delay: a loopback Redis takes ~100 us, a WAN ~50 ms */
static const uint64_t lag_le[] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 5000000,
};

/* one dialog's re-INVITEs: a round trip or two, 32 s when a leg is silent */
static const uint64_t rehome_le[] = {
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
	5000000, 10000000, 20000000, 40000000,
};

_Static_assert(ARRAY_SIZE(lag_le) <= BUCKET_MAX, "lag buckets");
_Static_assert(ARRAY_SIZE(rehome_le) <= BUCKET_MAX, "re-home buckets");

/** A counter with up to two string labels */
struct lcount {
	char a[LABEL_SIZE];
	char b[LABEL_SIZE];
	uint64_t n;
};

struct lset {
	struct lcount v[LSET_SIZE];
	size_t c;
};

/** One histogram's counts per bucket, not cumulative; the last is +Inf */
struct hist {
	uint64_t bucket[BUCKET_MAX + 1];
	uint64_t sum_us;
};

/**
 * The histograms of one family, one per value of its label (keys.v[i]
 * names v[i], keys.v[i].n is its count). An unlabelled family starts with
 * its one histogram, value "", so that it prints zeros before the first
 * observation.
 */
struct hset {
	const uint64_t *le;   /* upper bounds, us, ascending (+Inf implied) */
	size_t lec;
	struct lset keys;
	struct hist v[LSET_SIZE];
};

struct collector {
	struct le le;
	metrics_collector_h *h;
	void *arg;
};

struct shtag_gauge {
	char name[LABEL_SIZE];
	uint64_t epoch;
	bool active;
};

static struct {
	uint64_t req[ARRAY_SIZE(methods)];
	uint64_t resp_sent[SCODE_MAX - SCODE_MIN + 1];
	uint64_t resp_recv[SCODE_MAX - SCODE_MIN + 1];
	uint64_t repl_sent;
	uint64_t repl_recv;
	uint64_t calls;
	struct lset repl_dropped;
	struct hset repl_lag;
	bool redis_up;
	struct shtag_gauge shtag[SHTAG_MAX];
	size_t shtagc;
	struct lset rehome;
	struct hset rehome_dur;
	struct lset policy;
	struct list collectors;
} m = {
	.repl_lag   = {.le = lag_le, .lec = ARRAY_SIZE(lag_le), .keys.c = 1},
	.rehome_dur = {.le = rehome_le, .lec = ARRAY_SIZE(rehome_le)},
};


static void collector_destructor(void *arg)
{
	struct collector *c = arg;

	list_unlink(&c->le);
}


static bool label_eq(const char *stored, const char *s)
{
	return 0 == strncmp(stored, s, LABEL_SIZE - 1);
}


/** The counter for (a, b); a full table answers with its "other" slot. */
static struct lcount *lset_slot(struct lset *set, const char *a,
				const char *b)
{
	struct lcount *lc;
	size_t i;

	a = a ? a : "";
	b = b ? b : "";

	for (i = 0; i < set->c; i++) {
		lc = &set->v[i];
		if (label_eq(lc->a, a) && label_eq(lc->b, b))
			return lc;
	}

	if (set->c >= LSET_SIZE - 1 && a != overflow_label)
		return lset_slot(set, overflow_label, overflow_label);

	lc = &set->v[set->c++];
	str_ncpy(lc->a, a, sizeof(lc->a));
	str_ncpy(lc->b, b, sizeof(lc->b));
	return lc;
}


void metrics_sip_request(const struct pl *method)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(methods) - 1; i++) {
		if (0 == pl_strcmp(method, methods[i]))
			break;
	}

	m.req[i]++;
}


static void scode_inc(uint64_t *v, uint16_t scode)
{
	if (scode >= SCODE_MIN && scode <= SCODE_MAX)
		v[scode - SCODE_MIN]++;
}


void metrics_sip_response(uint16_t scode)
{
	scode_inc(m.resp_sent, scode);
}


void metrics_sip_response_received(uint16_t scode)
{
	scode_inc(m.resp_recv, scode);
}


/** A new call (an initial INVITE relayed) is served here */
void metrics_call_started(void)
{
	m.calls++;
}


void metrics_repl_sent(void)
{
	m.repl_sent++;
}


void metrics_repl_received(void)
{
	m.repl_recv++;
}


void metrics_repl_dropped(const char *reason)
{
	lset_slot(&m.repl_dropped, reason, NULL)->n++;
}


/** One observation of us microseconds in the histogram of `label` */
static void hset_observe(struct hset *hs, const char *label, uint64_t us)
{
	struct lcount *lc = lset_slot(&hs->keys, label, NULL);
	struct hist *h = &hs->v[lc - hs->keys.v];
	size_t i = 0;

	while (i < hs->lec && us > hs->le[i])
		++i;

	h->bucket[i]++;
	h->sum_us += us;
	lc->n++;
}


/** A replication message's delay, sender's clock to ours */
void metrics_repl_lag(uint64_t us)
{
	hset_observe(&m.repl_lag, NULL, us);
}


void metrics_redis_up(bool up)
{
	m.redis_up = up;
}


void metrics_shtag_set(const char *tag, uint64_t epoch, bool active)
{
	struct shtag_gauge *g = NULL;
	size_t i;

	if (!str_isset(tag))
		return;

	for (i = 0; i < m.shtagc && !g; i++) {
		if (label_eq(m.shtag[i].name, tag))
			g = &m.shtag[i];
	}

	if (!g) {
		if (m.shtagc == SHTAG_MAX)
			return;
		g = &m.shtag[m.shtagc++];
		str_ncpy(g->name, tag, sizeof(g->name));
	}

	g->epoch  = epoch;
	g->active = active;
}


void metrics_rehome_result(const char *outcome, const char *reason)
{
	lset_slot(&m.rehome, outcome, reason)->n++;
}


/** How long one dialog's re-home took, from its start to its outcome */
void metrics_rehome_duration(const char *outcome, uint64_t ms)
{
	hset_observe(&m.rehome_dur, outcome, ms * 1000);
}


void metrics_policy_event(const char *what)
{
	lset_slot(&m.policy, what, NULL)->n++;
}


/** %H: a label value, escaped as the exposition format asks */
int metrics_label_print(struct re_printf *pf, void *arg)
{
	const char *s = arg;
	int err = 0;

	for (; s && *s && !err; s++) {
		switch (*s) {

		case '\\': err = re_hprintf(pf, "\\\\"); break;
		case '"':  err = re_hprintf(pf, "\\\""); break;
		case '\n': err = re_hprintf(pf, "\\n");  break;
		default:   err = pf->vph(s, 1, pf->arg); break;
		}
	}

	return err;
}


/**
 * %H: the labels of a sample from a NULL-terminated list of name, value
 * pairs (const char *[]): `{a="x",b="y"}`, without the pairs whose value
 * is empty or NULL, nothing at all when every value is.
 */
int metrics_labels_print(struct re_printf *pf, void *arg)
{
	const char *const *lv = arg;
	const char *sep = "{";
	int err = 0;

	for (; lv && lv[0] && !err; lv += 2) {
		if (!str_isset(lv[1]))
			continue;

		err = re_hprintf(pf, "%s%s=\"%H\"", sep, lv[0],
				 metrics_label_print, lv[1]);
		sep = ",";
	}

	if (!err && sep[0] == ',')
		err = re_hprintf(pf, "}");

	return err;
}


/** %H: microseconds (uint64_t *) as seconds, without trailing zeros */
static int secs_print(struct re_printf *pf, void *arg)
{
	const uint64_t us = *(const uint64_t *)arg;
	char frac[8];
	int i;

	(void)re_snprintf(frac, sizeof(frac), "%06llu",
			  (unsigned long long)(us % 1000000));
	for (i = 5; i >= 0 && frac[i] == '0'; i--)
		frac[i] = '\0';

	return re_hprintf(pf, "%llu%s%s", (unsigned long long)(us / 1000000),
			  frac[0] ? "." : "", frac);
}


/** The HELP and TYPE lines that open a family */
int metrics_family_print(struct re_printf *pf, const char *name,
			 const char *type, const char *help)
{
	return re_hprintf(pf, "# HELP %s %s\n# TYPE %s %s\n",
			  name, help, name, type);
}


static int requests_print(struct re_printf *pf)
{
	const char *name = "rehome_sip_requests_received_total";
	int err;

	err = metrics_family_print(pf, name, "counter",
				   "SIP requests received, by method");
	for (size_t i = 0; i < ARRAY_SIZE(methods) && !err; i++) {
		err = re_hprintf(pf, "%s{method=\"%s\"} %llu\n", name,
				 methods[i], (unsigned long long)m.req[i]);
	}

	return err;
}


static int scodes_print(struct re_printf *pf, const char *name,
			const char *help, const uint64_t *v)
{
	int err;

	err = metrics_family_print(pf, name, "counter", help);
	for (size_t i = 0; i <= SCODE_MAX - SCODE_MIN && !err; i++) {
		if (!v[i])
			continue;
		err = re_hprintf(pf, "%s{code=\"%zu\"} %llu\n", name,
				 i + SCODE_MIN, (unsigned long long)v[i]);
	}

	return err;
}


static int value_print(struct re_printf *pf, const char *name,
		       const char *type, const char *help, uint64_t v)
{
	return metrics_family_print(pf, name, type, help) |
		re_hprintf(pf, "%s %llu\n", name, (unsigned long long)v);
}


/** One family from an lset; `lb` names the second label, or NULL */
static int lset_print(struct re_printf *pf, const char *name,
		      const char *help, const struct lset *set,
		      const char *la, const char *lb)
{
	int err;

	err = metrics_family_print(pf, name, "counter", help);
	for (size_t i = 0; i < set->c && !err; i++) {
		const struct lcount *lc = &set->v[i];
		const char *lv[] = {la, lc->a, lb, lc->b, NULL};

		err = re_hprintf(pf, "%s%H %llu\n", name, metrics_labels_print,
				 lv, (unsigned long long)lc->n);
	}

	return err;
}


/** One histogram: cumulative buckets, sum, count; `la` its label or NULL */
static int hist_print(struct re_printf *pf, const char *name,
		      const struct hset *hs, size_t k, const char *la)
{
	const struct hist *h = &hs->v[k];
	const char *value = hs->keys.v[k].a;
	char le[LE_SIZE];
	const char *lv[] = {la, value, "le", le, NULL};
	const char *const *bucket = la ? lv : lv + 2;
	const char *bare[] = {la, value, NULL};
	uint64_t cum = 0;
	int err = 0;

	for (size_t i = 0; i <= hs->lec && !err; i++) {
		cum += h->bucket[i];
		if (i < hs->lec)
			(void)re_snprintf(le, sizeof(le), "%H", secs_print,
					  &hs->le[i]);
		else
			str_ncpy(le, "+Inf", sizeof(le));

		err = re_hprintf(pf, "%s_bucket%H %llu\n", name,
				 metrics_labels_print, bucket,
				 (unsigned long long)cum);
	}

	err |= re_hprintf(pf, "%s_sum%H %H\n", name, metrics_labels_print,
			  bare, secs_print, &h->sum_us);
	err |= re_hprintf(pf, "%s_count%H %llu\n", name, metrics_labels_print,
			  bare, (unsigned long long)hs->keys.v[k].n);

	return err;
}


static int hset_print(struct re_printf *pf, const char *name,
		      const char *help, const struct hset *hs, const char *la)
{
	int err;

	err = metrics_family_print(pf, name, "histogram", help);
	for (size_t k = 0; k < hs->keys.c && !err; k++)
		err = hist_print(pf, name, hs, k, la);

	return err;
}


static int shtags_print(struct re_printf *pf)
{
	int err;

	err = metrics_family_print(pf, "rehome_shtag_epoch", "gauge",
				   "Epoch of each sharing tag as last seen");
	for (size_t i = 0; i < m.shtagc && !err; i++) {
		err = re_hprintf(pf, "rehome_shtag_epoch{shtag=\"%H\"} %llu\n",
				 metrics_label_print, m.shtag[i].name,
				 (unsigned long long)m.shtag[i].epoch);
	}

	err |= metrics_family_print(pf, "rehome_shtag_active", "gauge",
				    "1 when this node is active for the "
				    "sharing tag");
	for (size_t i = 0; i < m.shtagc && !err; i++) {
		err = re_hprintf(pf, "rehome_shtag_active{shtag=\"%H\"} %d\n",
				 metrics_label_print, m.shtag[i].name,
				 m.shtag[i].active);
	}

	return err;
}


/** The whole exposition, in Prometheus text format 0.0.4 */
int metrics_print(struct re_printf *pf)
{
	struct le *le;
	int err;

	err  = metrics_family_print(pf, "rehome_build_info", "gauge",
				    "Always 1; the version is a label");
	err |= re_hprintf(pf, "rehome_build_info{version=\"%s\"} 1\n",
			  REHOME_VERSION);
	err |= metrics_process_print(pf);
	err |= metrics_heap_print(pf);
	err |= requests_print(pf);
	err |= scodes_print(pf, "rehome_sip_responses_sent_total",
			    "SIP responses sent, by status code",
			    m.resp_sent);
	err |= scodes_print(pf, "rehome_sip_responses_received_total",
			    "SIP responses received, by status code",
			    m.resp_recv);
	err |= value_print(pf, "rehome_calls_total", "counter",
			   "Calls served here from their initial INVITE",
			   m.calls);
	err |= lset_print(pf, "rehome_calls_rehomed_total",
			  "Dialogs re-homed to this node, by outcome and "
			  "reason", &m.rehome, "outcome", "reason");
	err |= hset_print(pf, "rehome_call_rehome_duration_seconds",
			  "Time to re-home one dialog, from its first request "
			  "to its outcome", &m.rehome_dur, "outcome");
	err |= lset_print(pf, "rehome_policy_events_total",
			  "Policy events (reload, error, overrun...)",
			  &m.policy, "event", NULL);

	LIST_FOREACH(&m.collectors, le) {
		const struct collector *c = le->data;

		err |= c->h(pf, c->arg);
	}

	return err;
}


/**
 * The families the cluster and replication count here: Redis, messages,
 * lag, sharing tags. For the cluster's collector, so that a node without
 * a cluster prints none of them.
 */
int metrics_cluster_print(struct re_printf *pf)
{
	int err;

	err  = value_print(pf, "rehome_redis_up", "gauge",
			   "1 when the Redis connection is up", m.redis_up);
	err |= value_print(pf, "rehome_repl_messages_sent_total", "counter",
			   "Replication messages published", m.repl_sent);
	err |= value_print(pf, "rehome_repl_messages_received_total",
			   "counter", "Replication messages accepted",
			   m.repl_recv);
	err |= lset_print(pf, "rehome_repl_messages_dropped_total",
			  "Replication messages dropped, by reason",
			  &m.repl_dropped, "reason", NULL);
	err |= hset_print(pf, "rehome_repl_lag_seconds",
			  "Delay of replication messages from other nodes, "
			  "their clock to ours", &m.repl_lag, NULL);
	err |= shtags_print(pf);

	return err;
}


/** Print more families with each scrape, until metrics_close */
int metrics_collector_add(metrics_collector_h *h, void *arg)
{
	struct collector *c;

	if (!h)
		return EINVAL;

	c = mem_zalloc(sizeof(*c), collector_destructor);
	if (!c)
		return ENOMEM;

	c->h   = h;
	c->arg = arg;
	list_append(&m.collectors, &c->le, c);

	return 0;
}


/** Forget the collectors (the counters live as long as the process) */
void metrics_close(void)
{
	list_flush(&m.collectors);
}
