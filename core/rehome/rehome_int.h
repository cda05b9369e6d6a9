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
struct rehome_job;

enum {
	REHOME_REASON_SZ = 24,
	REHOME_RATE_MAX  = 100000, /* dialogs per second */
};

/**
 * What one kind of job does, as a table of operations that the job code
 * calls without knowing the kind. The kinds are defined where they live:
 * rehome (take a tag, move its dialogs here) in rehome.c; move (hand some
 * dialogs of a tag to another node), drain (hand every dialog to another
 * node) and take (move here what another node hands over) in
 * rehome_handoff.c. Only step is required.
 */
struct rehome_job_ops {
	const char *name;      /* the kind, as "kind" in the job's JSON */
	const char *peer;      /* what job->node is: "to" or "from" */

	/** The job's tags are held: choose the dialogs it moves */
	void (*ready)(struct rehome_job *job);

	/** One pacing step, each tick of the timer while the job runs */
	void (*step)(struct rehome_job *job, uint64_t now);

	/** Item idx has just got its outcome */
	void (*item_done)(struct rehome_job *job, uint32_t idx);

	/** No more items will come (NULL: always); the job may finish */
	bool (*settled)(const struct rehome_job *job);

	/** The job has finished: tell whoever asked for it */
	void (*report)(struct rehome_job *job);

	/** The job is being freed: let go of what it holds */
	void (*close)(struct rehome_job *job);
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
	struct dialog *dlg;           /* move, drain: ours, handed over and
	                               * no BYE relayed here yet */
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
	const struct rehome_job_ops *ops;
	enum rehome_job_phase phase;
	char *tag;                    /* rehome, move */
	char *node;                   /* move, drain, media: to; take: from */
	char *media_from;             /* media: the relay it empties */
	uint32_t limit;               /* media: dialogs at most; 0 all */
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
	rehome_done_h *readyh;        /* until the job runs (or cannot) */
	rehome_done_h *doneh;
	void *arg;
	int err;
	char *error;
};


/* rehome.c: jobs */
const char *rehome_node_id(void);
uint64_t rehome_since(uint64_t now, uint64_t then);
const struct list *rehome_job_list(void);
int  rehome_job_alloc(struct rehome_job **jobp,
		      const struct rehome_job_ops *ops,
		      const struct rehome_opts *opts, rehome_done_h *readyh,
		      rehome_done_h *doneh, void *arg);
int  rehome_job_add(struct rehome_job *job, uint64_t did);
int  rehome_job_tag_add(struct rehome_job *job, const char *name);
void rehome_job_take_tags(struct rehome_job *job);
void rehome_job_run(struct rehome_job *job);
void rehome_job_pace(struct rehome_job *job, uint64_t now);
void rehome_job_abort(struct rehome_job *job, int err, const char *reason);
uint32_t rehome_job_done_count(const struct rehome_job *job);
void rehome_job_compact(struct rehome_job *job);
void rehome_item_done(struct rehome_job *job, uint32_t idx,
		      enum rehome_outcome outcome, const char *reason);
void rehome_item_count(struct rehome_job *job, uint32_t idx);
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

/* rehome_ctl.c: control API */
int  rehome_ctl_init(void);
void rehome_ctl_close(void);
