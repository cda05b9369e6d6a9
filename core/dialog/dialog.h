/**
 * @file dialog.h  Dialogs: the complete state of one call, as data
 */

#ifndef REHOME_DIALOG_H
#define REHOME_DIALOG_H

#include "cseq.h"
#include "log.h"

struct media_call;
struct dialog_ext;

enum dialog_state {
	DIALOG_EARLY = 0,      /* INVITE relayed, no 2xx yet */
	DIALOG_CONFIRMED,      /* 2xx relayed; the call is up */
	DIALOG_ENDED,
};

enum dialog_leg_id {
	LEG_CALLER = 0,        /* the endpoint that sent the initial INVITE */
	LEG_CALLEE = 1,
};

enum dialog_event {
	DIALOG_EV_CREATED = 0, /* early dialog exists (INVITE relayed) */
	DIALOG_EV_CONFIRMED,   /* 2xx seen */
	DIALOG_EV_UPDATED,     /* CSeq, target, SDP or owner changed */
	DIALOG_EV_ENDED,       /* about to leave the table */
};

/**
 * How far a node taking a dialog from another one puts its version ahead:
 * the previous owner may still write a few changes (an ACK, a relayed
 * request) before it hears of the take, and those must lose in Redis and
 * on every replica rather than take the dialog back (dialog_serve()).
 */
enum {
	DIALOG_TAKE_GAP = 1024,
};

/** Who holds a dialog's lock; the kind says what the holder is */
enum dialog_lock_kind {
	DIALOG_LOCK_NONE = 0,
	DIALOG_LOCK_REHOME,    /* our re-INVITE/UPDATE in flight (a call) */
	DIALOG_LOCK_HANDOFF,   /* on its way to another node (a job) */
};

/**
 * Our 2xx to an INVITE of one leg, kept until that leg's ACK for it
 * (RFC 3261 13.3.1.4). Once its ACK is overdue it is replicated
 * (`shared`), so that whichever node serves the dialog next goes on
 * resending it and relays the ACK; the tail is node-local, and the
 * resending itself is the SIP layer's.
 */
struct dialog_ok {
	struct mbuf *mb;       /* the 2xx as sent */
	struct sa dst;         /* where it went */
	enum sip_transp tp;
	uint32_t cseq;         /* the INVITE's CSeq, as the leg numbered it */
	uint32_t ack;          /* CSeq of the ACK owed to the other leg */
	uint64_t until;        /* unix ms: no ACK by then, no call */
	bool shared;           /* replicated: its ACK is overdue */

	/* node-local, never serialized */
	struct dialog *dlg;    /* the dialog holding it (no reference) */
	enum dialog_leg_id leg;
	void *sock;            /* the UDP socket it left by, NULL: any */
	struct tmr tmr;        /* the next resend */
	uint32_t interval;     /* ms, T1 doubling up to T2 */
	bool taken_over;       /* sent by another node before this one */
};

/** What an endpoint said it supports (Allow, Supported), per leg */
enum dialog_cap {
	DIALOG_CAP_UPDATE = 1 << 0,  /* Allow lists UPDATE */
};

/**
 * A ringing call, as another node needs it to end the call if this one
 * dies before the answer (replicated while early, dropped once confirmed):
 * what a final response to the caller's INVITE and a CANCEL of ours
 * toward the callee must carry, and where they go.
 */
struct dialog_early {
	char *vias;            /* the caller INVITE's Via lines, as received */
	char *src;             /* where it came from, "IP:PORT" */
	char *via;             /* our INVITE's Via line toward the callee */
	char *ruri;            /* its Request-URI */
	char *dst;             /* where it went, "IP:PORT" */
};

/**
 * The identifiers of a dialog, its strings that change never or seldom,
 * held in one allocation, in this order: the pointers of struct dialog
 * point into it (the first one set, at its start), and are set only
 * through dialog_set_ids()
 */
enum dialog_id {
	DIALOG_ID_CALLID = 0,
	DIALOG_ID_FROM,
	DIALOG_ID_TO,
	DIALOG_ID_TO_TAG,          /* through dialog_set_to_tag() */
	DIALOG_ID_CALLER_TARGET,
	DIALOG_ID_CALLEE_TARGET,
	DIALOG_IDS
};

/**
 * One side of the call: how to reach that endpoint and what it has seen.
 * What most legs never use (route set, kept 2xx, o= offset, WebSocket
 * flow) is in the dialog's extension: dialog_route(), dialog_ok_kept()...
 */
