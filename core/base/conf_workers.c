/**
 * @file conf_workers.c  `workers N|auto`, and what makes each worker a node of its own
 *
 * A worker is a whole rehomed process (engine_workers.c forks them), so
 * it differs from its siblings only by what the file cannot say twice:
 * its node_id gets the suffix "-wK" (K from 1), which names it in the
 * cluster, in its logs and in its metrics, and its control server listens
 * on ctl_listen's port + K - 1, so worker 1 keeps the configured port.
 * The same adjustment is made to every config the worker reads again (a
 * reload), so that a reload sees no change there.
 *
 * `auto` is the number of online cores when the file is read.
 *
 * Not with Redis (yet): the workers would be cluster nodes that all claim
 * the same sharing tags, and a tag has one holder, so the others would
 * refuse new calls (engine_guard.c). docs/design.md ("Many cores") says
 * how the cluster takes many cores: a node per core, or per-worker tags.
 */
#include <unistd.h>
#include <re.h>
#include "conf.h"
#include "conf_int.h"


int conf_key_workers(struct conf_scan *sc, const struct conf_key *k,
		     const struct pl *argv)
{
	long cores;

	if (!pl_strcmp(&argv[0], "auto")) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		sc->cfg->workers = cores < 1 ? 1 :
			(uint32_t)min(cores, (long)CONF_MAX_WORKERS);
		return 0;
	}

	if (argv[0].l > 3 || !conf_all_digits(&argv[0]) ||
	    pl_u32(&argv[0]) < 1 || pl_u32(&argv[0]) > CONF_MAX_WORKERS)
		return conf_fail(sc, "%s: '%r' is not auto or a number "
				 "1-%u", k->name, &argv[0], CONF_MAX_WORKERS);

	sc->cfg->workers = pl_u32(&argv[0]);

	return 0;
}


/* What `workers N` cannot go with; errors name the workers line */
int conf_check_workers(struct conf_scan *sc)
{
	const struct rh_conf *cfg = sc->cfg;
	struct sa ctl = cfg->ctl_listen;
	uint32_t last = sa_port(&ctl) + cfg->workers - 1;
	char id[CONF_NAME_SZ];

	if (cfg->workers < 2)
		return 0;

	sc->line = conf_key_line(sc, "workers");
	if (cfg->has_redis)
		return conf_fail(sc, "workers: not with redis: run a node per "
				 "core instead (docs/design.md, Many cores)");
	if (last > 65535)
		return conf_fail(sc, "workers: the control ports from %J "
				 "would pass 65535", &ctl);
	if (re_snprintf(id, sizeof(id), "%s-w%u", cfg->node_id,
			cfg->workers) < 0)
		return conf_fail(sc, "workers: node_id '%s' leaves no room "
				 "for the suffix -w%u", cfg->node_id,
				 cfg->workers);

	for (uint32_t k = 2; k <= cfg->workers; k++) {
		sa_set_port(&ctl, (uint16_t)(sa_port(&cfg->ctl_listen) + k - 1));
		if (conf_find_listener(cfg, SIP_TRANSP_TCP, &ctl) >= 0)
			return conf_fail(sc, "workers: worker %u's control "
					 "port %J is a listener", k, &ctl);
	}

	return 0;
}


/**
 * Make cfg the configuration of one worker
 *
 * @param cfg     A loaded configuration
 * @param worker  1..workers; 0 leaves cfg as it is
 *
 * @return 0, EINVAL, ENAMETOOLONG or ERANGE (the control port would pass
 *         65535)
 */
int conf_worker_apply(struct rh_conf *cfg, uint32_t worker)
{
	char id[CONF_NAME_SZ];
	uint32_t port;

	if (!cfg)
		return EINVAL;
	if (!worker)
		return 0;

	port = sa_port(&cfg->ctl_listen) + worker - 1;
	if (port > 65535)
		return ERANGE;

	if (re_snprintf(id, sizeof(id), "%s-w%u", cfg->node_id, worker) < 0)
		return ENAMETOOLONG;

	str_ncpy(cfg->node_id, id, sizeof(cfg->node_id));
	sa_set_port(&cfg->ctl_listen, (uint16_t)port);
	cfg->worker = worker;

	return 0;
}
