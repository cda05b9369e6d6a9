/**
 * @file conf.c  The configuration file: scanned line by line, checked whole
 *
 * The file is libre's conf format (`key value`, `#` comments), but it is
 * not read with libre's conf_get_*(): those search the whole buffer with a
 * regex, so they know no line numbers, silently take the first of two
 * equal keys and never see a misspelt one. Those are exactly the mistakes
 * an operator needs reported, as one line "FILE:LINE: problem". So the
 * file is scanned here, one line at a time, each line split into words
 * and dispatched through a table of keys; libre does the rest (pl, sa,
 * printing).
 *
 * The key table carries each key's syntax ("PROTO:IP:PORT tag=NAME"): its
 * word count is how many values the key takes (a word in brackets may be
 * left out), and it is quoted in the messages. Simple keys (names, secrets, numbers) share generic handlers
 * that write the struct rh_conf field the table points at; the others have
 * their own. Rules that span several keys (at least one listener, the
 * default sharing tag among the declared ones, an upstream that is not one
 * of our own listeners) run once the whole file is read. The cluster's
 * keys (Redis, Sentinel, secrets) and their rules are in conf_cluster.c.
 *
 * A `#` starts a comment at the start of a line or after whitespace; one
 * inside a word (a secret such as "s3#cret") is part of the value. Secrets
 * are never echoed in messages.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "conf_int.h"

enum {
	CONF_MAX_SIZE  = 1 << 20,  /* a bigger config file is a mistake */
	CONF_MAX_WORDS = 4,        /* key + values kept per line */
	CONF_LEVEL_SZ  = 16,        /* a log level name */
	CONF_CHUNK_SZ  = 4096,      /* read from the file at a time */
};


int conf_fail(struct conf_scan *sc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)re_snprintf(sc->errbuf, sc->errsz, "%s:%u: %v",
			  sc->name, sc->line, fmt, &ap);
	va_end(ap);

	return EINVAL;
}


static void *field(const struct conf_scan *sc, const struct conf_key *k)
{
	return (char *)sc->cfg + k->off;
}


static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}


static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}


bool conf_all_digits(const struct pl *pl)
{
	for (size_t i = 0; i < pl->l; i++) {
		if (!isdigit((unsigned char)pl->p[i]))
			return false;
	}

	return pl->l > 0;
}


/* Split on whitespace; returns the number of words, keeps up to max */
static unsigned split_words(const struct pl *s, struct pl *wv, unsigned max)
{
	unsigned n = 0;
	size_t i = 0;

	while (i < s->l) {
		size_t start;

		while (i < s->l && is_space(s->p[i]))
			++i;
		if (i == s->l)
			break;

		start = i;
		while (i < s->l && !is_space(s->p[i]))
			++i;

		if (n < max) {
			wv[n].p = s->p + start;
			wv[n].l = i - start;
		}
		++n;
	}

	return n;
}


/* Names end up in Redis keys, Contacts and metrics: keep them plain */
int conf_copy_name(struct conf_scan *sc, const char *what,
		   const struct pl *val, char *dst, size_t size)
{
	if (!pl_isset(val))
		return conf_fail(sc, "%s: the name is empty", what);

	for (size_t i = 0; i < val->l; i++) {
		if (!is_name_char(val->p[i]))
			return conf_fail(sc, "%s: '%r' may only contain "
					 "letters, digits, '-', '_' and '.'",
					 what, val);
	}

	if (val->l >= size)
		return conf_fail(sc, "%s: '%r' is too long (at most %zu "
				 "characters)", what, val, size - 1);

	return pl_strcpy(val, dst, size);
}


/* HOST:PORT, with an IPv6 HOST in brackets; the port is 1-65535 */
int conf_split_hostport(struct conf_scan *sc, const char *what,
			const struct pl *val, struct pl *host,
			uint16_t *portp)
{
	const char *colon = pl_strrchr(val, ':');
	struct pl port;

	if (!colon)
		return conf_fail(sc, "%s: '%r' has no port", what, val);

	host->p = val->p;
	host->l = colon - val->p;
	port.p = colon + 1;
	port.l = val->p + val->l - port.p;

	if (host->l >= 2 && host->p[0] == '[' && host->p[host->l - 1] == ']') {
		++host->p;
		host->l -= 2;
	}
	else if (pl_strchr(host, ':')) {
		return conf_fail(sc, "%s: write an IPv6 address in brackets, "
				 "as in [::1]:5060", what);
	}

	if (!pl_isset(host))
		return conf_fail(sc, "%s: '%r' has no address", what, val);

	if (port.l > 5 || !conf_all_digits(&port) || pl_u32(&port) < 1 ||
	    pl_u32(&port) > 65535)
		return conf_fail(sc, "%s: bad port '%r' (1-65535)", what,
				 &port);

	*portp = (uint16_t)pl_u32(&port);

	return 0;
}


