/**
 * @file output.c  rehomectl: replies printed as JSON or for people
 *
 * --json prints the server's JSON as received, for scripts. Otherwise a
 * generic renderer turns any reply object into "key value" lines and
 * tables (an array or map of objects becomes a table), so keys that other
 * modules add to /v1/status later show up without a change here; only the
 * dialog and job lists (here) and job summaries (job.c) have their own
 * layout. Times are unix ms: shown as local time, and ages by the node's
 * clock when the reply gives it ("now"), else by this host's.
 */
#include <stdio.h>
#include <ctype.h>
#include <time.h>
#include <sys/time.h>
#include <re.h>
#include "output.h"

enum {
	TABLE_COLS = 12,
	TITLE_SZ   = 128,
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


static void row_destructor(void *arg)
{
	struct row *row = arg;

	list_unlink(&row->le);
	for (size_t i = 0; i < TABLE_COLS; i++)
		mem_deref(row->cell[i]);
}


/** The reply as received, for scripts */
void output_json(const struct mbuf *mb)
{
	size_t len = mb ? mbuf_get_left(mb) : 0;

	if (!len)
		return;

	(void)fwrite(mbuf_buf(mb), 1, len, stdout);
	if (mbuf_buf(mb)[len - 1] != '\n')
		(void)fputc('\n', stdout);
}


static bool is_container(const struct odict_entry *e)
{
	return e->type == ODICT_OBJECT || e->type == ODICT_ARRAY;
}


/** A scalar as text: strings as they are, null as "-" */
int output_scalar(struct re_printf *pf, void *arg)
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


/** Unix ms as local time, "2026-12-05 10:11:12" */
static int time_print(struct re_printf *pf, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	char buf[32];
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm))
		return re_hprintf(pf, "%lld", (long long)ms);

	return re_hprintf(pf, "%s", buf);
}


/** A duration in ms, two units at most: "4.2s", "3m05s", "2h03m", "3d04h" */
static int age_print(struct re_printf *pf, void *arg)
{
	uint64_t ms = *(const uint64_t *)arg, s = ms / 1000;

	if (s < 60)
		return re_hprintf(pf, "%llu.%llus", (unsigned long long)s,
				  (unsigned long long)ms % 1000 / 100);
	if (s < 3600)
		return re_hprintf(pf, "%llum%02llus",
				  (unsigned long long)s / 60,
				  (unsigned long long)s % 60);
	if (s < 86400)
		return re_hprintf(pf, "%lluh%02llum",
				  (unsigned long long)s / 3600,
				  (unsigned long long)s % 3600 / 60);

	return re_hprintf(pf, "%llud%02lluh", (unsigned long long)s / 86400,
			  (unsigned long long)s % 86400 / 3600);
}


static uint64_t now_ms(void)
{
	struct timeval tv;

	(void)gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
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

	if (e->type == ODICT_INT && e->u.integer > 0 &&
	    (!str_cmp(e->key, "created") || !str_cmp(e->key, "updated")))
		return time_print(pf, e->u.integer);

	return output_scalar(pf, arg);
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
		char title[TITLE_SZ];

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
void output_object(const struct odict *od)
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


static uint64_t num_get(const struct odict *od, const char *key)
{
	uint64_t n = 0;

	(void)odict_get_number(od, &n, key);
	return n;
}


/** Its age, and whether it is served here or held as a replica */
static void dialog_row(struct table *t, const struct odict *dlg,
		       uint64_t now)
{
	const struct odict_entry *legs = odict_lookup(dlg, "legs");
	uint64_t created = num_get(dlg, "created");
	uint64_t age = now > created ? now - created : 0;
	bool replica = false;
	struct row *row = table_row(t);

	(void)odict_get_boolean(dlg, &replica, "replica");

	cell_set(t, row, 0, "%s", str_or_dash(dlg, "did"));
	cell_set(t, row, 1, "%s", str_or_dash(dlg, "state"));
	cell_set(t, row, 2, "%s", str_or_dash(dlg, "shtag"));
	cell_set(t, row, 3, "%s", str_or_dash(dlg, "owner"));
	cell_set(t, row, 4, "%s", replica ? "replica" : "here");
	cell_set(t, row, 5, "%H", age_print, &age);
	cell_set(t, row, 6, "%s", str_or_dash(dlg, "callid"));

	if (legs && legs->type == ODICT_OBJECT) {
		cell_set(t, row, 7, "%s", leg_target(legs->u.odict, "caller"));
		cell_set(t, row, 8, "%s", leg_target(legs->u.odict, "callee"));
	}
}


/** One line per dialog */
void output_dialogs(const struct odict *od)
{
	const struct odict_entry *arr = odict_lookup(od, "dialogs");
	const char *cols[] = {"did", "state", "shtag", "owner", "served",
			      "age", "callid", "caller", "callee"};
	uint64_t now = num_get(od, "now");
	struct table t = {0};
	bool truncated = false;
	struct le *le;

	if (!arr || arr->type != ODICT_ARRAY || !arr->u.odict->lst.head) {
		(void)re_printf("no dialogs\n");
		return;
	}

	if (!now)
		now = now_ms();

	for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
		table_col(&t, cols[i]);

	for (le = arr->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_OBJECT)
			dialog_row(&t, e->u.odict, now);
	}

	table_print(&t, NULL);

	if (odict_get_boolean(od, &truncated, "truncated") && truncated)
		(void)re_fprintf(stderr, "(more dialogs not shown; "
				 "raise --limit)\n");
}


