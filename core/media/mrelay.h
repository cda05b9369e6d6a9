/**
 * @file mrelay.h  The media relays (rtpengines): health, choice, counts
 */

#include "ng.h"

struct conf_media_relay;
struct mrelay;
struct mrelay_set;

/** How relays are checked and talked to; 0 members take the defaults */
struct mrelay_opts {
	uint32_t ping_interval_ms;   /* default 1000 */
	struct ng_conf ng;           /* every command, pings included */
};

/** A relay went up (answers ping again) or down (stopped answering) */
typedef void (mrelay_state_h)(struct mrelay *relay, bool up, void *arg);

int  mrelay_set_alloc(struct mrelay_set **setp,
		      const struct conf_media_relay *relayv, size_t relayc,
		      const struct mrelay_opts *opts,
		      mrelay_state_h *stateh, void *arg);
struct mrelay *mrelay_choose(struct mrelay_set *set);
struct mrelay *mrelay_find(const struct mrelay_set *set, const char *name);
int  mrelay_status(struct odict **odp, const struct mrelay_set *set);

const char *mrelay_name(const struct mrelay *relay);
bool mrelay_is_up(const struct mrelay *relay);
uint32_t mrelay_calls(const struct mrelay *relay);
