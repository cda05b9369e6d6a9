/**
 * @file conf.c  (being written)
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"

void conf_defaults(struct rh_conf *cfg) { memset(cfg, 0, sizeof(*cfg)); }
int conf_load(struct rh_conf *cfg, const char *path, char *errbuf, size_t errsz)
{
	(void)path; (void)errbuf; (void)errsz;
	conf_defaults(cfg);
	return 0;
}
