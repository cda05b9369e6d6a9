/**
 * @file rehomectl.c  Command-line client of the rehomed control API
 *
 * Each command is one HTTP call (plus polling for long operations) made
 * with libre's HTTP client from a private re_main loop. The loop runs only
 * while a call is in flight or while waiting between polls, so the program
 * reads top to bottom like a synchronous client; a libre timer bounds every
 * call (5 s) and SIGINT/SIGTERM stop the wait cleanly.
 *
 * Output: --json prints the server's JSON as received, for scripts.
 * Otherwise a generic renderer turns any reply object into "key value"
 * lines and tables (an array or map of objects becomes a table), so keys
 * that other modules add to /v1/status later show up without a change
 * here; only the dialog list and job summaries have their own layout.
 *
 * Exit status: 0 success, 1 failed operation (including an unreachable
 * node, a refused token and a job with failed dialogs), 2 bad usage.
 * Names (tags, nodes) are checked against the config's charset so they
 * can go into paths and queries without escaping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <getopt.h>
#include <unistd.h>
#include <re.h>

enum {
	EXIT_OK      = 0,
	EXIT_FAILED  = 1,
	EXIT_USAGE   = 2,
	TIMEOUT_MS   = 5000,
	POLL_MS      = 200,
	TABLE_COLS   = 12,
	BAR_WIDTH    = 30,
	CTL_PORT     = 8060,
};

enum opt_bit {
	OPT_TAG     = 1 << 0,
	OPT_LIMIT   = 1 << 1,
	OPT_MODE    = 1 << 2,
	OPT_BODY    = 1 << 3,
	OPT_RATE    = 1 << 4,
	OPT_TO      = 1 << 5,
	OPT_COUNT   = 1 << 6,
	OPT_PERCENT = 1 << 7,
};

/** The command line, parsed */
struct args {
	const char *word[4];   /* command words */
	int nword;
	const char *tag;       /* positional T, or --tag */
	const char *mode;
	const char *body;
	const char *to;
	uint32_t limit, rate, count, percent;
	unsigned given;        /* enum opt_bit */
};

/** The connection to one rehomed and the last reply */
struct client {
	struct sa srv;
	const char *token;
	bool json;
	struct dnsc *dnsc;
	struct http_cli *http;
	struct http_req *req;
	struct tmr tmr;
	bool interrupted;
	int err;               /* transport error of the last call */
	uint16_t scode;
	struct mbuf *body;     /* body of the last reply */
};

typedef int (cmd_h)(struct client *cl, const struct args *a);

struct command {
	const char *word;
	const char *sub;       /* required second word, or NULL */
	bool takes_tag;        /* positional T after the words */
	unsigned opts;         /* options it accepts */
	cmd_h *run;
};

/** One row of a table: a cell per column, allocated strings */
struct row {
	struct le le;
	char *cell[TABLE_COLS];
};

struct table {
	const char *head[TABLE_COLS];
	size_t width[TABLE_COLS];
	size_t ncol;
	struct list rows;
};

static const char *modes[] = {
	"challenge", "challenge-callee", "caller", "callee", "update", NULL
};
static const char *bodies[] = {"outbound", "inbound", "none", NULL};

static struct client *the_client;  /* for the signal handler */


static void row_destructor(void *arg)
{
	struct row *row = arg;

	list_unlink(&row->le);
	for (size_t i = 0; i < TABLE_COLS; i++)
		mem_deref(row->cell[i]);
}


