/**
 * @file policy_fixture.h  The policy tests' fake engine, files and loop
 *
 * spy_*: the fake engine ops, which log what the policy asked for, and
 * the Lua prelude (spy_lua) that gives a policy spy(k, v) to report
 * "k=v" through rehome.release(). fixture_*: the policy file of the test,
 * the libre loop run until a condition holds, the setup and teardown.
 * Include it after <check.h>, <re.h> and "policy.h".
 */

struct spy_pending {
	policy_done_h *h;
	void *arg;
};

struct spy {
	char log[16384];                /* one line per report or action */
	struct spy_pending take, rehome, move;
	char dialogs_tag[64];
	uint32_t dialogs_limit;
};

extern struct spy spy;
extern const struct policy_ops spy_ops;
extern const char spy_lua[];
extern char fixture_path[128];          /* the policy file */
extern char fixture_libdir[512];        /* the source tree's lua/ */
extern struct tmr fixture_action;       /* the test's own, cancelled after */

bool spy_has(const char *line);
size_t spy_count(const char *line);
bool spy_loaded_twice(void);
int spy_release(const char *tag, void *arg);
void spy_add_obj(struct odict *to, const char *key, int type,
		 struct odict *od);

int  fixture_main(Suite *suite);
void fixture_setup(void);
void fixture_teardown(void);
void fixture_write_file(const char *file, const char *src);
void fixture_rename_replace(const char *src);
int  fixture_start(const char *src);
void fixture_other_path(char *buf, size_t sz);
bool fixture_run_until(bool (*cond)(void), uint64_t ms);
bool fixture_never(void);
double fixture_cpu_ms(void);
int  fixture_invite_decide(struct policy_decision *out);
void fixture_assert_error_has(const char *what);
