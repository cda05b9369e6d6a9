/**
 * @file rehome.h  Re-homing: moving live calls to a node with re-INVITEs
 */

#ifndef REHOME_REHOME_H
#define REHOME_REHOME_H

/** Which legs get a request, in which order, and which method */
enum rehome_mode {
	REHOME_CHALLENGE = 0,    /* caller, then callee (its answer as offer) */
	REHOME_CHALLENGE_CALLEE, /* callee, then caller */
	REHOME_CALLER,           /* caller only */
	REHOME_CALLEE,           /* callee only */
	REHOME_UPDATE,           /* like challenge, with UPDATE */
};

/** What the first request carries */
enum rehome_body {
	REHOME_BODY_OUTBOUND = 0, /* the SDP last sent to that leg */
	REHOME_BODY_INBOUND,      /* the SDP last received from the other leg */
	REHOME_BODY_NONE,         /* no SDP: the leg offers in its 2xx */
};

enum { REHOME_MEDIA_SZ = 64 };  /* a relay's name: "udp:IP:PORT" */

struct rehome_opts {
	enum rehome_mode mode;
	enum rehome_body body;
	uint32_t rate;            /* dialogs per second; 0 = rehome_rate */
	bool all;                 /* rehome: also dialogs homed here already */
	char media_to[REHOME_MEDIA_SZ]; /* move the media there too; "": no */
	bool force;               /* rehome: take the tag from a live holder */
};

/** What became of one dialog of a job */
enum rehome_outcome {
	REHOME_PENDING = 0,
	REHOME_MOVED,             /* every leg took the new Contact */
	REHOME_FAILED,            /* a leg refused, or did not answer */
	REHOME_ENDED,             /* the call ended on its own meanwhile */
};

struct rh_conf;
struct rehome_job;
struct odict;

/**
 * A job reports. As ready handler: it runs (err 0: its tags are held,
 * its dialogs chosen), or cannot run at all (EBUSY: a live node holds
 * the tag, ...; rehome_job_odict() has the text); called once, possibly
 * before the call that started the job returns. As done handler: it is
 * over, every dialog has an outcome; err as above. The job stays valid
 * during the call only.
 */
typedef void (rehome_done_h)(int err, const struct rehome_job *job,
			     void *arg);

int  rehome_init(const struct rh_conf *cfg);
void rehome_close(void);

int  rehome_tag(const char *tag, const struct rehome_opts *opts,
		rehome_done_h *readyh, rehome_done_h *doneh, void *arg);
int  rehome_move(const char *tag, const char *to, uint32_t count,
		 uint32_t percent, const struct rehome_opts *opts,
		 rehome_done_h *readyh, rehome_done_h *doneh, void *arg);
int  rehome_drain(const char *to, const struct rehome_opts *opts,
		  rehome_done_h *readyh, rehome_done_h *doneh, void *arg);
int  rehome_media(const char *from, const char *to, uint32_t count,
		  const char *tag, const struct rehome_opts *opts,
		  rehome_done_h *readyh, rehome_done_h *doneh, void *arg);
bool rehome_draining(uint32_t *retry_after);
bool rehome_undrain(void);

void rehome_set_done_handler(rehome_done_h *h, void *arg);
const struct rehome_job *rehome_job_find(uint32_t id);
int  rehome_job_odict(struct odict **odp, const struct rehome_job *job);

int  rehome_mode_decode(enum rehome_mode *modep, const char *name);
int  rehome_body_decode(enum rehome_body *bodyp, const char *name);
const char *rehome_mode_name(enum rehome_mode mode);
const char *rehome_body_name(enum rehome_body body);
const char *rehome_outcome_name(enum rehome_outcome outcome);

#endif
