/**
 * @file conf_cluster.c  The configuration file: the cluster's keys
 *
 * Redis is reached one of three ways: `redis HOST:PORT`, through Redis
 * Sentinel, `redis_sentinel HOST:PORT[,HOST:PORT...]` listing the
 * sentinels and `redis_master NAME` naming the master they watch, or
 * `redis_cluster HOST:PORT` naming a node of a Redis Cluster; one
 * excludes the others. On a Redis Cluster every key is prefixed
 * `{<cluster>}:` instead of `<cluster>:` (cfg->keyns, the one place the
 * prefix is built): the hash tag puts them in one slot, so every script
 * stays atomic on one master. `redis_password` (with `redis_user` for an ACL
 * user) authenticates every connection. `repl_secret` may be given twice
 * while the cluster changes its key: the first signs, both verify, so the
 * nodes can be moved to a new key one at a time without a moment where
 * two of them cannot read each other.
 *
 * `node_meta KEY VALUE` describes this node to the policies of every
 * node (its site, rack, ...): its heartbeats carry it.
 *
 * The rules across these keys are checked once the whole file is read
 * and reported on the line at fault, like every other rule of conf.c.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "conf_int.h"

enum {
	WHAT_SZ = 32,   /* "redis_sentinel host" */
};


int conf_key_node_meta(struct conf_scan *sc, const struct conf_key *k,
		       const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	struct conf_node_meta *m;
	int err;

	if (cfg->node_metac >= CONF_MAX_NODE_META)
		return conf_fail(sc, "%s: too many (at most %u)", k->name,
				 CONF_MAX_NODE_META);

	m = &cfg->node_meta[cfg->node_metac];
	err  = conf_copy_name(sc, "node_meta key", &argv[0], m->key,
			      sizeof(m->key));
	if (!err)
		err = conf_copy_name(sc, "node_meta value", &argv[1],
				     m->value, sizeof(m->value));
	if (err)
		return err;

	for (size_t i = 0; i < cfg->node_metac; i++) {
		if (!strcmp(cfg->node_meta[i].key, m->key))
			return conf_fail(sc, "%s: '%s' is already given",
					 k->name, m->key);
	}

	++cfg->node_metac;
	return 0;
}


/* hiredis resolves names itself, so HOST is an IP address or a host name */
static int hostport_parse(struct conf_scan *sc, const char *what,
			  const struct pl *val, struct conf_hostport *hp)
{
	char what_host[WHAT_SZ];
	struct pl host;
	struct sa sa;
	int err;

	err = conf_split_hostport(sc, what, val, &host, &hp->port);
	if (err)
		return err;

	if (host.l >= sizeof(hp->host))
		return conf_fail(sc, "%s: the host name is too long", what);

	(void)pl_strcpy(&host, hp->host, sizeof(hp->host));
	if (!sa_set_str(&sa, hp->host, hp->port))
		return 0;

	(void)re_snprintf(what_host, sizeof(what_host), "%s host", what);
	return conf_copy_name(sc, what_host, &host, hp->host,
			      sizeof(hp->host));
}


int conf_key_redis(struct conf_scan *sc, const struct conf_key *k,
		   const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	struct conf_hostport hp;
	int err;

	err = hostport_parse(sc, k->name, &argv[0], &hp);
	if (err)
		return err;

	str_ncpy(cfg->redis_host, hp.host, sizeof(cfg->redis_host));
	cfg->redis_port = hp.port;
	cfg->redis_cluster = !str_cmp(k->name, "redis_cluster");
	cfg->has_redis = true;

	return 0;
}


static bool hostport_eq(const struct conf_hostport *a,
			const struct conf_hostport *b)
{
	return a->port == b->port && 0 == str_casecmp(a->host, b->host);
}