struct dialog_leg {
	char *target;          /* the endpoint's remote target (Contact URI):
				  an identifier (enum dialog_id) */
	char *sdp_in;          /* last SDP received from it (shared ref) */
	char *sdp_out;         /* last SDP sent to it (shared ref) */
	char *lsnr_tag;        /* tag of the listener this leg uses (atom) */
	uint64_t contact_key;  /* random, in our Contact toward this leg */
	uint32_t caps;         /* DIALOG_CAP_*: what the endpoint supports */
	struct cseq_leg cseq;
	enum sip_transp tp;
};

/**
 * Everything another node needs to continue the call lives in the
 * replicated part; the tail is node-local runtime state. Other modules
 * read any field, and write leaf data (legs, SDP, CSeq, names) through
 * the setters below, the identifiers (Call-ID, From, To, To tag, the
 * targets: enum dialog_id) through dialog_set_ids(); state, to_tag,
 * owner, replica, acked, the 2xx kept for an ACK, the lock and the
 * timestamps change only through dialog_state.c's named transitions.
 *
 * The fields a plain call never uses (the media relay and its call, the
 * early part, the session timer, the lock, and per leg the route set, the
 * kept 2xx, the o= offset and the WebSocket flow) are in an extension
 * allocated on first use and freed once empty (dialog_ext.c): read them
 * with dialog_media(), dialog_early()..., which give NULL or 0 without
 * it. The struct is one malloc size class smaller for it
 * (bench/RESULTS.md, "Memory per dialog").
 */
struct dialog {
	struct le he;          /* dialog table, keyed by did */
	uint64_t did;
	char *callid;          /* caller leg's Call-ID (callee's is derived) */
	uint64_t callid_key;   /* random, in the callee leg's Call-ID */
	char *from;            /* From value as the caller sent it, with tag */
	char *to;              /* To value as the caller sent it, no tag */
	char *to_tag;          /* the callee's tag, NULL while early */
	char *shtag;           /* sharing tag (atom) */
	char *owner;           /* node id serving the dialog (atom) */
	struct dialog_ext *ext; /* the rarely used fields, or NULL */
	struct dialog_leg leg[2];
	uint64_t created;      /* unix ms */
	uint64_t updated;      /* unix ms of the last change or activity */
	uint64_t version;      /* bumped on each change; replicas keep newest */
	enum dialog_state state;

	/* node-local, never serialized */
	bool replica;          /* held for another node, not served here */
	bool acked;            /* the caller's ACK for a 2xx passed here */
};

typedef void (dialog_change_h)(struct dialog *dlg, enum dialog_event ev);
typedef void (dialog_ok_h)(struct dialog_ok *ok);
typedef void (dialog_end_h)(struct dialog *dlg);
typedef bool (dialog_apply_h)(struct dialog *dlg, void *arg);

int  dialog_alloc(struct dialog **dlgp, uint64_t did);
int  dialog_early_alloc(struct dialog *dlg);
int  dialog_table_init(uint32_t bucket_bits);
void dialog_table_close(void);
int  dialog_insert(struct dialog *dlg);
void dialog_remove(struct dialog *dlg);
struct dialog *dialog_lookup(uint64_t did);
uint32_t dialog_count(void);
struct dialog *dialog_apply(dialog_apply_h *h, void *arg);

/* dialog_state.c: the one door for state, to_tag, owner, replica, acked,
 * the kept 2xx, the lock and the version, and the observer told of every
 * change */
void dialog_set_observer(dialog_change_h *h);
void dialog_set_ok_handler(dialog_ok_h *h);
void dialog_set_end_handler(dialog_end_h *h);
void dialog_changed(struct dialog *dlg, enum dialog_event ev);
int  dialog_start(struct dialog *dlg);
int  dialog_set_to_tag(struct dialog *dlg, const struct pl *tag);
int  dialog_confirm(struct dialog *dlg);
int  dialog_end(struct dialog *dlg);
int  dialog_serve(struct dialog *dlg, const char *node);
void dialog_hold(struct dialog *dlg);
int  dialog_ok_keep(struct dialog_ok **okp, struct dialog *dlg,
		    enum dialog_leg_id leg, const struct dialog_ok *ok);
void dialog_ok_share(struct dialog_ok *ok);
int  dialog_ack(struct dialog *dlg, enum dialog_leg_id leg, uint32_t cseq,
		uint32_t *ackp);
void dialog_ok_clear(struct dialog *dlg, enum dialog_leg_id leg);
int  dialog_lock(struct dialog *dlg, enum dialog_lock_kind kind,
		 const void *holder);
int  dialog_unlock(struct dialog *dlg, const void *holder);
void dialog_lock_break(struct dialog *dlg);
void dialog_lock_pending(struct dialog *dlg, const void *holder,
			 bool pending);
bool dialog_pending(const struct dialog *dlg);
bool dialog_locked(const struct dialog *dlg);
bool dialog_locked_by(const struct dialog *dlg, enum dialog_lock_kind kind,
		      const void *holder);
