/**
 * @file repl_peer.h  Fixture of the repl tests: n1 here, n2 played by the test
 *
 * fixture_*: a redis-server of the test's own, the cluster config of n1
 * and the libre loop run until a condition holds. peer_*: what the other
 * node (n2) writes and reads, over a blocking hiredis connection.
 * Include it after <check.h>, <hiredis/hiredis.h>, <re.h> and the core
 * headers through "repl.h".
 */

typedef bool (fixture_cond_h)(void);

extern uint16_t fixture_port;
extern struct rh_conf fixture_cfg;
extern uint64_t fixture_did;       /* fixture_key_exists() looks for it */
extern struct dialog *peer_dlg;    /* n2's dialog peer_applied() looks for */

int  fixture_main(Suite *suite);
void fixture_setup(void);
void fixture_teardown(void);
void fixture_redis_start(void);
void fixture_redis_stop(void);
bool fixture_redis_down(void);
bool fixture_run_until(fixture_cond_h *cond, uint32_t ms);
void fixture_run_for(uint32_t ms);
void fixture_node_start(void);
bool fixture_synced(void);
bool fixture_synced_active_a(void);
int64_t fixture_repl_counter(const char *name);
void fixture_set_str(char **dst, const char *s);
void fixture_set_id(struct dialog *dlg, enum dialog_id id, const char *s);
struct dialog *fixture_dialog(uint64_t did, const char *tag,
			      const char *owner);
bool fixture_key_exists(void);
bool fixture_key_gone(void);

void peer_cmd_ok(const char *fmt, ...);
void peer_cmd_str(char *buf, size_t sz, const char *fmt, ...);
long long peer_cmd_int(const char *fmt, ...);
uint64_t peer_snapshot_ver(uint64_t did);
void peer_snapshot_rec(char *buf, size_t sz, uint64_t did);
char *peer_msg(const struct dialog *dlg, const char *ev, uint64_t epoch);
char *peer_record(const struct dialog *dlg);
void peer_publish(const struct dialog *dlg, const char *ev, uint64_t epoch);
void peer_snapshot(const struct dialog *dlg);
void peer_snapshot_message(const struct dialog *dlg, uint64_t epoch);
void peer_snapshot_hash(const struct dialog *dlg, uint64_t epoch);
void peer_heartbeat(void);
bool peer_take(const char *name, uint64_t want);
bool peer_applied(void);
