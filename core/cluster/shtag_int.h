/**
 * @file shtag_int.h  Inside sharing tags: what its files share
 *
 * shtag.c owns the tag table, the compare-and-set script, the channel and
 * the (re)connect step; shtag_ctl.c serves the control routes on top of
 * the public API; shtag_observer.c keeps who follows tags changing hands.
 * Nothing but the routes' registration and the observers is shared.
 *
 * Not for other modules: use shtag.h.
 */

struct redisReply;

/* shtag.c: the tags hash as read by a lease renewal (cluster_lease.c) */
void shtag_lease_reply(const struct redisReply *reply);

/* shtag_ctl.c */
int shtag_ctl_init(void);

/* shtag_observer.c */
void shtag_observers_tell(const char *name, const char *holder);
void shtag_observers_close(void);