/* A comma-separated list, on one line, so the order is the file's */
int conf_key_redis_sentinel(struct conf_scan *sc, const struct conf_key *k,
			    const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	struct pl rest = argv[0];

	do {
		const char *comma = pl_strchr(&rest, ',');
		struct conf_hostport *hp;
		struct pl item;
		int err;

		item.p = rest.p;
		item.l = comma ? (size_t)(comma - rest.p) : rest.l;
		pl_advance(&rest, comma ? item.l + 1 : item.l);

		if (!pl_isset(&item) || (comma && !rest.l))
			return conf_fail(sc, "%s: an empty address in '%r'",
					 k->name, &argv[0]);

		if (cfg->redis_sentinelc >= CONF_MAX_SENTINELS)
			return conf_fail(sc, "%s: too many sentinels (at most "
					 "%u)", k->name, CONF_MAX_SENTINELS);

		hp = &cfg->redis_sentinel[cfg->redis_sentinelc];
		err = hostport_parse(sc, k->name, &item, hp);
		if (err)
			return err;

		for (size_t i = 0; i < cfg->redis_sentinelc; i++) {
			if (hostport_eq(&cfg->redis_sentinel[i], hp))
				return conf_fail(sc, "%s: '%r' is given twice",
						 k->name, &item);
		}

		++cfg->redis_sentinelc;
	} while (rest.l);

	cfg->has_redis = true;

	return 0;
}


/* Twice at most: the first signs, both verify */
int conf_key_repl_secret(struct conf_scan *sc, const struct conf_key *k,
			 const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	bool second = str_isset(cfg->repl_secret);
	char *dst = second ? cfg->repl_secret2 : cfg->repl_secret;

	if (str_isset(cfg->repl_secret2))
		return conf_fail(sc, "%s: given a third time (at most twice, "
				 "while the key changes: the first signs, both "
				 "verify)", k->name);

	if (argv[0].l >= sizeof(cfg->repl_secret))
		return conf_fail(sc, "%s: too long (at most %zu characters)",
				 k->name, sizeof(cfg->repl_secret) - 1);

	(void)pl_strcpy(&argv[0], dst, sizeof(cfg->repl_secret));
	if (second && !strcmp(cfg->repl_secret, cfg->repl_secret2))
		return conf_fail(sc, "%s: the same secret as on line %u",
				 k->name, conf_key_line(sc, k->name));

	return 0;
}


/** The rules across the cluster's keys, once the whole file is read */
int conf_check_cluster(struct conf_scan *sc)
{
	unsigned redis    = conf_key_line(sc, "redis");
	unsigned rcluster = conf_key_line(sc, "redis_cluster");
	unsigned sentinel = conf_key_line(sc, "redis_sentinel");
	unsigned master   = conf_key_line(sc, "redis_master");
	unsigned user     = conf_key_line(sc, "redis_user");

	if (redis && sentinel) {
		sc->line = max(redis, sentinel);
		return conf_fail(sc, "%s: give either redis or redis_sentinel, "
				 "not both (the other is on line %u)",
				 redis > sentinel ? "redis" : "redis_sentinel",
				 min(redis, sentinel));
	}

	if (rcluster && (redis || sentinel)) {
		sc->line = max(rcluster, redis + sentinel);
		return conf_fail(sc, "redis_cluster: give one of redis, "
				 "redis_sentinel and redis_cluster");
	}

	if (sentinel && !master) {
		sc->line = sentinel;
		return conf_fail(sc, "redis_sentinel: needs redis_master NAME, "
				 "the name Sentinel knows the master by");
	}

	if (master && !sentinel) {
		sc->line = master;
		return conf_fail(sc, "redis_master: only with redis_sentinel");
	}

	if (user && !conf_key_line(sc, "redis_password")) {
		sc->line = user;
		return conf_fail(sc, "redis_user: needs redis_password");
	}

	re_snprintf(sc->cfg->keyns, sizeof(sc->cfg->keyns),
		    sc->cfg->redis_cluster ? "{%s}" : "%s", sc->cfg->cluster);
	return 0;
}


/** What loads but is likely a mistake */
void conf_warn_cluster(const struct conf_scan *sc)
{
	const struct rh_conf *cfg = sc->cfg;
	const char *redis = cfg->redis_sentinelc ? "redis_sentinel" : "redis";

	if (cfg->has_redis && !str_isset(cfg->repl_secret))
		log_warn("conf", "%s:%u: %s without repl_secret: "
			 "replication messages are not signed", sc->name,
			 conf_key_line(sc, redis), redis);

	if (!cfg->has_redis && str_isset(cfg->repl_secret))
		log_warn("conf", "%s:%u: repl_secret without redis: "
			 "nothing is replicated", sc->name,
			 conf_key_line(sc, "repl_secret"));

	if (!cfg->has_redis && str_isset(cfg->redis_password))
		log_warn("conf", "%s:%u: redis_password without redis: "
			 "not used", sc->name,
			 conf_key_line(sc, "redis_password"));
}