static void usage(FILE *f)
{
	(void)re_fprintf(f,
	"usage: rehomectl [-s IP:PORT] [-t TOKEN] [--json] COMMAND\n"
	"\n"
	"  -s, --server IP:PORT  control API of the node (default "
	"127.0.0.1:8060)\n"
	"  -t, --token TOKEN     bearer token (default: $REHOME_TOKEN)\n"
	"      --json            print the server's JSON\n"
	"\n"
	"commands:\n"
	"  status\n"
	"  dialogs [--tag T] [--limit N]\n"
	"  shtag activate T\n"
	"  shtag release T\n"
	"  rehome T [--mode M] [--body B] [--rate R]\n"
	"        M: challenge (default), challenge-callee, caller, callee,"
	" update\n"
	"        B: outbound (default), inbound, none\n"
	"  move T --to NODE (--count N | --percent P)\n"
	"  drain [--to NODE]\n"
	"  policy reload\n"
	"\n"
	"exit status: 0 success, 1 failed operation, 2 bad usage\n");
}


/** The problem, then the usage text, on stderr; returns EXIT_USAGE */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)re_fprintf(stderr, "rehomectl: %v\n\n", fmt, &ap);
	va_end(ap);

	usage(stderr);
	return EXIT_USAGE;
}


/* ---- the HTTP call ---- */

static void signal_handler(int sig)
{
	(void)sig;

	if (the_client)
		the_client->interrupted = true;
	re_cancel();
}


static void timeout_handler(void *arg)
{
	struct client *cl = arg;

	cl->err = ETIMEDOUT;
	cl->req = mem_deref(cl->req);
	re_cancel();
}


static void resp_handler(int err, const struct http_msg *msg, void *arg)
{
	struct client *cl = arg;

	tmr_cancel(&cl->tmr);
	cl->err = err;
	if (!err && msg) {
		cl->scode = msg->scode;
		cl->body  = mem_ref(msg->mb);
	}
	re_cancel();
}


static int auth_print(struct re_printf *pf, void *arg)
{
	const struct client *cl = arg;

	if (!str_isset(cl->token))
		return 0;

	return re_hprintf(pf, "Authorization: Bearer %s\r\n", cl->token);
}


static int json_print(struct re_printf *pf, void *arg)
{
	return arg ? json_encode_odict(pf, arg) : 0;
}


/** One request; the reply lands in cl->scode and cl->body */
static int http_call(struct client *cl, const char *met, const char *path,
		     const struct odict *body)
{
	char uri[512], *content = NULL;
	int err;

	cl->body  = mem_deref(cl->body);
	cl->scode = 0;
	cl->err   = 0;

	err = re_sdprintf(&content, "%H", json_print, (void *)body);
	if (err)
		return err;

	(void)re_snprintf(uri, sizeof(uri), "http://%J%s", &cl->srv, path);

	err = http_request(&cl->req, cl->http, met, uri, resp_handler, NULL,
			   cl,
			   "%H"
			   "Accept: application/json\r\n"
			   "%s"
			   "Content-Length: %zu\r\n"
			   "\r\n"
			   "%s",
			   auth_print, cl,
			   body ? "Content-Type: application/json\r\n" : "",
			   str_len(content), content);
	mem_deref(content);
	if (err)
		return err;

	tmr_start(&cl->tmr, TIMEOUT_MS, timeout_handler, cl);
	(void)re_main(signal_handler);
	tmr_cancel(&cl->tmr);
	cl->req = mem_deref(cl->req);

	if (cl->interrupted)
		return EINTR;

	return cl->err;
}


static void wait_handler(void *arg)
{
	(void)arg;
	re_cancel();
}


/** Sleep in the loop, so that a signal still ends the wait */
static bool wait_ms(struct client *cl, uint64_t ms)
{
	tmr_start(&cl->tmr, ms, wait_handler, NULL);
	(void)re_main(signal_handler);
	tmr_cancel(&cl->tmr);

	return !cl->interrupted;
}


static const char *error_text(const struct odict *od)
{
	const char *s = od ? odict_string(od, "error") : NULL;

	return s ? s : "";
}


/**
 * Make a call and judge it: on success *odp is the reply object; on
 * failure the reason is on stderr and the exit status is returned.
 */
