/**
 * @file proxy.c  (being written)
 */
#include <re.h>
#include "log.h"
#include "conf.h"
#include "proxy.h"

int proxy_init(struct sip *sip, const struct rh_conf *cfg)
{
	(void)sip; (void)cfg;
	return 0;
}

void proxy_close(void) {}
