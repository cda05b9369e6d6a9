/**
 * @file output.c  rehomectl: replies printed as JSON or for people
 *
 * --json prints the server's JSON as received, for scripts. Otherwise a
 * generic renderer turns any reply object into "key value" lines and
 * tables (an array or map of objects becomes a table), so keys that other
 * modules add to /v1/status later show up without a change here; only the
 * dialog list (here) and job summaries (job.c) have their own layout.
 */
#include <stdio.h>
#include <ctype.h>
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


static int value_print(struct re_printf *pf, void *arg)
{
	const struct odict_entry *e = arg;
	uint32_t secs;

	if (e->type == ODICT_INT && !str_cmp(e->key, "uptime")) {
		secs = (uint32_t)e->u.integer;
		return secs ? fmt_human_time(pf, &secs) :
			re_hprintf(pf, "0 secs");
	}

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


/** One line per dialog */
void output_dialogs(const struct odict *od)
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