static int call(struct client *cl, const char *met, const char *path,
		const struct odict *body, struct odict **odp)
{
	struct odict *od = NULL;
	int err;

	err = http_call(cl, met, path, body);
	if (err == EINTR) {
		(void)re_fprintf(stderr, "rehomectl: interrupted\n");
		return EXIT_FAILED;
	}
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: cannot reach rehomed at "
				 "%J: %m\n", &cl->srv, err);
		return EXIT_FAILED;
	}

	if (cl->body && mbuf_get_left(cl->body))
		(void)json_decode_odict(&od, 32,
					(const char *)mbuf_buf(cl->body),
					mbuf_get_left(cl->body), 16);

	if (cl->scode == 401) {
		(void)re_fprintf(stderr, "rehomectl: bad or missing token "
				 "(use -t TOKEN or REHOME_TOKEN)\n");
		goto fail;
	}
	if (cl->scode >= 300) {
		(void)re_fprintf(stderr, "rehomectl: %s%s(HTTP %u)\n",
				 error_text(od), od ? " " : "", cl->scode);
		goto fail;
	}
	if (!od) {
		(void)re_fprintf(stderr, "rehomectl: reply is not JSON\n");
		return EXIT_FAILED;
	}

	*odp = od;
	return EXIT_OK;

 fail:
	mem_deref(od);
	return EXIT_FAILED;
}


static void json_out(const struct client *cl)
{
	const struct mbuf *mb = cl->body;
	size_t len = mb ? mbuf_get_left(mb) : 0;

	if (!len)
		return;

	(void)fwrite(mbuf_buf(mb), 1, len, stdout);
	if (mbuf_buf(mb)[len - 1] != '\n')
		(void)fputc('\n', stdout);
}


/* ---- human-readable output ---- */

static bool is_container(const struct odict_entry *e)
{
	return e->type == ODICT_OBJECT || e->type == ODICT_ARRAY;
}


/** A scalar as text: strings as they are, null as "-" */
static int scalar_print(struct re_printf *pf, void *arg)
{
	const struct odict_entry *e = arg;

	switch (e->type) {

	case ODICT_STRING: return re_hprintf(pf, "%s", e->u.str);
	case ODICT_INT:    return re_hprintf(pf, "%lld",
					     (long long)e->u.integer);
	case ODICT_DOUBLE: return re_hprintf(pf, "%f", e->u.dbl);
	case ODICT_BOOL:   return re_hprintf(pf, "%s",
					     e->u.boolean ? "yes" : "no");
	case ODICT_NULL:   return re_hprintf(pf, "-");
	default:           return re_hprintf(pf, "...");
	}
}


static int value_print(struct re_printf *pf, void *arg)
{
	const struct odict_entry *e = arg;
	uint32_t secs;

	if (e->type == ODICT_INT && !str_cmp(e->key, "uptime")) {
		secs = (uint32_t)e->u.integer;
		return secs ? fmt_human_time(pf, &secs) :
			re_hprintf(pf, "0 secs");
	}

	return scalar_print(pf, arg);
}


static void table_col(struct table *t, const char *head)
{
	if (t->ncol == TABLE_COLS)
		return;

	t->head[t->ncol] = head;
	t->width[t->ncol] = str_len(head);
	t->ncol++;
}


static struct row *table_row(struct table *t)
{
	struct row *row = mem_zalloc(sizeof(*row), row_destructor);

	if (row)
		list_append(&t->rows, &row->le, row);

	return row;
}


static void cell_set(struct table *t, struct row *row, size_t col,
		     const char *fmt, ...)
{
	va_list ap;

	if (!row || col >= t->ncol)
		return;

	va_start(ap, fmt);
	(void)re_vsdprintf(&row->cell[col], fmt, ap);
	va_end(ap);

	t->width[col] = max(t->width[col], str_len(row->cell[col]));
}


/** A cell left-justified in `width` columns, upper case for headers */
static void cell_print(const char *s, size_t width, bool upper)
{
	size_t n = 0;

	for (; s[n]; n++)
		(void)putchar(upper ? toupper((unsigned char)s[n]) : s[n]);
	for (; n < width; n++)
		(void)putchar(' ');
}