int conf_parse_ipport(struct conf_scan *sc, const char *what,
		      const struct pl *val, struct sa *sa)
{
	char ip[CONF_IP_SZ];
	struct pl host;
	uint16_t port;
	int err;

	err = conf_split_hostport(sc, what, val, &host, &port);
	if (err)
		return err;

	if (host.l >= sizeof(ip) || pl_strcpy(&host, ip, sizeof(ip)) ||
	    sa_set_str(sa, ip, port))
		return conf_fail(sc, "%s: '%r' is not an IP address", what,
				 &host);

	return 0;
}


/* PROTO:IP:PORT of listen and upstream: a real address, never a wildcard,
 * since it is written into Via and Contact */
int conf_parse_transport(struct conf_scan *sc, const char *what,
			 const struct pl *val, enum sip_transp *tpp,
			 struct sa *sa)
{
	const char *colon = pl_strchr(val, ':');
	struct pl proto, addr;
	int err;

	if (!colon)
		return conf_fail(sc, "%s: '%r' is not PROTO:IP:PORT", what,
				 val);

	proto.p = val->p;
	proto.l = colon - val->p;
	addr.p = colon + 1;
	addr.l = val->p + val->l - addr.p;

	err = conf_transp_decode(tpp, &proto);
	if (err)
		return conf_fail(sc, "%s: unknown transport '%r' (udp, tcp, "
				 "tls, ws or wss)", what, &proto);

	err = conf_parse_ipport(sc, what, &addr, sa);
	if (err)
		return err;

	if (sa_is_any(sa))
		return conf_fail(sc, "%s: %j is a wildcard; name the address, "
				 "it goes into Via and Contact", what, sa);

	return 0;
}


int conf_find_listener(const struct rh_conf *cfg, enum sip_transp tp,
			 const struct sa *addr)
{
	for (size_t i = 0; i < cfg->listenc; i++) {
		if (cfg->listen[i].tp == tp &&
		    sa_cmp(&cfg->listen[i].addr, addr, SA_ALL))
			return (int)i;
	}

	return -1;
}


static int find_shtag(const struct rh_conf *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->shtagc; i++) {
		if (!strcmp(cfg->shtag[i].name, name))
			return (int)i;
	}

	return -1;
}


static int key_name(struct conf_scan *sc, const struct conf_key *k,
		    const struct pl *argv)
{
	return conf_copy_name(sc, k->name, &argv[0], field(sc, k), k->size);
}


static int key_secret(struct conf_scan *sc, const struct conf_key *k,
		      const struct pl *argv)
{
	if (argv[0].l >= k->size)
		return conf_fail(sc, "%s: too long (at most %zu characters)",
				 k->name, k->size - 1);

	return pl_strcpy(&argv[0], field(sc, k), k->size);
}


static int key_number(struct conf_scan *sc, const struct conf_key *k,
		      const struct pl *argv)
{
	uint64_t n;

	if (argv[0].l > 10 || !conf_all_digits(&argv[0]))
		return conf_fail(sc, "%s: '%r' is not a whole number",
				 k->name, &argv[0]);

	n = pl_u64(&argv[0]);
	if (n < k->min || n > k->max)
		return conf_fail(sc, "%s: %r is out of range (%u-%u)",
				 k->name, &argv[0], k->min, k->max);

	*(uint32_t *)field(sc, k) = (uint32_t)n;

	return 0;
}


/* a header to let cross between the legs verbatim (core/sip/sipmsg.c) */
static int key_pass_header(struct conf_scan *sc, const struct conf_key *k,
			   const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;

	if (cfg->pass_headerc >= CONF_MAX_PASS_HEADERS)
		return conf_fail(sc, "%s: too many (at most %u)", k->name,
				 CONF_MAX_PASS_HEADERS);

	if (conf_copy_name(sc, k->name, &argv[0],
			   cfg->pass_header[cfg->pass_headerc], CONF_HDR_SZ))
		return EINVAL;

	++cfg->pass_headerc;
	return 0;
}


