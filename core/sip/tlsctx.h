/**
 * @file tlsctx.h  The node's TLS context: certificate, CA, peer verification
 */

struct rh_conf;
struct tls;

int  tlsctx_init(const struct rh_conf *cfg);
int  tlsctx_check(const struct rh_conf *cfg, char *errbuf, size_t errsz);
int  tlsctx_apply(const struct rh_conf *cfg, char *errbuf, size_t errsz);
void tlsctx_close(void);
struct tls *tlsctx_get(void);
