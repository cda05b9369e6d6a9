/**
 * @file conf_int.h  Inside the configuration parser: the scanner and its helpers
 *
 * conf.c scans the file and owns the table of keys; conf_cluster.c holds
 * the keys of the cluster (Redis, Sentinel, secrets) and their rules
 * across lines; conf_media.c the media relays; conf_net.c the upstream,
 * TLS and DNS keys. Not for other modules: use conf.h.
 */

#include "conf.h"

enum {
	CONF_MAX_KEYS = 48,
	CONF_IP_SZ    = 64,         /* an IP address as text */
};

/** Where the scanner is, and what it has seen so far */
struct conf_scan {
	struct rh_conf *cfg;
	const char *name;          /* file name, for messages */
	unsigned line;             /* current line, from 1 */
	unsigned key_line[CONF_MAX_KEYS];  /* first line of each key */
	unsigned listen_line[CONF_MAX_LISTENERS];
	unsigned shtag_line[CONF_MAX_SHTAGS];
	unsigned media_relay_line[CONF_MAX_MEDIA_RELAYS];
	char *errbuf;
	size_t errsz;
};

struct conf_key;
typedef int (conf_key_h)(struct conf_scan *sc, const struct conf_key *k,
			 const struct pl *argv);

/** One configuration key */
struct conf_key {
	const char *name;
	const char *usage;         /* syntax of the values, one word each */
	conf_key_h *h;
	size_t off;                /* struct rh_conf field (generic handlers) */
	size_t size;
	uint32_t min, max;         /* range of a number */
	bool repeatable;
};

/* conf.c */
int  conf_fail(struct conf_scan *sc, const char *fmt, ...);
int  conf_copy_name(struct conf_scan *sc, const char *what,
		    const struct pl *val, char *dst, size_t size);
int  conf_split_hostport(struct conf_scan *sc, const char *what,
			 const struct pl *val, struct pl *host,
			 uint16_t *portp);
unsigned conf_key_line(const struct conf_scan *sc, const char *name);
bool conf_all_digits(const struct pl *pl);
int  conf_parse_ipport(struct conf_scan *sc, const char *what,
		       const struct pl *val, struct sa *sa);
int  conf_parse_transport(struct conf_scan *sc, const char *what,
			  const struct pl *val, enum sip_transp *tpp,
			  struct sa *sa);
int  conf_find_listener(const struct rh_conf *cfg, enum sip_transp tp,
			const struct sa *addr);
int  conf_key_path(struct conf_scan *sc, const struct conf_key *k,
		   const struct pl *argv);

/* conf_workers.c */
int  conf_key_workers(struct conf_scan *sc, const struct conf_key *k,
		      const struct pl *argv);
int  conf_check_workers(struct conf_scan *sc);

/* conf_net.c */
int  conf_transp_decode(enum sip_transp *tpp, const struct pl *name);
int  conf_key_upstream(struct conf_scan *sc, const struct conf_key *k,
		       const struct pl *argv);
int  conf_key_dns_server(struct conf_scan *sc, const struct conf_key *k,
			 const struct pl *argv);
int  conf_check_net(struct conf_scan *sc);

/* conf_media.c */
int  conf_key_media_relay(struct conf_scan *sc, const struct conf_key *k,
			  const struct pl *argv);

/* conf_cluster.c */
int  conf_key_redis(struct conf_scan *sc, const struct conf_key *k,
		    const struct pl *argv);
int  conf_key_redis_sentinel(struct conf_scan *sc, const struct conf_key *k,
			     const struct pl *argv);
int  conf_key_repl_secret(struct conf_scan *sc, const struct conf_key *k,
			  const struct pl *argv);
int  conf_key_node_meta(struct conf_scan *sc, const struct conf_key *k,
			const struct pl *argv);
int  conf_check_cluster(struct conf_scan *sc);
void conf_warn_cluster(const struct conf_scan *sc);