/** Print the table and empty it */
static void table_print(struct table *t, const char *title)
{
	struct le *le;
	size_t i;

	if (title)
		(void)re_printf("\n%s\n", title);

	for (i = 0; i < t->ncol; i++)
		cell_print(t->head[i], i + 1 < t->ncol ? t->width[i] + 2 : 0,
			   true);
	(void)putchar('\n');

	for (le = t->rows.head; le; le = le->next) {
		const struct row *row = le->data;

		for (i = 0; i < t->ncol; i++)
			cell_print(row->cell[i] ? row->cell[i] : "",
				   i + 1 < t->ncol ? t->width[i] + 2 : 0,
				   false);
		(void)putchar('\n');
	}

	list_flush(&t->rows);
}


/** Non-empty, and every value is an object: worth a table */
static bool is_table(const struct odict_entry *e)
{
	struct le *le;

	if (!is_container(e) || !e->u.odict->lst.head)
		return false;

	for (le = e->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *v = le->data;

		if (v->type != ODICT_OBJECT)
			return false;
	}

	return true;
}


/** A table from an array or a map of objects; maps get a name column */
static void entry_table_print(const struct odict_entry *e, const char *title)
{
	const struct odict_entry *first = e->u.odict->lst.head->data;
	bool named = e->type == ODICT_OBJECT;
	struct table t = {0};
	struct le *le, *ce;

	if (named)
		table_col(&t, "name");
	for (ce = first->u.odict->lst.head; ce; ce = ce->next) {
		const struct odict_entry *c = ce->data;

		if (!is_container(c))
			table_col(&t, c->key);
	}

	for (le = e->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *obj = le->data;
		struct row *row = table_row(&t);

		if (named)
			cell_set(&t, row, 0, "%s", obj->key);

		for (size_t i = named; i < t.ncol; i++) {
			const struct odict_entry *c;

			c = odict_lookup(obj->u.odict, t.head[i]);
			if (c && !is_container(c))
				cell_set(&t, row, i, "%H", value_print, c);
		}
	}

	table_print(&t, title);
}


/** Scalars of a container on one line: "key  a 1, b 2" */
static void inline_print(const struct odict_entry *e)
{
	const char *sep = "";
	struct le *le;

	if (is_table(e) || !e->u.odict->lst.head)
		return;

	(void)re_printf("%-10s ", e->key);
	for (le = e->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *v = le->data;

		if (is_container(v))
			continue;

		if (e->type == ODICT_ARRAY)
			(void)re_printf("%s%H", sep, value_print, v);
		else
			(void)re_printf("%s%s %H", sep, v->key, value_print, v);
		sep = ", ";
	}
	(void)re_printf("\n");
}


/** Tables for the nested containers; titles are the key path */
static void tables_print(const struct odict *od, const char *path)
{
	struct le *le;

	for (le = od->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;
		char title[128];

		if (!is_container(e))
			continue;

		(void)re_snprintf(title, sizeof(title), "%s%s%s",
				  path, *path ? " " : "", e->key);

		if (is_table(e))
			entry_table_print(e, title);
		else if (e->type == ODICT_OBJECT)
			tables_print(e->u.odict, title);
	}
}


/** Any reply object, for people */
static void object_print(const struct odict *od)
{
	struct le *le;

	for (le = od->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (is_container(e))
			inline_print(e);
		else
			(void)re_printf("%-10s %H\n", e->key, value_print, e);
	}

	tables_print(od, "");
}


static const char *leg_target(const struct odict *legs, const char *leg)
{
	const struct odict_entry *e = odict_lookup(legs, leg);
	const char *s;

	if (!e || e->type != ODICT_OBJECT)
		return "-";

	s = odict_string(e->u.odict, "target");
	return s ? s : "-";
}


static const char *str_or_dash(const struct odict *od, const char *key)
{
	const char *s = odict_string(od, key);

	return s ? s : "-";
}


