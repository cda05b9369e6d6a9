/**
 * @file engine.h  The running node: modules started in order, stopped in reverse
 */

struct rh_conf;

struct odict;

int  engine_check(const struct rh_conf *cfg, char *errbuf, size_t errsz);
int  engine_init(const struct rh_conf *conf);
void engine_close(void);
const struct rh_conf *engine_conf(void);
int  engine_conf_apply(const struct rh_conf *cfg, char *errbuf, size_t errsz);

/* engine_reload.c: the configuration read again (SIGHUP, POST /v1/reload) */
int  engine_reload_init(void);
void engine_reload_close(void);
int  engine_reload(struct odict **odp, char *errbuf, size_t errsz);

/* engine_workers.c: `workers N`, a supervisor forking N nodes */
bool engine_workers_run(struct rh_conf *cfg);

/* engine_guard.c: a new call only in a tag held here */
struct proxy_route;
void engine_guard_route(struct proxy_route *rt, const struct rh_conf *cfg);

/* engine_policy.c: the policy's view of the cluster and re-homing */
int  engine_policy_init(const struct rh_conf *cfg, const char *libdir);
void engine_policy_close(void);

/* engine_fleet.c: the same policy on every node (drift, cluster reload) */
int  engine_fleet_init(void);
void engine_fleet_close(void);

/* engine_trim.c: free heap given back to the system every minute */
void engine_trim(uint64_t *releasedp);
void engine_trim_init(void);
void engine_trim_close(void);