static int key_listen(struct conf_scan *sc, const struct conf_key *k,
		      const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	struct conf_listen *cl;
	struct pl tag = argv[1];
	int err, dup;

	if (cfg->listenc >= CONF_MAX_LISTENERS)
		return conf_fail(sc, "listen: too many listeners (at most %u)",
				 CONF_MAX_LISTENERS);

	cl = &cfg->listen[cfg->listenc];
	err = conf_parse_transport(sc, k->name, &argv[0], &cl->tp,
				   &cl->addr);
	if (err)
		return err;

	if (tag.l < 4 || memcmp(tag.p, "tag=", 4))
		return conf_fail(sc, "listen: expected tag=NAME, not '%r'",
				 &tag);

	pl_advance(&tag, 4);
	err = conf_copy_name(sc, "listen tag", &tag, cl->tag, sizeof(cl->tag));
	if (err)
		return err;

	dup = conf_find_listener(cfg, cl->tp, &cl->addr);
	if (dup >= 0)
		return conf_fail(sc, "listen: %r is already configured on "
				 "line %u", &argv[0], sc->listen_line[dup]);

	sc->listen_line[cfg->listenc++] = sc->line;

	return 0;
}


static int key_shtag(struct conf_scan *sc, const struct conf_key *k,
		     const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	struct conf_shtag *sh;
	int err, dup;

	if (cfg->shtagc >= CONF_MAX_SHTAGS)
		return conf_fail(sc, "shtag: too many sharing tags (at most "
				 "%u)", CONF_MAX_SHTAGS);

	sh = &cfg->shtag[cfg->shtagc];
	err = conf_copy_name(sc, k->name, &argv[0], sh->name, sizeof(sh->name));
	if (err)
		return err;

	if (!pl_strcmp(&argv[1], "active"))
		sh->active = true;
	else if (!pl_strcmp(&argv[1], "backup"))
		sh->active = false;
	else
		return conf_fail(sc, "shtag: the state must be active or "
				 "backup, not '%r'", &argv[1]);

	dup = find_shtag(cfg, sh->name);
	if (dup >= 0)
		return conf_fail(sc, "shtag: '%s' is already declared on "
				 "line %u", sh->name, sc->shtag_line[dup]);

	sc->shtag_line[cfg->shtagc++] = sc->line;

	return 0;
}


/* A file (policy, certificate) relative to the config file's directory, so
 * that the daemon finds the same file whatever its working directory; resolving it also proves the
 * file is there when the configuration is checked with -t. */