/** One line per dialog */
static void dialogs_print(const struct odict *od)
{
	const struct odict_entry *arr = odict_lookup(od, "dialogs");
	const char *cols[] = {"did", "state", "shtag", "owner", "callid",
			      "caller", "callee"};
	struct table t = {0};
	bool truncated = false;
	struct le *le;

	if (!arr || arr->type != ODICT_ARRAY || !arr->u.odict->lst.head) {
		(void)re_printf("no dialogs\n");
		return;
	}

	for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
		table_col(&t, cols[i]);

	for (le = arr->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;
		const struct odict_entry *legs;
		struct row *row;

		if (e->type != ODICT_OBJECT)
			continue;

		row  = table_row(&t);
		legs = odict_lookup(e->u.odict, "legs");
		for (size_t i = 0; i < 5; i++)
			cell_set(&t, row, i, "%s",
				 str_or_dash(e->u.odict, cols[i]));

		if (legs && legs->type == ODICT_OBJECT) {
			cell_set(&t, row, 5, "%s",
				 leg_target(legs->u.odict, "caller"));
			cell_set(&t, row, 6, "%s",
				 leg_target(legs->u.odict, "callee"));
		}
	}

	table_print(&t, NULL);

	if (odict_get_boolean(od, &truncated, "truncated") && truncated)
		(void)re_fprintf(stderr, "(more dialogs not shown; "
				 "raise --limit)\n");
}


/* ---- long operations ---- */

static uint64_t job_num(const struct odict *job, const char *key)
{
	uint64_t n = 0;

	(void)odict_get_number(job, &n, key);
	return n;
}


static bool job_running(const struct odict *job)
{
	return !str_cmp(odict_string(job, "state"), "running");
}


static void progress_print(const struct odict *job)
{
	uint64_t total = job_num(job, "total");
	uint64_t moved = job_num(job, "moved");
	uint64_t failed = job_num(job, "failed");
	uint64_t fill = total ? (moved + failed) * BAR_WIDTH / total
		: BAR_WIDTH;
	char bar[BAR_WIDTH + 1];

	fill = min(fill, (uint64_t)BAR_WIDTH);
	memset(bar, '#', fill);
	memset(bar + fill, '.', BAR_WIDTH - fill);
	bar[BAR_WIDTH] = '\0';

	(void)re_fprintf(stderr, "\r[%s] %llu/%llu  moved %llu  failed %llu ",
			 bar, (unsigned long long)(moved + failed),
			 (unsigned long long)total,
			 (unsigned long long)moved,
			 (unsigned long long)failed);
}


/** Why the job as a whole failed, or NULL */
static const char *job_error(const struct odict *job)
{
	const char *s = odict_string(job, "error");

	return str_isset(s) ? s : NULL;
}


static void summary_print(const struct odict *job, const char *what)
{
	const struct odict_entry *reasons = odict_lookup(job, "reasons");
	struct le *le;

	(void)re_printf("%s: %llu moved, %llu failed, of %llu\n", what,
			(unsigned long long)job_num(job, "moved"),
			(unsigned long long)job_num(job, "failed"),
			(unsigned long long)job_num(job, "total"));

	if (job_error(job))
		(void)re_printf("  error: %s\n", job_error(job));

	if (!reasons || reasons->type != ODICT_OBJECT)
		return;

	for (le = reasons->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *r = le->data;

		(void)re_printf("  %-24s %H\n", r->key, scalar_print, r);
	}
}


/**
 * Follow a job until it is no longer running: a progress bar on a
 * terminal, then the summary. Consumes `job`.
 */
