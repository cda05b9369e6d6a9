/**
 * @file shtag.h  Sharing tags: one active node per tag, epochs, compare-and-set
 */

#ifndef REHOME_SHTAG_H
#define REHOME_SHTAG_H

#include "cluster.h"

struct rh_conf;
struct odict;
struct shtag_observer;

/**
 * Outcome of shtag_activate()/shtag_release(), called once. err: 0 done;
 * ESTALE the tag changed meanwhile (someone else won); EBUSY a live node
 * holds it / it is not ours to release; ENOTCONN Redis went away;
 * ECANCELED shutting down. On success the state the operation produced
 * (applied here already; the tag may have moved on since), else the
 * tag's state as now known.
 */
typedef void (shtag_result_h)(int err, const char *name, bool active,
			      uint64_t epoch, const char *holder, void *arg);
/** This node became active for a tag, or stopped being active */
typedef void (shtag_change_h)(const char *name, bool active, uint64_t epoch,
			      void *arg);
typedef bool (shtag_apply_h)(const char *name, bool active, uint64_t epoch,
			     const char *holder, void *arg);
/** Tag `name` changed hands: `holder` has it now ("" nobody) */
typedef void (shtag_holder_h)(const char *name, const char *holder,
			      void *arg);

int  shtag_init(const struct rh_conf *cfg);
void shtag_close(void);
int  shtag_activate(const char *name, shtag_result_h *h, void *arg);
int  shtag_release(const char *name, shtag_result_h *h, void *arg);
bool shtag_is_active(const char *name);
bool shtag_may_act(const char *name);
uint64_t shtag_epoch(const char *name);
const char *shtag_holder(const char *name);
void shtag_set_handler(shtag_change_h *h, void *arg);
int  shtag_observer_add(struct shtag_observer **obsp, shtag_holder_h *h,
			void *arg);
void shtag_apply(shtag_apply_h *h, void *arg);
int  shtag_status(struct odict *od);

/* the end of the cluster's first (re)connect sequence (cluster.c) */
void shtag_claim(void);

#endif