static void job_row(struct table *t, const struct odict *job)
{
	uint64_t total = num_get(job, "total");
	uint64_t done = num_get(job, "moved") + num_get(job, "failed");
	uint64_t elapsed = num_get(job, "elapsed_ms");
	const char *peer = odict_string(job, "to");
	struct row *row = table_row(t);

	if (!peer)
		peer = str_or_dash(job, "from");

	cell_set(t, row, 0, "%llu", (unsigned long long)num_get(job, "job"));
	cell_set(t, row, 1, "%s", str_or_dash(job, "kind"));
	cell_set(t, row, 2, "%s", str_or_dash(job, "state"));
	cell_set(t, row, 3, "%s", str_or_dash(job, "tag"));
	cell_set(t, row, 4, "%s", peer);
	cell_set(t, row, 5, "%llu/%llu %llu%%", (unsigned long long)done,
		 (unsigned long long)total,
		 (unsigned long long)(total ? done * 100 / total : 100));
	cell_set(t, row, 6, "%llu", (unsigned long long)num_get(job, "moved"));
	cell_set(t, row, 7, "%llu",
		 (unsigned long long)num_get(job, "failed"));
	cell_set(t, row, 8, "%llu", (unsigned long long)num_get(job, "ended"));
	cell_set(t, row, 9, "%H", age_print, &elapsed);
	cell_set(t, row, 10, "%s", odict_string(job, "error") ?
		 odict_string(job, "error") : "");
}


/** One row of a listing, from one object of its array */
typedef void (row_h)(struct table *t, const struct odict *item);


/**
 * A listing: the objects of array `key` of od, one row each under the
 * columns; `empty` when there are none.
 */
static void list_print(const struct odict *od, const char *key,
		       const char *const *cols, size_t ncols, row_h *row,
		       const char *empty)
{
	const struct odict_entry *arr = odict_lookup(od, key);
	struct table t = {0};
	struct le *le;

	if (!arr || !is_container(arr) || !arr->u.odict->lst.head) {
		(void)re_printf("%s\n", empty);
		return;
	}

	for (size_t i = 0; i < ncols; i++)
		table_col(&t, cols[i]);

	for (le = arr->u.odict->lst.head; le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_OBJECT)
			row(&t, e->u.odict);
	}

	table_print(&t, NULL);
}


/** One line per re-homing job, with its progress */
void output_jobs(const struct odict *od)
{
	static const char *const cols[] = {
		"job", "kind", "state", "tag", "node", "progress", "moved",
		"failed", "ended", "elapsed", "error"
	};

	list_print(od, "jobs", cols, ARRAY_SIZE(cols), job_row, "no jobs");
}


static void relay_row(struct table *t, const struct odict *relay)
{
	struct row *row = table_row(t);

	cell_set(t, row, 0, "%s", str_or_dash(relay, "relay"));
	cell_set(t, row, 1, "%s", str_or_dash(relay, "state"));
	cell_set(t, row, 2, "%llu",
		 (unsigned long long)num_get(relay, "weight"));
	cell_set(t, row, 3, "%llu", (unsigned long long)num_get(relay, "calls"));
	cell_set(t, row, 4, "%llu",
		 (unsigned long long)num_get(relay, "rtt_ms"));
	cell_set(t, row, 5, "%llu",
		 (unsigned long long)num_get(relay, "timeouts"));
	cell_set(t, row, 6, "%llu", (unsigned long long)num_get(relay, "errors"));
}


/** One line per media relay: its state and the calls anchored in it */
void output_relays(const struct odict *od)
{
	static const char *const cols[] = {
		"relay", "state", "weight", "calls", "rtt_ms", "timeouts",
		"errors"
	};

	list_print(od, "relays", cols, ARRAY_SIZE(cols), relay_row,
		   "no media relays (signalling only)");
}