static int job_follow(struct client *cl, struct odict *job, const char *what)
{
	const bool bar = isatty(STDERR_FILENO);
	const struct odict_entry *id = odict_lookup(job, "job");
	char path[96];
	int ret = EXIT_OK;

	(void)re_snprintf(path, sizeof(path), "/v1/jobs/%H",
			  scalar_print, (void *)id);

	while (job_running(job)) {
		struct odict *next = NULL;

		if (bar)
			progress_print(job);

		if (!wait_ms(cl, POLL_MS)) {
			ret = EXIT_FAILED;
			break;
		}

		ret = call(cl, "GET", path, NULL, &next);
		if (ret)
			break;

		mem_deref(job);
		job = next;
	}

	if (bar)
		(void)re_fprintf(stderr, "\r\033[K");  /* erase the bar */

	if (ret) {
		(void)re_fprintf(stderr, "rehomectl: stopped following %s; "
				 "the job may still run on the server\n",
				 path);
		goto out;
	}

	if (cl->json)
		json_out(cl);
	else
		summary_print(job, what);

	ret = job_num(job, "failed") || job_error(job) ? EXIT_FAILED : EXIT_OK;

 out:
	mem_deref(job);
	return ret;
}


/** Print a reply the usual way; a job reply is followed to its end */
static int reply_out(struct client *cl, struct odict *od, const char *what)
{
	if (odict_lookup(od, "job"))
		return job_follow(cl, od, what);

	if (cl->json)
		json_out(cl);
	else
		object_print(od);

	mem_deref(od);
	return EXIT_OK;
}


static int post(struct client *cl, const char *path, const struct odict *body,
		const char *what)
{
	struct odict *od = NULL;
	int ret;

	ret = call(cl, "POST", path, body, &od);
	if (ret)
		return ret;

	return reply_out(cl, od, what);
}


/* ---- commands ---- */

static int cmd_status(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	int ret;
	(void)a;

	ret = call(cl, "GET", "/v1/status", NULL, &od);
	if (ret)
		return ret;

	return reply_out(cl, od, "status");
}


static int cmd_dialogs(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	char path[256];
	int ret;

	(void)re_snprintf(path, sizeof(path), "/v1/dialogs?limit=%u%s%s",
			  a->given & OPT_LIMIT ? a->limit : 100,
			  a->tag ? "&tag=" : "", a->tag ? a->tag : "");

	ret = call(cl, "GET", path, NULL, &od);
	if (ret)
		return ret;

	if (cl->json)
		json_out(cl);
	else
		dialogs_print(od);

	mem_deref(od);
	return EXIT_OK;
}


static int cmd_shtag(struct client *cl, const struct args *a)
{
	char path[160], what[160];

	(void)re_snprintf(path, sizeof(path), "/v1/shtags/%s/%s",
			  a->tag, a->word[1]);
	(void)re_snprintf(what, sizeof(what), "shtag %s %s",
			  a->word[1], a->tag);

	return post(cl, path, NULL, what);
}


static int str_opt(struct odict *od, const char *key, const char *val)
{
	return val ? odict_entry_add(od, key, ODICT_STRING, val) : 0;
}


static int int_opt(struct odict *od, const struct args *a, unsigned bit,
		   const char *key, uint32_t val)
{
	return (a->given & bit) ?
		odict_entry_add(od, key, ODICT_INT, (int64_t)val) : 0;
}


/** POST a JSON body built from the options, then follow the job */
static int job_post(struct client *cl, const struct args *a, const char *path,
		    const char *what)
{
	struct odict *od = NULL;
	int err, ret;

	err = odict_alloc(&od, 8);
	if (err)
		goto out;

	err |= str_opt(od, "tag", a->tag);
	err |= str_opt(od, "mode", a->mode);
	err |= str_opt(od, "body", a->body);
	err |= int_opt(od, a, OPT_RATE, "rate", a->rate);
	err |= str_opt(od, "to", a->to);
	err |= int_opt(od, a, OPT_COUNT, "count", a->count);
	err |= int_opt(od, a, OPT_PERCENT, "percent", a->percent);

 out:
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: %m\n", err);
		ret = EXIT_FAILED;
	}
	else {
		ret = post(cl, path, od, what);
	}

	mem_deref(od);
	return ret;
}