bool dialog_locked_as(const struct dialog *dlg, enum dialog_lock_kind kind);

int  dialog_set_str(char **dst, const struct pl *pl);
int  dialog_set_ids(struct dialog *dlg, const struct pl *const v[DIALOG_IDS]);
int  dialog_set_id(struct dialog *dlg, enum dialog_id id,
		   const struct pl *pl);
int  dialog_ids_adopt(struct dialog *dlg);
int  dialog_atom_str(char **dst, const char *name);
int  dialog_callee_callid(char *buf, size_t sz, const struct dialog *dlg);
int  dialog_from_tag(const struct dialog *dlg, struct pl *tag);
const char *dialog_state_name(enum dialog_state st);
int  dialog_state_decode(enum dialog_state *stp, const char *name);
const char *dialog_leg_name(enum dialog_leg_id leg);
uint64_t dialog_now(void);

/* dialog_ext.c: the rarely used fields; 0 or NULL while never set */
const char *dialog_media(const struct dialog *dlg);
int  dialog_set_media(struct dialog *dlg, const char *relay);
struct media_call *dialog_mcall(const struct dialog *dlg);
int  dialog_set_mcall(struct dialog *dlg, struct media_call *mc);
struct dialog_early *dialog_early(const struct dialog *dlg);
uint32_t dialog_se(const struct dialog *dlg);
uint32_t dialog_se_refresher(const struct dialog *dlg);
int  dialog_set_se(struct dialog *dlg, uint32_t se, uint32_t refresher);
const char *dialog_route(const struct dialog *dlg, enum dialog_leg_id leg);
int  dialog_set_route(struct dialog *dlg, enum dialog_leg_id leg,
		      char *route);
struct dialog_ok *dialog_ok_kept(const struct dialog *dlg,
				 enum dialog_leg_id leg);
uint64_t dialog_sdp_off(const struct dialog *dlg, enum dialog_leg_id leg);
int  dialog_sdp_out(char **outp, struct dialog *dlg, enum dialog_leg_id leg,
		    char *sdp, bool own);
const char *dialog_flow(const struct dialog *dlg, enum dialog_leg_id leg);
int  dialog_set_flow(struct dialog *dlg, enum dialog_leg_id leg, char *flow);

/* dialog_codec.c: versioned serialization (JSON) */
enum { DIALOG_CODEC_VERSION = 5, DIALOG_CODEC_VERSION_MIN = 1 };
int dialog_encode(struct re_printf *pf, const struct dialog *dlg);
int dialog_encode_mb(struct mbuf **mbp, const struct dialog *dlg);
int dialog_decode(struct dialog **dlgp, const char *str, size_t len);
bool dialog_equal(const struct dialog *a, const struct dialog *b);

/* dialog_view.c: dialogs as the API and the policies see them */
enum { DIALOG_STATES = DIALOG_ENDED + 1 };

/** Dialogs in the table, counted by state, served here or held */
struct dialog_counts {
	uint32_t state[DIALOG_STATES];  /* served by this node */
	uint32_t replicas;              /* held for other nodes */
};

/** The dialogs of one sharing tag and one owner */
struct dialog_tally {
	struct le le;
	char *shtag;                    /* "" when none */
	char *owner;                    /* "" when none */
	struct dialog_counts n;
};

typedef bool (dialog_tally_h)(const char *shtag,
			      const struct dialog_counts *n, void *arg);

int  dialog_view_odict(struct odict **odp, const struct dialog *dlg);
int  dialog_view_list(struct odict **arrp, bool *truncatedp,
		      const char *shtag, uint32_t limit);
int  dialog_tally(struct list *tallies);
void dialog_tally_sum(struct dialog_counts *sum, const struct list *tallies,
		      const char *shtag, const char *owner);
void dialog_tally_by_shtag(const struct list *tallies, dialog_tally_h *h,
			   void *arg);
uint32_t dialog_counts_served(const struct dialog_counts *n);
uint32_t dialog_counts_live(const struct dialog_counts *n);
uint32_t dialog_counts_total(const struct dialog_counts *n);

/* dialog_ctl.c: the table in the control API and the metrics */
typedef int (dialog_ctl_hangup_h)(struct dialog *dlg, const char **nodep,
				  void *arg);

int  dialog_ctl_init(void);
void dialog_ctl_set_hangup_handler(dialog_ctl_hangup_h *h, void *arg);

/* dialog_log.c: lines about one dialog start "did=<hex> callid=<Call-ID>: " */
void dialog_log(enum log_level level, const char *mod,
		const struct dialog *dlg, const char *fmt, ...);
void dialog_log_did(enum log_level level, const char *mod, uint64_t did,
		    const char *fmt, ...);

#endif