int conf_key_path(struct conf_scan *sc, const struct conf_key *k,
		  const struct pl *argv)
{
	char path[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(sc->name, '/');
	struct pl dir = PL_INIT;

	if (argv[0].p[0] != '/' && slash) {
		dir.p = sc->name;
		dir.l = slash - sc->name + 1;
	}

	if (re_snprintf(path, sizeof(path), "%r%r", &dir, &argv[0]) < 0)
		return conf_fail(sc, "%s: the path is too long", k->name);

	if (!realpath(path, real))
		return conf_fail(sc, "%s: %s: %m", k->name, path, errno);

	if (strlen(real) >= k->size)
		return conf_fail(sc, "%s: %s: the path is too long (at "
				 "most %zu characters)", k->name, real,
				 k->size - 1);

	str_ncpy(field(sc, k), real, k->size);

	return 0;
}


static int key_ctl_listen(struct conf_scan *sc, const struct conf_key *k,
			  const struct pl *argv)
{
	return conf_parse_ipport(sc, k->name, &argv[0], &sc->cfg->ctl_listen);
}


/* log_level and log_target: one word of the set their usage lists */
static int key_log(struct conf_scan *sc, const struct conf_key *k,
		   const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	char name[CONF_LEVEL_SZ];
	int err = EINVAL;

	if (argv[0].l < sizeof(name) &&
	    !pl_strcpy(&argv[0], name, sizeof(name)))
		err = field(sc, k) == (void *)&cfg->log_level ?
			log_level_decode(&cfg->log_level, name) :
			log_target_decode(&cfg->log_target, name);
	if (err)
		return conf_fail(sc, "%s: '%r' is not one of %s",
				 k->name, &argv[0], k->usage);

	return 0;
}


#define FIELD(f) .off = offsetof(struct rh_conf, f), \
		 .size = sizeof(((struct rh_conf *)0)->f)

static const struct conf_key keyv[] = {
	{.name = "node_id", .usage = "NAME", .h = key_name, FIELD(node_id)},
	{.name = "node_meta", .usage = "KEY VALUE", .h = conf_key_node_meta,
	 .repeatable = true},
	{.name = "listen", .usage = "PROTO:IP:PORT tag=NAME",
	 .h = key_listen, .repeatable = true},
	{.name = "tls_cert", .usage = "FILE", .h = conf_key_path,
	 FIELD(tls_cert)},
	{.name = "tls_ca", .usage = "FILE", .h = conf_key_path, FIELD(tls_ca)},
	{.name = "upstream", .usage = "URI", .h = conf_key_upstream},
	{.name = "dns_server", .usage = "IP:PORT", .h = conf_key_dns_server,
	 .repeatable = true},
	{.name = "pass_header", .usage = "NAME", .h = key_pass_header,
	 .repeatable = true},
	{.name = "udp_rcvbuf", .usage = "BYTES", .h = key_number,
	 FIELD(udp_rcvbuf), .min = 0, .max = 1 << 30},
	{.name = "workers", .usage = "N|auto", .h = conf_key_workers},
	{.name = "shtag", .usage = "NAME active|backup", .h = key_shtag,
	 .repeatable = true},
	{.name = "default_shtag", .usage = "NAME", .h = key_name,
	 FIELD(default_shtag)},
	{.name = "redis", .usage = "HOST:PORT", .h = conf_key_redis},
	{.name = "redis_cluster", .usage = "HOST:PORT", .h = conf_key_redis},
	{.name = "redis_sentinel", .usage = "HOST:PORT[,HOST:PORT...]",
	 .h = conf_key_redis_sentinel},
	{.name = "redis_master", .usage = "NAME", .h = key_name,
	 FIELD(redis_master)},
	{.name = "redis_user", .usage = "NAME", .h = key_name,
	 FIELD(redis_user)},
	{.name = "redis_password", .usage = "SECRET", .h = key_secret,
	 FIELD(redis_password)},
	{.name = "media_relay", .usage = "udp:IP:PORT [weight=N]",
	 .h = conf_key_media_relay, .repeatable = true},
	{.name = "cluster", .usage = "NAME", .h = key_name, FIELD(cluster)},
	{.name = "repl_secret", .usage = "SECRET", .h = conf_key_repl_secret,
	 .repeatable = true},
	{.name = "policy", .usage = "PATH", .h = conf_key_path, FIELD(policy)},
	{.name = "ctl_listen", .usage = "IP:PORT", .h = key_ctl_listen},
	{.name = "ctl_token", .usage = "TOKEN", .h = key_secret,
	 FIELD(ctl_token)},
	{.name = "dialog_timeout", .usage = "SECONDS", .h = key_number,
	 FIELD(dialog_timeout), .min = 1, .max = 30 * 86400},
	{.name = "ring_timeout", .usage = "SECONDS", .h = key_number,
	 FIELD(ring_timeout), .min = 1, .max = 86400},
	{.name = "node_timeout", .usage = "MS", .h = key_number,
	 FIELD(node_timeout), .min = 100, .max = 600000},
	{.name = "rehome_rate", .usage = "N", .h = key_number,
	 FIELD(rehome_rate), .min = 1, .max = 100000},
	{.name = "log_level", .usage = "debug|info|warn|error",
	 .h = key_log, FIELD(log_level)},
	{.name = "log_target", .usage = "stderr|syslog", .h = key_log,
	 FIELD(log_target)},
};

_Static_assert(ARRAY_SIZE(keyv) <= CONF_MAX_KEYS, "raise CONF_MAX_KEYS");


static const struct conf_key *key_find(const struct pl *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keyv); i++) {
		if (!pl_strcmp(name, keyv[i].name))
			return &keyv[i];
	}

	return NULL;
}


unsigned conf_key_line(const struct conf_scan *sc, const char *name)
{
	struct pl pl;

	pl_set_str(&pl, name);

	return sc->key_line[key_find(&pl) - keyv];
}


