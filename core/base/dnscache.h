/**
 * @file dnscache.h  A DNS cache in front of the SIP stack: answers kept for their TTL
 */

struct dnscache;
struct sa;

int dnscache_alloc(struct dnscache **dcp, struct sa *laddr,
		   const struct sa *srvv, uint32_t srvc);
int dnscache_servers(struct dnscache *dc, const struct sa *srvv,
		     uint32_t srvc);