static int cmd_rehome(struct client *cl, const struct args *a)
{
	char what[96];

	(void)re_snprintf(what, sizeof(what), "rehome %s", a->tag);
	return job_post(cl, a, "/v1/rehome", what);
}


static int cmd_move(struct client *cl, const struct args *a)
{
	char what[160];

	(void)re_snprintf(what, sizeof(what), "move %s to %s", a->tag, a->to);
	return job_post(cl, a, "/v1/move", what);
}


static int cmd_drain(struct client *cl, const struct args *a)
{
	return job_post(cl, a, "/v1/drain", "drain");
}


static int cmd_policy(struct client *cl, const struct args *a)
{
	(void)a;
	return post(cl, "/v1/policy/reload", NULL, "policy reload");
}


static const struct command commands[] = {
	{"status",  NULL,       false, 0,                         cmd_status},
	{"dialogs", NULL,       false, OPT_TAG | OPT_LIMIT,       cmd_dialogs},
	{"shtag",   "activate", true,  0,                         cmd_shtag},
	{"shtag",   "release",  true,  0,                         cmd_shtag},
	{"rehome",  NULL,       true,  OPT_MODE | OPT_BODY | OPT_RATE,
								  cmd_rehome},
	{"move",    NULL,       true,  OPT_TO | OPT_COUNT | OPT_PERCENT,
								  cmd_move},
	{"drain",   NULL,       false, OPT_TO,                    cmd_drain},
	{"policy",  "reload",   false, 0,                         cmd_policy},
};


/* ---- command line ---- */

/** Tags and node names: the config's charset, safe in a URL as is */
static bool name_ok(const char *s)
{
	if (!str_isset(s) || strlen(s) > 63)
		return false;

	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	}

	return true;
}


static bool number_get(uint32_t *v, const char *s, uint32_t lo, uint32_t hi)
{
	char *end;
	unsigned long n;

	if (!s || !isdigit((unsigned char)*s))
		return false;

	n = strtoul(s, &end, 10);
	if (*end || n < lo || n > hi)
		return false;

	*v = (uint32_t)n;
	return true;
}


static bool word_in(const char *s, const char **set)
{
	for (; *set; set++) {
		if (!str_cmp(s, *set))
			return true;
	}

	return false;
}


static const struct command *command_find(const struct args *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		int nword = 1 + (c->sub != NULL) + c->takes_tag;

		if (str_cmp(a->word[0], c->word))
			continue;
		if (c->sub && (a->nword < 2 || str_cmp(a->word[1], c->sub)))
			continue;
		if (a->nword != nword)
			continue;

		return c;
	}

	return NULL;
}


static int option_set(struct args *a, struct client *cl, int opt,
		      const char *val)
{
	switch (opt) {

	case 's':
		if (sa_decode(&cl->srv, val, strlen(val)))
			return usage_error("bad server address '%s' "
					   "(IP:PORT)", val);
		return 0;

	case 't': cl->token = val;  return 0;
	case 'j': cl->json = true;  return 0;
	case 'T': a->tag = val;     a->given |= OPT_TAG;  return 0;
	case 'm': a->mode = val;    a->given |= OPT_MODE; return 0;
	case 'b': a->body = val;    a->given |= OPT_BODY; return 0;
	case 'o': a->to = val;      a->given |= OPT_TO;   return 0;

	case 'l':
		a->given |= OPT_LIMIT;
		return number_get(&a->limit, val, 1, 10000) ? 0 :
			usage_error("--limit wants 1..10000, not '%s'", val);
	case 'r':
		a->given |= OPT_RATE;
		return number_get(&a->rate, val, 1, 1000000) ? 0 :
			usage_error("--rate wants a positive number, not '%s'",
				    val);
	case 'c':
		a->given |= OPT_COUNT;
		return number_get(&a->count, val, 1, UINT32_MAX) ? 0 :
			usage_error("--count wants a positive number, not "
				    "'%s'", val);
	case 'p':
		a->given |= OPT_PERCENT;
		return number_get(&a->percent, val, 1, 100) ? 0 :
			usage_error("--percent wants 1..100, not '%s'", val);
	default:
		return usage_error("%s", "unknown option");
	}
}


