/**
 * @file conf_diff.c  What a reload may change: the running config against a new one
 *
 * A reload reads the whole file again (conf_load()) and compares it with
 * the running configuration key by key. Some keys can change on a live
 * node: they are read where they are used (timers, rates, the upstream),
 * or their module takes them again (log, token, policy, TLS certificates,
 * DNS servers). The others are
 * bound at start: sockets are open (listen, ctl_listen), the cluster knows
 * the node by its name and keys (node_id, cluster, repl_secret,
 * node_timeout, which every node judges the others by), the worker
 * processes are forked (workers), Redis is
 * connected (redis, redis_sentinel and their names), the sharing tags
 * and media relays are set up once. Those are reported and keep their
 * running value until a restart.
 *
 * Each rule is the span of struct rh_conf that holds a key, compared byte
 * for byte: conf_load() starts every config from a zeroed struct, so equal
 * values compare equal, padding included. The config to run is the
 * running one with only the live spans copied from the new file, so a
 * field that no rule covers (a key added without one) never changes live:
 * the bytes between the rules are compared too, and a change there is
 * reported as kept, under the key CONF_DIFF_OTHER.
 *
 * The rules follow the order of the struct's fields.
 */
#include <stddef.h>
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"

/** One key: where it lives in struct rh_conf, and whether it is live */
struct rule {
	const char *key;
	size_t off;
	size_t size;
	bool live;
};

/* the fields from `first` to `last`, both included */
#define SPAN(k, first, last, l) { \
	.key = k, .off = offsetof(struct rh_conf, first), \
	.size = offsetof(struct rh_conf, last) + \
		sizeof(((struct rh_conf *)0)->last) - \
		offsetof(struct rh_conf, first), \
	.live = l }
#define ONE(k, l) SPAN(#k, k, k, l)

static const struct rule rulev[] = {
	ONE(node_id, false),
	SPAN("node_meta", node_meta, node_metac, false),
	SPAN("listen", listen, listenc, false),
	ONE(tls_cert, true),
	ONE(tls_ca, true),
	SPAN("upstream", has_upstream, upstream_uri, true),
	SPAN("dns_server", dns_server, dns_serverc, true),
	SPAN("pass_header", pass_header, pass_headerc, true),
	SPAN("shtag", shtag, shtagc, false),
	ONE(default_shtag, false),
	ONE(udp_rcvbuf, false),  /* in the order of struct rh_conf */
	SPAN("workers", workers, worker, false),
	SPAN("redis", has_redis, redis_port, false),
	SPAN("redis_sentinel", redis_sentinel, redis_sentinelc, false),
	ONE(redis_master, false),
	ONE(redis_user, false),
	ONE(redis_password, false),
	SPAN("media_relay", media_relay, media_relayc, false),
	SPAN("cluster", cluster, keyns, false),  /* keyns: made of it */
	SPAN("repl_secret", repl_secret, repl_secret2, false),  /* 1 or 2 */
	ONE(policy, true),
	ONE(ctl_listen, false),
	ONE(ctl_token, true),
	ONE(dialog_timeout, true),
	ONE(ring_timeout, true),
	ONE(node_timeout, false),
	ONE(rehome_rate, true),
	ONE(log_level, true),
	ONE(log_target, true),
};


static bool differ(const struct rh_conf *a, const struct rh_conf *b,
		   size_t off, size_t size)
{
	return 0 != memcmp((const char *)a + off, (const char *)b + off, size);
}


/**
 * Compare the running config with a newly loaded one, and make the config
 * to run from now on.
 *
 * @param run   Out: `cur` with the keys of `file` that may change live
 * @param cur   The running config
 * @param file  The config just loaded
 * @param h     Called for each key that differs, in the file's key order
 * @param arg   Handler argument
 *
 * @return 0, or EINVAL
 */
int conf_diff(struct rh_conf *run, const struct rh_conf *cur,
	      const struct rh_conf *file, conf_diff_h *h, void *arg)
{
	size_t gap = offsetof(struct rh_conf, path) + sizeof(cur->path);
	bool other = false;

	if (!run || !cur || !file || !h)
		return EINVAL;

	*run = *cur;

	for (size_t i = 0; i < ARRAY_SIZE(rulev); i++) {
		const struct rule *r = &rulev[i];

		other |= differ(cur, file, gap, r->off - gap);
		gap = r->off + r->size;

		if (!differ(cur, file, r->off, r->size))
			continue;

		if (r->live)
			memcpy((char *)run + r->off, (const char *)file + r->off,
			       r->size);
		h(r->key, r->live, arg);
	}

	other |= differ(cur, file, gap, sizeof(*cur) - gap);
	if (other)
		h(CONF_DIFF_OTHER, false, arg);

	return 0;
}

