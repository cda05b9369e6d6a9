/**
 * @file rehome_int.h  Re-homing internals shared by the rehome*.c files
 *
 * rehome.c owns the jobs (registry, outcomes, pacing, tags), rehome_call.c
 * moves one dialog, rehome_handoff.c talks to other nodes (move, drain,
 * take) and rehome_ctl.c serves the control API. Each file keeps its own
 * state; what the others need goes through the functions below.
 */

#include "rehome.h"

struct dialog;

enum {
	REHOME_REASON_SZ = 24,
	REHOME_RATE_MAX  = 100000, /* dialogs per second */
};

/** What a job does */
enum rehome_job_kind {
	REHOME_JOB_REHOME = 0, /* take a tag, move its dialogs here */
	REHOME_JOB_MOVE,       /* hand some dialogs of a tag to another node */
	REHOME_JOB_DRAIN,      /* hand every dialog to another node */
	REHOME_JOB_TAKE,       /* move here what another node hands over */
};

enum rehome_job_phase {
	REHOME_JOB_TAKING = 0, /* waiting for its tags */
	REHOME_JOB_RUNNING,
	REHOME_JOB_DONE,
};

/** One dialog of a job */
struct rehome_item {
	uint64_t did;
	char *tag;                    /* take: the tag it gets here */
	enum rehome_outcome outcome;
	bool reported;                /* take: outcome sent to the asker */
	char reason[REHOME_REASON_SZ]; /* why it failed or ended */
};

/** How many dialogs of a job failed or ended for one reason */
struct rehome_reason {
	struct le le;                 /* job->reasons */
	char name[REHOME_REASON_SZ];
	uint32_t n;
};

struct rehome_job {
	struct le le;                 /* the job list of rehome.c */
	uint32_t id;
	enum rehome_job_kind kind;
	enum rehome_job_phase phase;
	char *tag;                    /* rehome, move */
	char *node;                   /* move, drain: to; take: from */
	uint32_t peer_job;            /* take: the asker's job id */
	uint32_t peer_off;            /* take: the asker's index of item 0 */
	struct rehome_opts opts;
	struct rehome_item *itemv;
	uint32_t itemc;
	uint32_t next;                /* first item not started yet */
	uint32_t count[REHOME_ENDED + 1]; /* by enum rehome_outcome */
	struct list reasons;          /* struct rehome_reason */
	struct list calls;            /* struct call, in flight */
	struct list tags;             /* struct take_tag, still to take */
	double credit;                /* dialogs the pacing allows now */
	uint64_t last;                /* jiffies of the last pacing step */
	uint64_t reaped;              /* jiffies of the last calls reap */
	uint64_t started;
	uint64_t finished;
	uint64_t heard;               /* move, drain: last results */
	uint64_t flushed;             /* take: last results sent */
	uint64_t scanned;             /* drain: last scan */
	struct hash *sent;            /* drain: struct sent */
	bool drained;                 /* drain: nothing left to hand over */
	struct http_conn *conn;       /* a POST waiting for the tags */
	rehome_done_h *doneh;
	void *arg;
	int err;
	char *error;
};


/* rehome.c: jobs */
const char *rehome_node_id(void);
uint64_t rehome_since(uint64_t now, uint64_t then);
const struct list *rehome_job_list(void);
int  rehome_job_alloc(struct rehome_job **jobp, enum rehome_job_kind kind,
		      const struct rehome_opts *opts, rehome_done_h *doneh,
		      void *arg);
int  rehome_job_add(struct rehome_job *job, uint64_t did);
int  rehome_job_tag_add(struct rehome_job *job, const char *name);
void rehome_job_take_tags(struct rehome_job *job);
void rehome_job_run(struct rehome_job *job);
void rehome_job_abort(struct rehome_job *job, int err, const char *reason);
uint32_t rehome_job_done_count(const struct rehome_job *job);
const char *rehome_job_kind_name(enum rehome_job_kind kind);
void rehome_item_done(struct rehome_job *job, uint32_t idx,
		      enum rehome_outcome outcome, const char *reason);
void rehome_items_fail(struct rehome_job *job, const char *reason);
void rehome_tick_soon(void);
int  rehome_outcome_decode(enum rehome_outcome *outcomep, const char *name);

/* rehome_call.c: one dialog */
int  rehome_call_init(void);
void rehome_call_close(void);
void rehome_call_start(struct rehome_job *job, uint32_t idx);
void rehome_calls_reap(struct rehome_job *job);
uint32_t rehome_calls_inflight(void);
bool rehome_homed_here(const struct dialog *dlg);
void rehome_homed_prune(void);

/* rehome_handoff.c: move, drain, take */
int  rehome_handoff_init(void);
void rehome_handoff_close(void);
bool rehome_clustered(void);
const char *rehome_peer_check(const char *to);
void rehome_handoff_clear(struct rehome_job *job, uint64_t did);
void rehome_handoff_step(struct rehome_job *job, uint64_t now);
void rehome_results_flush(struct rehome_job *job);

/* rehome_ctl.c: control API */
int  rehome_ctl_init(void);
void rehome_ctl_answer(struct rehome_job *job);
int  rehome_int_add(struct odict *od, const char *key, uint64_t v);
int  rehome_str_add(struct odict *od, const char *key, const char *s);
