/**
 * @file policy.c  Lua policy host: the running policy, hot reload
 *
 * The host keeps at most one running policy, a Lua state made from the
 * policy file (policy_state.c, which also explains the sandbox, the memory
 * limit and the instruction budget). The engine calls its hooks
 * (policy_hooks.c); the policy calls the engine back through the `rehome`
 * module (policy_bindings.c). Every call into the policy that fails, for
 * whatever reason, is reported here: its error is logged with its
 * file:line, counted, kept for the status, and the caller applies the
 * default behaviour.
 *
 * Reload builds a complete new state and runs its load-time code, then
 * hands it what the old one returns from on_unload (policy_handover.c);
 * only if that succeeds is the old state dropped, with its timers and the
 * callbacks of its pending actions. A state that stays full of the policy's own data
 * after an overrun (memory, or a budget: filling 64 MiB may well take more
 * CPU time than a call has) is replaced the same way, by a fresh load of
 * the same file.
 *
 * The file is watched through its directory (editors that write a new file
 * and rename it over the old one replace the inode a file watch would
 * follow). A file being written is not loaded: after the last event the
 * file must keep its size and modification time for POLICY_SETTLE_MS, so
 * a save in several writes is loaded once, whole; and even then it only
 * replaces the running policy if it loads. POST /v1/policy/reload reloads
 * too, and GET /v1/status shows the policy. The engine reloads it with
 * its configuration (SIGHUP), and may point it at another file
 * (policy_set_file()).
 *
 * Trade-off: one state per node, so hooks run one at a time on the SIP
 * loop.
 */
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <uv.h>
#include <re.h>
#include <lua.h>
#include "log.h"
#include "conf.h"
#include "uvre.h"
#include "metrics.h"
#include "ctl.h"
#include "policy.h"
#include "policy_int.h"

/** The file as last seen: a save under way changes one or the other */
struct stamp {
	bool exists;
	off_t size;
	struct timespec mtime;
};

static struct {
	struct policy_ops ops;
	char *path;              /* NULL: no policy configured */
	const char *base;        /* file name part of path     */
	char *libdir;
	struct policy_state *ps; /* the running policy, or NULL */
	struct tmr tick;
	struct tmr settle;       /* the file must stay unchanged till then */
	struct tmr refresh;      /* fresh load of a state left full */
	struct stamp seen;       /* at the last event or check */
	uv_fs_event_t *watch;
	char last_err[POLICY_ERR_SZ];
	char hash[POLICY_HASH_SZ];  /* of the running policy's file */
	uint64_t loaded_at;      /* Unix ms; 0: none runs */
	policy_loaded_h *loadedh;
	void *loaded_arg;
	policy_cluster_reload_h *clusterh;
	void *cluster_arg;
} pol;


/** The running policy, or NULL; it changes only on reload and close */
struct policy_state *policy_running(void)
{
	return pol.ps;
}


/** What a second state beside the running one needs (policy_sim.c) */
void policy_host(const struct policy_ops **opsp, const char **pathp,
		 const char **libdirp)
{
	*opsp = &pol.ops;
	*pathp = pol.path;
	*libdirp = pol.libdir;
}


/* ---- loading and reloading ---- */


