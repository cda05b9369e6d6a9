/**
 * @file conf_media.c  The configuration file: the media relays
 *
 * `media_relay udp:IP:PORT [weight=N]` names an rtpengine the node may
 * anchor calls in, by the ng protocol, which runs over UDP only. The
 * address is a real one (the node sends to it), each relay is listed
 * once, and the weight shares new calls among the relays that are up.
 */
#include <string.h>
#include <re.h>
#include "conf.h"
#include "conf_int.h"


/* weight=N of media_relay: 1 unless given */
static int relay_weight(struct conf_scan *sc, const struct pl *arg,
			uint32_t *weightp)
{
	struct pl w = *arg;

	if (!pl_isset(&w)) {
		*weightp = 1;
		return 0;
	}

	if (w.l < 7 || memcmp(w.p, "weight=", 7))
		return conf_fail(sc, "media_relay: expected weight=N, not "
				 "'%r'", &w);

	pl_advance(&w, 7);
	if (w.l > 4 || !conf_all_digits(&w) || pl_u32(&w) < 1 ||
	    pl_u32(&w) > CONF_MAX_RELAY_WEIGHT)
		return conf_fail(sc, "media_relay: weight '%r' is not a "
				 "whole number from 1 to %u", &w,
				 CONF_MAX_RELAY_WEIGHT);

	*weightp = pl_u32(&w);

	return 0;
}


/* An rtpengine's ng address: udp only, and a real address to send to */
int conf_key_media_relay(struct conf_scan *sc, const struct conf_key *k,
			  const struct pl *argv)
{
	struct rh_conf *cfg = sc->cfg;
	const char *colon = pl_strchr(&argv[0], ':');
	struct conf_media_relay *mr;
	struct pl proto, addr;
	int err;

	if (cfg->media_relayc >= CONF_MAX_MEDIA_RELAYS)
		return conf_fail(sc, "media_relay: too many relays (at most "
				 "%u)", CONF_MAX_MEDIA_RELAYS);

	if (!colon)
		return conf_fail(sc, "media_relay: '%r' is not udp:IP:PORT",
				 &argv[0]);

	proto.p = argv[0].p;
	proto.l = colon - argv[0].p;
	addr.p = colon + 1;
	addr.l = argv[0].p + argv[0].l - addr.p;

	if (pl_strcasecmp(&proto, "udp"))
		return conf_fail(sc, "media_relay: unknown transport '%r' "
				 "(the ng protocol runs over udp)", &proto);

	mr = &cfg->media_relay[cfg->media_relayc];
	err = conf_parse_ipport(sc, k->name, &addr, &mr->addr);
	if (err)
		return err;

	if (sa_is_any(&mr->addr))
		return conf_fail(sc, "media_relay: %j is a wildcard; name the "
				 "relay's address", &mr->addr);

	for (size_t i = 0; i < cfg->media_relayc; i++) {
		if (sa_cmp(&cfg->media_relay[i].addr, &mr->addr, SA_ALL))
			return conf_fail(sc, "media_relay: udp:%J is already "
					 "configured on line %u", &mr->addr,
					 sc->media_relay_line[i]);
	}

	err = relay_weight(sc, &argv[1], &mr->weight);
	if (err)
		return err;

	sc->media_relay_line[cfg->media_relayc++] = sc->line;

	return 0;
}
