/**
 * @file conf_net.c  The keys of the network around the node: upstream, TLS, DNS
 *
 * `upstream` takes a SIP URI (`sip:HOST[:PORT][;transport=T]`), whose host
 * may be a name that libre resolves as RFC 3263 says when a call is sent
 * there, or the short PROTO:IP:PORT form, which is turned into that URI.
 * The URI is kept as text, since that is what the proxy routes on; its
 * address is also kept when the host is an IP, so that an upstream that
 * is one of our own listeners can be refused (a loop) when the file is
 * read.
 *
 * TLS needs a certificate: a `tls` or `wss` listener without `tls_cert`
 * is refused. libre 1.1.0 opens outgoing TLS connections with the context
 * of its TLS listener, so sending over TLS (an upstream with
 * transport=tls) needs a `tls` listener too.
 */
#include <string.h>
#include <strings.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "conf_int.h"


/** A transport by its name in the file or a URI (udp, tcp, tls, ws, wss) */
int conf_transp_decode(enum sip_transp *tpp, const struct pl *name)
{
	for (int tp = SIP_TRANSP_UDP; tp < SIP_TRANSPC; tp++) {
		if (!pl_strcasecmp(name, sip_transp_name(tp))) {
			*tpp = (enum sip_transp)tp;
			return 0;
		}
	}

	return EINVAL;
}


static int upstream_uri(struct conf_scan *sc, const struct pl *val)
{
	struct rh_conf *cfg = sc->cfg;
	struct pl tpname;
	struct uri uri;

	if (val->l >= sizeof(cfg->upstream_uri) || uri_decode(&uri, val))
		return conf_fail(sc, "upstream: '%r' is not a SIP URI", val);

	if (pl_strcasecmp(&uri.scheme, "sip") || !pl_isset(&uri.host))
		return conf_fail(sc, "upstream: '%r' is not sip:HOST[:PORT]"
				 "[;transport=T]", val);

	cfg->upstream_tp = SIP_TRANSP_UDP;
	if (!msg_param_decode(&uri.params, "transport", &tpname) &&
	    conf_transp_decode(&cfg->upstream_tp, &tpname))
		return conf_fail(sc, "upstream: unknown transport '%r' (udp, "
				 "tcp, tls, ws or wss)", &tpname);

	/* a name is resolved per call; an address can be checked now */
	(void)sa_set(&cfg->upstream, &uri.host,
		     sip_transp_port(cfg->upstream_tp, uri.port));

	return pl_strcpy(val, cfg->upstream_uri, sizeof(cfg->upstream_uri));
}


int conf_key_upstream(struct conf_scan *sc, const struct conf_key *k,
		      const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	int err;

	cfg->has_upstream = true;

	if (argv[0].l >= 4 && !strncasecmp(argv[0].p, "sip:", 4))
		return upstream_uri(sc, &argv[0]);

	err = conf_parse_transport(sc, k->name, &argv[0], &cfg->upstream_tp,
				   &cfg->upstream);
	if (err)
		return err;

	(void)re_snprintf(cfg->upstream_uri, sizeof(cfg->upstream_uri),
			  "sip:%J%s", &cfg->upstream,
			  sip_transp_param(cfg->upstream_tp));

	return 0;
}


int conf_key_dns_server(struct conf_scan *sc, const struct conf_key *k,
			const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;

	if (cfg->dns_serverc >= CONF_MAX_DNS)
		return conf_fail(sc, "%s: too many servers (at most %u)",
				 k->name, CONF_MAX_DNS);

	return conf_parse_ipport(sc, k->name, &argv[0],
				 &cfg->dns_server[cfg->dns_serverc++]);
}


static bool is_secure(enum sip_transp tp)
{
	return tp == SIP_TRANSP_TLS || tp == SIP_TRANSP_WSS;
}


int conf_check_net(struct conf_scan *sc)
{
	const struct rh_conf *cfg = sc->cfg;

	for (size_t i = 0; i < cfg->listenc; i++) {
		if (!is_secure(cfg->listen[i].tp) || str_isset(cfg->tls_cert))
			continue;

		sc->line = sc->listen_line[i];
		return conf_fail(sc, "listen: a %s listener needs tls_cert "
				 "FILE (certificate chain and key)",
				 sip_transp_name(cfg->listen[i].tp));
	}

	if (cfg->has_upstream && cfg->upstream_tp == SIP_TRANSP_TLS) {
		for (size_t i = 0; i < cfg->listenc; i++) {
			if (cfg->listen[i].tp == SIP_TRANSP_TLS)
				return 0;
		}

		sc->line = conf_key_line(sc, "upstream");
		return conf_fail(sc, "upstream: sending over TLS needs a tls "
				 "listener (its context opens the connections)");
	}

	return 0;
}