static void strip_comment(struct pl *line)
{
	for (size_t i = 0; i < line->l; i++) {
		if (line->p[i] == '#' && (i == 0 || is_space(line->p[i - 1]))) {
			line->l = i;
			return;
		}
	}
}


static int check_chars(struct conf_scan *sc, const struct pl *line)
{
	for (size_t i = 0; i < line->l; i++) {
		unsigned char c = line->p[i];

		if ((c < 0x20 && !is_space(c)) || c == 0x7f)
			return conf_fail(sc, "control character 0x%02x in "
					 "column %zu", c, i + 1);
	}

	return 0;
}


static int check_arity(struct conf_scan *sc, const struct conf_key *k,
		       const struct pl *wv, unsigned n)
{
	struct pl uv[CONF_MAX_WORDS];
	struct pl usage;
	unsigned want, need;

	pl_set_str(&usage, k->usage);
	want = split_words(&usage, uv, ARRAY_SIZE(uv));

	/* "[word]" in the usage may be left out */
	for (need = want; need && uv[need - 1].p[0] == '['; --need)
		;

	if (n - 1 < need)
		return conf_fail(sc, "%s: missing %r (usage: %s %s)",
				 k->name, &uv[n - 1], k->name, k->usage);
	if (n - 1 > want)
		return conf_fail(sc, "%s: unexpected '%r' (usage: %s %s)",
				 k->name, &wv[want + 1], k->name, k->usage);

	return 0;
}


static int scan_line(struct conf_scan *sc, struct pl *line)
{
	struct pl wv[CONF_MAX_WORDS] = {PL_INIT};  /* unset: words left out */
	const struct conf_key *k;
	unsigned n, *first;
	int err;

	strip_comment(line);

	err = check_chars(sc, line);
	if (err)
		return err;

	n = split_words(line, wv, ARRAY_SIZE(wv));
	if (!n)
		return 0;

	k = key_find(&wv[0]);
	if (!k)
		return conf_fail(sc, "unknown key '%r'", &wv[0]);

	err = check_arity(sc, k, wv, n);
	if (err)
		return err;

	first = &sc->key_line[k - keyv];
	if (*first && !k->repeatable)
		return conf_fail(sc, "%s: given twice (first on line %u)",
				 k->name, *first);
	if (!*first)
		*first = sc->line;

	return k->h(sc, k, &wv[1]);
}


static int check_default_shtag(struct conf_scan *sc)
{
	struct rh_conf *cfg = sc->cfg;
	unsigned line = conf_key_line(sc, "default_shtag");

	if (!cfg->shtagc)
		return 0;

	if (!line) {
		str_ncpy(cfg->default_shtag, cfg->shtag[0].name,
			 sizeof(cfg->default_shtag));
		return 0;
	}

	if (find_shtag(cfg, cfg->default_shtag) >= 0)
		return 0;

	sc->line = line;
	return conf_fail(sc, "default_shtag: '%s' is not declared by a "
			 "shtag line", cfg->default_shtag);
}


static int check_addresses(struct conf_scan *sc)
{
	const struct rh_conf *cfg = sc->cfg;
	int i;

	if (sa_isset(&cfg->upstream, SA_ALL)) {
		i = conf_find_listener(cfg, cfg->upstream_tp, &cfg->upstream);
		if (i >= 0) {
			sc->line = conf_key_line(sc, "upstream");
			return conf_fail(sc, "upstream: %J is this node's own "
					 "listener (line %u): calls would loop",
					 &cfg->upstream, sc->listen_line[i]);
		}
	}

	i = conf_find_listener(cfg, SIP_TRANSP_TCP, &cfg->ctl_listen);
	if (i >= 0) {
		sc->line = sc->listen_line[i];
		return conf_fail(sc, "listen: tcp:%J is also ctl_listen",
				 &cfg->ctl_listen);
	}

	return 0;
}


/* The rules that need the whole file; errors name the line at fault, or
 * the last line for something missing */
