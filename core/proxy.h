/**
 * @file proxy.h  The SIP path: requests and responses between the legs
 */

int  proxy_init(struct sip *sip, const struct rh_conf *cfg);
void proxy_close(void);
