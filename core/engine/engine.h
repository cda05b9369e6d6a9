/**
 * @file engine.h  The running node: modules started in order, stopped in reverse
 */

struct rh_conf;

int  engine_check(const struct rh_conf *cfg, char *errbuf, size_t errsz);
int  engine_init(const struct rh_conf *cfg);
void engine_close(void);

/* engine_policy.c: the policy's view of the cluster and re-homing */
int  engine_policy_init(const struct rh_conf *cfg, const char *libdir);
void engine_policy_close(void);
