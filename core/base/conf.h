/**
 * @file conf.h  rehomed configuration file
 */

#ifndef REHOME_CONF_H
#define REHOME_CONF_H

#include "log.h"

enum { CONF_MAX_LISTENERS = 16, CONF_MAX_SHTAGS = 64, CONF_MAX_DNS = 4 };

/** Sizes of the text values, NUL included */
enum {
	CONF_TAG_SZ    = 32,   /* listener tag */
	CONF_SHTAG_SZ  = 64,   /* sharing tag name */
	CONF_NAME_SZ   = 64,   /* node id, cluster name */
	CONF_HOST_SZ   = 128,
	CONF_SECRET_SZ = 128,  /* repl_secret, ctl_token */
	CONF_PATH_SZ   = 256,
	CONF_URI_SZ    = 256,  /* upstream URI */
};

/** One `listen PROTO:IP:PORT tag=NAME` line */
struct conf_listen {
	enum sip_transp tp;      /* UDP, TCP, TLS, WS or WSS */
	struct sa addr;
	char tag[CONF_TAG_SZ];
};

/** One `shtag NAME active|backup` line */
struct conf_shtag {
	char name[CONF_SHTAG_SZ];
	bool active;             /* this node's wish at start */
};

enum { CONF_MAX_MEDIA_RELAYS = 16, CONF_MAX_RELAY_WEIGHT = 1000 };

enum { CONF_MAX_SENTINELS = 8 };
enum { CONF_MAX_PASS_HEADERS = 32, CONF_HDR_SZ = 64 };

enum { CONF_MAX_NODE_META = 8 };

/** One `node_meta KEY VALUE` line: what policies know of this node */
struct conf_node_meta {
	char key[CONF_NAME_SZ];
	char value[CONF_NAME_SZ];
};

/** One HOST:PORT of `redis_sentinel` (hiredis resolves a host name) */
struct conf_hostport {
	char host[CONF_HOST_SZ];
	uint16_t port;
};

/** One `media_relay udp:IP:PORT [weight=N]` line */
struct conf_media_relay {
	struct sa addr;          /* rtpengine's ng address */
	uint32_t weight;         /* share of new calls, default 1 */
};

/** The whole file, parsed and checked; defaults filled in */
struct rh_conf {
	char path[CONF_PATH_SZ]; /* file it came from */
	char node_id[CONF_NAME_SZ]; /* default: hostname */
	struct conf_node_meta node_meta[CONF_MAX_NODE_META];
	size_t node_metac;
	struct conf_listen listen[CONF_MAX_LISTENERS];
	size_t listenc;
	char tls_cert[CONF_PATH_SZ]; /* PEM chain + key; empty: no TLS */
	char tls_ca[CONF_PATH_SZ];   /* empty: TLS peers not verified */
	bool has_upstream;
	enum sip_transp upstream_tp;
	struct sa upstream;      /* unset when the URI names a host */
	char upstream_uri[CONF_URI_SZ]; /* sip:HOST[:PORT][;transport=T] */
	struct sa dns_server[CONF_MAX_DNS];
	size_t dns_serverc;      /* 0: the servers of /etc/resolv.conf */
	char pass_header[CONF_MAX_PASS_HEADERS][CONF_HDR_SZ];
	size_t pass_headerc;     /* 0: only the built-in end-to-end headers */
	struct conf_shtag shtag[CONF_MAX_SHTAGS];
	size_t shtagc;
	char default_shtag[CONF_SHTAG_SZ]; /* default: "default" */
	uint32_t udp_rcvbuf;     /* bytes, SO_RCVBUF of UDP listeners; 0 kernel's */
	uint32_t workers;        /* processes sharing the listeners, default 1 */
	uint32_t worker;         /* which one this is, 1..workers; 0: no workers */
	bool has_redis;          /* `redis` or `redis_sentinel`: a cluster */
	char redis_host[CONF_HOST_SZ]; /* `redis` or `redis_cluster`;
					  empty with Sentinel */
	bool redis_cluster;      /* `redis_cluster`: a Redis Cluster node */
	uint16_t redis_port;
	struct conf_hostport redis_sentinel[CONF_MAX_SENTINELS];
	size_t redis_sentinelc;  /* > 0: the master comes from Sentinel */
	char redis_master[CONF_NAME_SZ];    /* Sentinel's name of it */
	char redis_user[CONF_NAME_SZ];      /* empty: AUTH with password only */
	char redis_password[CONF_SECRET_SZ]; /* empty: no AUTH */
	struct conf_media_relay media_relay[CONF_MAX_MEDIA_RELAYS];
	size_t media_relayc;     /* 0: signalling only */
	char cluster[CONF_NAME_SZ]; /* default: "rehome" */
	char keyns[CONF_NAME_SZ + 2]; /* key prefix: cluster, or "{cluster}"
					 on a Redis Cluster (one slot) */
	char repl_secret[CONF_SECRET_SZ]; /* empty = not signed (warned) */
	char repl_secret2[CONF_SECRET_SZ]; /* a second line: verifies only */
	char policy[CONF_PATH_SZ]; /* empty = no policy */
	struct sa ctl_listen;    /* default 127.0.0.1:8060 */
	char ctl_token[CONF_SECRET_SZ]; /* empty = no auth (warned) */
	uint32_t dialog_timeout; /* seconds, default 43200 */
	uint32_t ring_timeout;   /* seconds, Timer C, default 180 */
	uint32_t node_timeout;   /* ms, default 1500 */
	uint32_t rehome_rate;    /* dialogs per second, default 1000 */
	enum log_level log_level;/* default info */
	enum log_target log_target; /* default stderr */
};

/**
 * Parse and check a config file. On error returns EINVAL (or errno of the
 * open), and writes one line "FILE:LINE: problem" into errbuf.
 */
int conf_load(struct rh_conf *cfg, const char *path, char *errbuf,
	      size_t errsz);
/** Same, from a buffer; `name` is used in error messages */
int conf_load_buf(struct rh_conf *cfg, const char *name, const char *buf,
		  size_t len, char *errbuf, size_t errsz);
void conf_defaults(struct rh_conf *cfg);

/* conf_workers.c: one process of `workers N` */
enum { CONF_MAX_WORKERS = 256 };
int conf_worker_apply(struct rh_conf *cfg, uint32_t worker);

/* conf_diff.c: what a reload may change */
#define CONF_DIFF_OTHER "(other)"  /* a changed field no rule covers */
/** A key whose value differs; live: it changes now, else at a restart */
typedef void (conf_diff_h)(const char *key, bool live, void *arg);
int conf_diff(struct rh_conf *run, const struct rh_conf *cur,
	      const struct rh_conf *file, conf_diff_h *h, void *arg);

#endif
