/**
 * @file metrics.h  Counters and gauges, exported in Prometheus text format
 */

/* SIP path: called per message, never allocate */
void metrics_sip_request(const struct pl *method);
void metrics_sip_response(uint16_t scode);          /* sent by the engine */
void metrics_sip_response_received(uint16_t scode);

/* cluster */
void metrics_repl_sent(void);
void metrics_repl_received(void);
void metrics_repl_dropped(const char *reason);
void metrics_redis_up(bool up);
void metrics_shtag_set(const char *tag, uint64_t epoch, bool active);

/* moving calls and policy */
void metrics_rehome_result(const char *outcome, const char *reason);
void metrics_policy_event(const char *what);

int  metrics_print(struct re_printf *pf);

enum { METRICS_DIALOG_STATES = 3 };  /* early, confirmed, ended */

/** Dialogs of one sharing tag in the table, counted on demand */
struct metrics_shtag_dialogs {
	struct le le;
	char *shtag;                            /* "" when none */
	uint32_t state[METRICS_DIALOG_STATES];  /* served by this node */
	uint32_t replicas;                      /* held for other nodes */
};

int metrics_dialogs_by_shtag(struct list *shtags);
