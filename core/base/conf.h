/**
 * @file conf.h  rehomed configuration file
 */

#include "log.h"

enum { CONF_MAX_LISTENERS = 16, CONF_MAX_SHTAGS = 64 };

/** One `listen PROTO:IP:PORT tag=NAME` line */
struct conf_listen {
	enum sip_transp tp;      /* SIP_TRANSP_UDP or SIP_TRANSP_TCP */
	struct sa addr;
	char tag[32];
};

/** One `shtag NAME active|backup` line */
struct conf_shtag {
	char name[64];
	bool active;             /* this node's wish at start */
};

/** The whole file, parsed and checked; defaults filled in */
struct rh_conf {
	char path[256];          /* file it came from */
	char node_id[64];        /* default: hostname */
	struct conf_listen listen[CONF_MAX_LISTENERS];
	size_t listenc;
	bool has_upstream;
	enum sip_transp upstream_tp;
	struct sa upstream;
	struct conf_shtag shtag[CONF_MAX_SHTAGS];
	size_t shtagc;
	char default_shtag[64];  /* default: "default" */
	bool has_redis;
	char redis_host[128];
	uint16_t redis_port;
	char cluster[64];        /* default: "rehome" */
	char repl_secret[128];   /* empty = replication not signed (warned) */
	char policy[256];        /* empty = no policy */
	struct sa ctl_listen;    /* default 127.0.0.1:8060 */
	char ctl_token[128];     /* empty = no auth (warned) */
	uint32_t dialog_timeout; /* seconds, default 43200 */
	uint32_t node_timeout;   /* ms, default 1500 */
	uint32_t rehome_rate;    /* dialogs per second, default 1000 */
	enum log_level log_level;/* default info */
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