/** What getopt cannot check: option/command fit and value sets */
static int args_check(const struct args *a, const struct command *c)
{
	if (a->given & ~c->opts)
		return usage_error("option not valid for '%s'", c->word);

	if (a->tag && !name_ok(a->tag))
		return usage_error("bad tag name '%s'", a->tag);
	if (a->to && !name_ok(a->to))
		return usage_error("bad node name '%s'", a->to);
	if (a->mode && !word_in(a->mode, modes))
		return usage_error("unknown mode '%s'", a->mode);
	if (a->body && !word_in(a->body, bodies))
		return usage_error("unknown body '%s'", a->body);

	if (c->run == cmd_move) {
		if (!a->to)
			return usage_error("%s", "move needs --to NODE");
		if (!(a->given & OPT_COUNT) == !(a->given & OPT_PERCENT))
			return usage_error("%s", "move needs one of --count "
					   "or --percent");
	}

	return 0;
}


static int args_parse(struct args *a, struct client *cl,
		      const struct command **cmdp, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"server",  required_argument, NULL, 's'},
		{"token",   required_argument, NULL, 't'},
		{"json",    no_argument,       NULL, 'j'},
		{"tag",     required_argument, NULL, 'T'},
		{"limit",   required_argument, NULL, 'l'},
		{"mode",    required_argument, NULL, 'm'},
		{"body",    required_argument, NULL, 'b'},
		{"rate",    required_argument, NULL, 'r'},
		{"to",      required_argument, NULL, 'o'},
		{"count",   required_argument, NULL, 'c'},
		{"percent", required_argument, NULL, 'p'},
		{"help",    no_argument,       NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const struct command *c;
	int opt, ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "s:t:h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return -1;
		}
		if (opt == '?')
			return usage_error("bad option '%s'", argv[optind - 1]);

		ret = option_set(a, cl, opt, optarg);
		if (ret)
			return ret;
	}

	for (; optind < argc; optind++) {
		if (a->nword == (int)ARRAY_SIZE(a->word))
			return usage_error("%s", "too many arguments");
		a->word[a->nword++] = argv[optind];
	}

	if (!a->nword)
		return usage_error("%s", "no command");

	c = command_find(a);
	if (!c)
		return usage_error("bad command '%s'", a->word[0]);

	if (c->takes_tag)
		a->tag = a->word[a->nword - 1];

	*cmdp = c;
	return args_check(a, c);
}


static int client_init(struct client *cl)
{
	struct sa ns;
	int err;

	/* URLs hold IP literals: the resolver is required but never asked */
	err = sa_set_str(&ns, "127.0.0.1", 53);
	if (err)
		return err;

	err = dnsc_alloc(&cl->dnsc, NULL, &ns, 1);
	if (err)
		return err;

	return http_client_alloc(&cl->http, cl->dnsc);
}


int main(int argc, char *argv[])
{
	static struct client cl;
	struct args a = {0};
	const struct command *cmd = NULL;
	int ret, err;

	err = libre_init();
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: libre_init: %m\n", err);
		return EXIT_FAILED;
	}

	(void)sa_set_str(&cl.srv, "127.0.0.1", CTL_PORT);
	cl.token = getenv("REHOME_TOKEN");

	ret = args_parse(&a, &cl, &cmd, argc, argv);
	if (ret) {
		ret = ret < 0 ? EXIT_OK : ret;
		goto out;
	}

	err = client_init(&cl);
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: http client: %m\n", err);
		ret = EXIT_FAILED;
		goto out;
	}

	the_client = &cl;
	ret = cmd->run(&cl, &a);

 out:
	mem_deref(cl.body);
	mem_deref(cl.http);
	mem_deref(cl.dnsc);
	libre_close();

	return ret;
}