static int check_whole(struct conf_scan *sc)
{
	int err;

	if (!sc->cfg->listenc) {
		sc->line = max(sc->line, 1u);  /* an empty file has line 1 */
		return conf_fail(sc, "no listen line: at least one listener is "
				 "required (listen PROTO:IP:PORT tag=NAME)");
	}

	err = check_default_shtag(sc);
	if (err)
		return err;

	err = conf_check_cluster(sc);
	if (err)
		return err;

	err = conf_check_net(sc);
	if (err)
		return err;

	err = conf_check_workers(sc);
	if (err)
		return err;

	return check_addresses(sc);
}


static void warn_unsafe(const struct conf_scan *sc)
{
	const struct rh_conf *cfg = sc->cfg;

	conf_warn_cluster(sc);

	if (!str_isset(cfg->ctl_token))
		log_warn("conf", "%s: no ctl_token: the control API on %J "
			 "accepts requests without a token", sc->name,
			 &cfg->ctl_listen);
}


void conf_defaults(struct rh_conf *cfg)
{
	if (!cfg)
		return;

	memset(cfg, 0, sizeof(*cfg));

	if (gethostname(cfg->node_id, sizeof(cfg->node_id)))
		str_ncpy(cfg->node_id, "rehome", sizeof(cfg->node_id));
	cfg->node_id[sizeof(cfg->node_id) - 1] = '\0';

	str_ncpy(cfg->default_shtag, "default", sizeof(cfg->default_shtag));
	str_ncpy(cfg->cluster, "rehome", sizeof(cfg->cluster));
	str_ncpy(cfg->keyns, cfg->cluster, sizeof(cfg->keyns));
	(void)sa_set_str(&cfg->ctl_listen, "127.0.0.1", 8060);
	cfg->dialog_timeout = 43200;
	cfg->ring_timeout = 180;
	cfg->udp_rcvbuf = 8 << 20;
	cfg->workers = 1;
	cfg->node_timeout = 1500;
	cfg->rehome_rate = 5000;
	cfg->log_level = LOG_INFO;
	cfg->log_target = LOG_TARGET_STDERR;
}


int conf_load_buf(struct rh_conf *cfg, const char *name, const char *buf,
		  size_t len, char *errbuf, size_t errsz)
{
	struct conf_scan sc = {
		.cfg = cfg, .name = name, .errbuf = errbuf, .errsz = errsz
	};
	struct pl rest, line;
	int err = 0;

	if (!cfg || !name || (!buf && len))
		return EINVAL;

	conf_defaults(cfg);
	str_ncpy(cfg->path, name, sizeof(cfg->path));
	if (errbuf && errsz)
		errbuf[0] = '\0';

	rest.p = buf;
	rest.l = len;
	while (rest.l && !err) {
		const char *nl = pl_strchr(&rest, '\n');

		line.p = rest.p;
		line.l = nl ? (size_t)(nl - rest.p) : rest.l;
		pl_advance(&rest, nl ? line.l + 1 : line.l);

		++sc.line;
		err = scan_line(&sc, &line);
	}
	if (err)
		goto out;

	err = check_whole(&sc);
	if (err)
		goto out;

	warn_unsafe(&sc);

 out:
	return err;
}


static int read_file(struct mbuf **mbp, const char *path)
{
	uint8_t chunk[CONF_CHUNK_SZ];
	struct mbuf *mb;
	FILE *f;
	size_t n;
	int err = 0;

	f = fopen(path, "r");
	if (!f)
		return errno;

	mb = mbuf_alloc(sizeof(chunk));
	if (!mb) {
		err = ENOMEM;
		goto out;
	}

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (mb->end + n > CONF_MAX_SIZE) {
			err = EFBIG;
			goto out;
		}

		err = mbuf_write_mem(mb, chunk, n);
		if (err)
			goto out;
	}
	if (ferror(f))
		err = errno ? errno : EIO;

 out:
	(void)fclose(f);
	if (err)
		mem_deref(mb);
	else
		*mbp = mb;

	return err;
}


int conf_load(struct rh_conf *cfg, const char *path, char *errbuf,
	      size_t errsz)
{
	struct mbuf *mb = NULL;
	int err;

	if (!cfg || !path)
		return EINVAL;

	err = read_file(&mb, path);
	if (err) {
		(void)re_snprintf(errbuf, errsz, "%s: cannot read: %m",
				  path, err);
		goto out;
	}

	err = conf_load_buf(cfg, path, (const char *)mb->buf, mb->end,
			    errbuf, errsz);

 out:
	mem_deref(mb);
	return err;
}