/** A new state runs (path NULL: none any more): tell who compares them */
static void loaded(const char *path)
{
	struct timeval tv;
	int err;

	pol.hash[0] = '\0';
	pol.loaded_at = 0;
	if (path) {
		err = policy_hash_file(pol.hash, sizeof(pol.hash), path);
		if (err)
			log_warn("policy", "%s: no hash: %m", path, err);
		gettimeofday(&tv, NULL);
		pol.loaded_at = (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	}

	if (pol.loadedh)
		pol.loadedh(pol.hash, pol.loaded_arg);
}

/**
 * Load the policy file into a fresh state; the running one is only
 * replaced if that works. A refresh (a state full of the policy's own
 * data, not a new file) keeps the hooks' back-off and the error that
 * caused it; any other reload starts clean, the file may have been fixed.
 */
static int reload(char *errbuf, size_t errsz, bool refresh)
{
	struct policy_state *ps;
	int err;

	if (!errbuf || !errsz)
		return EINVAL;

	if (!pol.path) {
		str_ncpy(errbuf, "no policy configured", errsz);
		return ENOENT;
	}

	if (pol.ps && pol.ps->depth) {
		str_ncpy(errbuf, "policy is running a hook", errsz);
		return EBUSY;
	}

	err = policy_state_load(&ps, pol.path, pol.libdir, &pol.ops,
				errbuf, errsz);
	if (!err) {
		if (!refresh)
			pol.last_err[0] = '\0';  /* on_unload may set it */
		err = policy_handover(ps, pol.ps, errbuf, errsz);
		if (err)
			mem_deref(ps);
	}
	if (err) {
		log_warn("policy", "%s not loaded: %s%s", pol.path, errbuf,
			 pol.ps ? " (the previous policy keeps running)" : "");
		str_ncpy(pol.last_err, errbuf, sizeof(pol.last_err));
		metrics_policy_event("reload_failed");
		return err;
	}

	if (refresh && pol.ps)
		memcpy(ps->hold, pol.ps->hold, sizeof(ps->hold));

	mem_deref(pol.ps);
	pol.ps = ps;
	loaded(pol.path);
	log_info("policy", "loaded %s (sha256 %s)", pol.path, pol.hash);
	metrics_policy_event("reload_ok");

	return 0;
}


/** Load the policy file again; on failure errbuf holds the reason */
int policy_reload(char *errbuf, size_t errsz)
{
	return reload(errbuf, errsz, false);
}


const char *policy_last_error(void)
{
	return pol.last_err[0] ? pol.last_err : NULL;
}


const char *policy_path(void)
{
	return pol.path ? pol.path : "";
}


const char *policy_hash(void)
{
	return pol.hash;
}


uint64_t policy_loaded_at(void)
{
	return pol.loaded_at;
}


void policy_set_loaded_handler(policy_loaded_h *h, void *arg)
{
	pol.loadedh = h;
	pol.loaded_arg = arg;
}


void policy_set_cluster_reload_handler(policy_cluster_reload_h *h,
				       void *arg)
{
	pol.clusterh = h;
	pol.cluster_arg = arg;
}


static void reload_handler(void *arg)
{
	char msg[POLICY_ERR_SZ];
	(void)arg;

	(void)policy_reload(msg, sizeof(msg));
}


/** The same file again, for memory (see memory_check) */
static void refresh_handler(void *arg)
{
	char msg[POLICY_ERR_SZ];
	(void)arg;

	(void)reload(msg, sizeof(msg), true);
}


/* ---- failed calls into the policy ---- */

/** After an overrun: if the policy's own data fills the state, the next
 * call would fail the same way, so start again from the file. */
static void memory_check(struct policy_state *ps)
{
	if (tmr_isrunning(&pol.refresh))
		return;

	lua_gc(ps->L, LUA_GCCOLLECT);
	if (ps->mem < POLICY_MEM_LIMIT / 2)
		return;

	log_warn("policy", "state still holds %zu KiB after an overrun:"
		 " loading %s afresh", ps->mem / 1024, pol.path);
	tmr_start(&pol.refresh, 0, refresh_handler, NULL);
}


/** policy_state_run for hooks and callbacks: failures are reported here */
int policy_hook_run(struct policy_state *ps, const char *what,
		    lua_CFunction fn, void *ctx)
{
	int err = policy_state_run(ps, fn, ctx);

	if (!err)
		return 0;

	log_warn("policy", "%s: %s (default behaviour applies)", what,
		 ps->err);
	re_snprintf(pol.last_err, sizeof(pol.last_err), "%s: %s", what,
		    ps->err);
	metrics_policy_event(err == ETIMEDOUT ? "budget_exceeded"
					      : "hook_error");
	if (err == ENOMEM || err == ETIMEDOUT)
		memory_check(ps);

	return err;
}


/* ---- reload triggers: file watch, control API ---- */

static void handle_free(uv_handle_t *h)
{
	mem_deref(h);
}


static void handle_close(uv_handle_t *h)
{
	if (!h)
		return;

	if (!uvre_loop())
		mem_deref(h);  /* uvre_close() already closed every handle */
	else if (!uv_is_closing(h))
		uv_close(h, handle_free);
}


static void stamp_get(struct stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (stat(pol.path, &sb))
		return;

	st->exists = true;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
}


static bool stamp_equal(const struct stamp *a, const struct stamp *b)
{
	return a->exists == b->exists && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec &&
		a->mtime.tv_nsec == b->mtime.tv_nsec;
}


/** Quiet for POLICY_SETTLE_MS: load the file if it did not change since */
static void settle_handler(void *arg)
{
	struct stamp now;
	(void)arg;

	stamp_get(&now);
	if (!stamp_equal(&now, &pol.seen)) {
		pol.seen = now;
		tmr_start(&pol.settle, POLICY_SETTLE_MS, settle_handler, NULL);
		return;
	}

	/* removed (and not renamed over): wait for the new file's event */
	if (!now.exists) {
		log_warn("policy", "%s is gone: the running policy stays",
			 pol.path);
		return;
	}

	reload_handler(NULL);
}


static void watch_handler(uv_fs_event_t *h, const char *filename,
			  int events, int status)
{
	(void)h;
	(void)events;

	if (status < 0) {
		log_warn("policy", "watching %s: %s", pol.path,
			 uv_strerror(status));
		return;
	}

	if (filename && strcmp(filename, pol.base))
		return;

	stamp_get(&pol.seen);
	tmr_start(&pol.settle, POLICY_SETTLE_MS, settle_handler, NULL);
}


/** Watch the directory: a rename over the file is an event there too */
static int watch_start(uv_loop_t *loop)
{
	char *dir = NULL;
	int err;

	pol.watch = mem_zalloc(sizeof(*pol.watch), NULL);
	if (!pol.watch)
		return ENOMEM;

	err = -uv_fs_event_init(loop, pol.watch);
	if (err) {
		pol.watch = mem_deref(pol.watch);
		return err;
	}

	err = re_sdprintf(&dir, "%b", pol.path,
			  pol.base > pol.path ? (size_t)(pol.base - pol.path)
					      : (size_t)0);
	if (err)
		return err;

	err = -uv_fs_event_start(pol.watch, watch_handler,
				 dir[0] ? dir : ".", 0);
	if (err)
		log_error("policy", "cannot watch %s: %s", dir[0] ? dir : ".",
			  uv_strerror(-err));

	mem_deref(dir);
	return err;
}


static void reload_route(struct http_conn *conn, const struct ctl_req *req,
			 void *arg)
{
	struct odict *od = NULL;
	char msg[POLICY_ERR_SZ];
	bool cluster = false;
	int err;
	(void)arg;

	if (pl_isset(&req->rest)) {
		(void)ctl_reply_error(conn, 404, "not found");
		return;
	}

	if (req->body)
		(void)odict_get_boolean(req->body, &cluster, "cluster");
	if (cluster && pol.clusterh) {
		pol.clusterh(conn, pol.cluster_arg);
		return;
	}

	err = policy_reload(msg, sizeof(msg));
	if (err) {
		(void)ctl_reply_error(conn, !pol.path ? 404
					    : err == EBUSY ? 409 : 422,
				      "%s", msg);
		return;
	}

	err  = odict_alloc(&od, 4);
	err |= odict_entry_add(od, "reloaded", ODICT_BOOL, true);
	err |= odict_entry_add(od, "policy", ODICT_STRING, pol.path);
	err |= odict_entry_add(od, "hash", ODICT_STRING, pol.hash);
	if (err)
		(void)ctl_reply_error(conn, 500, "%m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** GET /v1/status: {"policy": {"path":, "loaded":, "hash":, "loaded_at":,
 * "last_error":}} */
static int status_add(struct odict *od, void *arg)
{
	struct odict *p = NULL;
	int err;
	(void)arg;

	err = odict_alloc(&p, 4);
	if (err)
		return err;

	err |= odict_entry_add(p, "path", ODICT_STRING,
			       pol.path ? pol.path : "");
	err |= odict_entry_add(p, "loaded", ODICT_BOOL, pol.ps != NULL);
	err |= odict_entry_add(p, "hash", ODICT_STRING, pol.hash);
	err |= odict_entry_add(p, "loaded_at", ODICT_INT,
			       (int64_t)pol.loaded_at);
	if (pol.last_err[0])
		err |= odict_entry_add(p, "last_error", ODICT_STRING,
				       pol.last_err);
	err |= odict_entry_add(od, "policy", ODICT_OBJECT, p);

	mem_deref(p);
	return err;
}


static int ctl_register(void)
{
	int err = ctl_route_add("POST", "/v1/policy/reload", reload_route,
				NULL);

	if (err == EALREADY)
		return 0;
	if (!err)
		err = policy_sim_register();

	if (!err)
		err = ctl_status_add(status_add, NULL);

	return err ? err : metrics_collector_add(policy_hash_metrics, NULL);
}


static void watch_stop(void)
{
	tmr_cancel(&pol.settle);
	handle_close((uv_handle_t *)pol.watch);
	pol.watch = NULL;
	uvre_kick();
}


/** A policy runs from pol.path: tick its hooks and watch its file */
static int follow(void)
{
	uv_loop_t *loop = uvre_loop();
	int err;

	if (!tmr_isrunning(&pol.tick))
		policy_tick_start(&pol.tick);

	watch_stop();
	if (!loop) {
		log_warn("policy", "no libuv loop: no reload on file changes");
		return 0;
	}

	err = watch_start(loop);
	uvre_kick();
	return err;
}


/** The names the host runs with; path NULL or "": no policy */
static int names_set(const char *path, const char *libdir)
{
	int err;

	pol.path = NULL;
	pol.base = NULL;
	err = str_dup(&pol.libdir, libdir ? libdir : REHOME_LUADIR);
	if (err || !str_isset(path))
		return err;

	err = str_dup(&pol.path, path);
	if (err)
		return err;

	pol.base = strrchr(pol.path, '/');
	pol.base = pol.base ? pol.base + 1 : pol.path;
	return 0;
}


/**
 * Run the policy in `path` from now on (NULL or "": none), as a reload of
 * the configuration asks. The file is loaded as a reload loads it, and on
 * failure nothing changes; the same file is simply reloaded.
 *
 * @return 0, or the error of the load with its reason in errbuf
 */
int policy_set_file(const char *path, const char *libdir, char *errbuf,
		    size_t errsz)
{
	char *opath = pol.path, *olibdir = pol.libdir;
	const char *obase = pol.base;
	int err;

	if (!pol.libdir || !errbuf || !errsz)
		return EINVAL;

	if (str_isset(path) && opath && !strcmp(path, opath) &&
	    !strcmp(libdir ? libdir : REHOME_LUADIR, olibdir))
		return policy_reload(errbuf, errsz);

	if (!str_isset(path) && !opath)
		return 0;

	pol.libdir = NULL;
	err = names_set(path, libdir);
	if (err)
		(void)re_snprintf(errbuf, errsz, "%m", err);
	else if (pol.path)
		err = reload(errbuf, errsz, false);
	if (err) {
		mem_deref(pol.path);
		mem_deref(pol.libdir);
		pol.path   = opath;
		pol.libdir = olibdir;
		pol.base   = obase;
		return err;
	}

	/* the old state is gone before the library directory it points at */
	if (!pol.path) {
		pol.ps = mem_deref(pol.ps);
		pol.last_err[0] = '\0';
		loaded(NULL);
		tmr_cancel(&pol.tick);
		watch_stop();
		log_info("policy", "no policy any more (%s dropped)", opath);
	}
	tmr_cancel(&pol.refresh);  /* it was for the old file */
	mem_deref(opath);
	mem_deref(olibdir);

	return pol.path ? follow() : 0;
}


/**
 * Start the policy host and load the policy. A policy that does not load
 * is an error here (the node should not start with it); later reloads
 * keep the old policy instead.
 */
int policy_init(const char *path, const char *libdir,
		const struct policy_ops *ops)
{
	char msg[POLICY_ERR_SZ];
	int err;

	if (pol.libdir)
		return EALREADY;

	if (ops)
		pol.ops = *ops;

	tmr_init(&pol.tick);
	tmr_init(&pol.settle);
	tmr_init(&pol.refresh);

	err = names_set(path, libdir);
	if (err)
		goto out;

	err = ctl_register();
	if (err || !pol.path)
		goto out;

	err = policy_reload(msg, sizeof(msg));
	if (err)
		goto out;

	err = follow();

 out:
	if (err)
		policy_close();

	return err;
}


void policy_close(void)
{
	tmr_cancel(&pol.tick);
	tmr_cancel(&pol.refresh);
	watch_stop();

	pol.ps     = mem_deref(pol.ps);
	pol.path   = mem_deref(pol.path);
	pol.libdir = mem_deref(pol.libdir);
	pol.base   = NULL;
	memset(&pol.ops, 0, sizeof(pol.ops));
	pol.last_err[0] = '\0';
	pol.hash[0] = '\0';
	pol.loaded_at = 0;
	pol.loadedh = NULL;
	pol.clusterh = NULL;
}
