/**
 * @file metrics.h  Counters, gauges and histograms, exported in Prometheus text format
 */

/* SIP path: called per message, never allocate */
void metrics_sip_request(const struct pl *method);
void metrics_sip_response(uint16_t scode);          /* sent by the engine */
void metrics_sip_response_received(uint16_t scode);
void metrics_call_started(void);

/* cluster: printed only where the cluster prints them (a node without
 * Redis shows none), through metrics_cluster_print */
void metrics_repl_sent(void);
void metrics_repl_received(void);
void metrics_repl_dropped(const char *reason);
void metrics_repl_lag(uint64_t us);
void metrics_redis_up(bool up);
void metrics_shtag_set(const char *tag, uint64_t epoch, bool active);

/* moving calls and policy */
void metrics_rehome_result(const char *outcome, const char *reason);
void metrics_rehome_duration(const char *outcome, uint64_t ms);
void metrics_policy_event(const char *what);

int  metrics_print(struct re_printf *pf);
int  metrics_cluster_print(struct re_printf *pf);

/**
 * A collector prints families of its own at the end of the exposition
 * (metrics_family_print, then its samples): counts a module above ctl
 * takes on demand, such as the dialogs by tag and state.
 */
typedef int (metrics_collector_h)(struct re_printf *pf, void *arg);

int  metrics_collector_add(metrics_collector_h *h, void *arg);
void metrics_close(void);
int  metrics_family_print(struct re_printf *pf, const char *name,
			  const char *type, const char *help);
int  metrics_label_print(struct re_printf *pf, void *arg);
int  metrics_labels_print(struct re_printf *pf, void *arg);

/* metrics_process.c: process_* from /proc/self */
int  metrics_process_print(struct re_printf *pf);

/* metrics_heap.c: rehome_heap_bytes from the C library's allocator */
int  metrics_heap_print(struct re_printf *pf);
