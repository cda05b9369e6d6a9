/**
 * @file shtag_int.h  Inside sharing tags: what its files share
 *
 * shtag.c owns the tag table, the compare-and-set script, the channel and
 * the (re)connect sequence; shtag_ctl.c serves the control routes on top
 * of the public API. Nothing but the routes' registration is shared.
 *
 * Not for other modules: use shtag.h.
 */

/* shtag_ctl.c */
int shtag_ctl_init(void);
