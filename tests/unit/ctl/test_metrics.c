/**
 * @file test_metrics.c  Unit tests of the metrics registry and its exposition
 *
 * What Prometheus reads: labels without a value left out, histograms with
 * an observation on a bound counted in that bucket and cumulative counts
 * up to +Inf, seconds printed from microseconds, the cluster's families
 * only through metrics_cluster_print, free-form labels folded into
 * "other" past the table's size, the heap's bytes in use and free
 * following blocks allocated then every other one freed. Each test
 * runs in its own process (check's fork mode), so the registry starts
 * empty each time.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include "metrics.h"

static char *text;   /* the last exposition printed */


static int print_all(struct re_printf *pf, void *arg)
{
	(void)arg;
	return metrics_print(pf);
}


static int print_cluster(struct re_printf *pf, void *arg)
{
	(void)arg;
	return metrics_cluster_print(pf);
}


static void text_free(void)
{
	text = mem_deref(text);
}


/** Print with h into `text` (freed by the next call) */
static const char *expose(re_printf_h *h, void *arg)
{
	text = mem_deref(text);
	ck_assert_int_eq(re_sdprintf(&text, "%H", h, arg), 0);
	return text;
}


/** True when `line` is one whole line of `text` */
static bool has_line(const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
		p += n;
	}

	return false;
}


#define ck_line(line) ck_assert_msg(has_line(line), "no line %s in:\n%s", \
				    line, text)
#define ck_no_line(line) ck_assert_msg(!has_line(line), "line %s in:\n%s", \
				       line, text)


START_TEST(test_labels_without_value_left_out)
{
	const char *some[] = {"a", "", "b", "v", "c", NULL, NULL};
	const char *none[] = {"a", "", "b", NULL, NULL};
	const char *esc[]  = {"a", "x\"y\\z\nw", NULL};
	char buf[64];

	re_snprintf(buf, sizeof(buf), "m%H", metrics_labels_print, some);
	ck_assert_str_eq(buf, "m{b=\"v\"}");
	re_snprintf(buf, sizeof(buf), "m%H", metrics_labels_print, none);
	ck_assert_str_eq(buf, "m");
	re_snprintf(buf, sizeof(buf), "m%H", metrics_labels_print, esc);
	ck_assert_str_eq(buf, "m{a=\"x\\\"y\\\\z\\nw\"}");
}
END_TEST


START_TEST(test_lag_histogram_buckets)
{
	metrics_repl_lag(250);        /* on the first bound: in it */
	metrics_repl_lag(251);
	metrics_repl_lag(10000000);   /* past the last bound */
	expose(print_cluster, NULL);

	ck_line("# TYPE rehome_repl_lag_seconds histogram");
	ck_line("rehome_repl_lag_seconds_bucket{le=\"0.00025\"} 1");
	ck_line("rehome_repl_lag_seconds_bucket{le=\"0.0005\"} 2");
	ck_line("rehome_repl_lag_seconds_bucket{le=\"5\"} 2");
	ck_line("rehome_repl_lag_seconds_bucket{le=\"+Inf\"} 3");
	ck_line("rehome_repl_lag_seconds_sum 10.000501");
	ck_line("rehome_repl_lag_seconds_count 3");
}
END_TEST


START_TEST(test_empty_histogram_prints_zeros)
{
	expose(print_cluster, NULL);

	ck_line("rehome_repl_lag_seconds_bucket{le=\"+Inf\"} 0");
	ck_line("rehome_repl_lag_seconds_sum 0");
	ck_line("rehome_repl_lag_seconds_count 0");
}
END_TEST


START_TEST(test_rehome_results_and_duration)
{
	metrics_rehome_result("moved", "");
	metrics_rehome_result("moved", NULL);
	metrics_rehome_result("failed", "callee:488");
	metrics_rehome_duration("moved", 1500);
	metrics_rehome_duration("moved", 30);
	metrics_rehome_duration("failed", 32000);
	expose(print_all, NULL);

	ck_line("rehome_calls_rehomed_total{outcome=\"moved\"} 2");
	ck_line("rehome_calls_rehomed_total{outcome=\"failed\","
		"reason=\"callee:488\"} 1");
	ck_line("rehome_call_rehome_duration_seconds_bucket{outcome=\"moved\","
		"le=\"0.025\"} 0");
	ck_line("rehome_call_rehome_duration_seconds_bucket{outcome=\"moved\","
		"le=\"0.05\"} 1");
	ck_line("rehome_call_rehome_duration_seconds_bucket{outcome=\"moved\","
		"le=\"2.5\"} 2");
	ck_line("rehome_call_rehome_duration_seconds_sum{outcome=\"moved\"} "
		"1.53");
	ck_line("rehome_call_rehome_duration_seconds_count{outcome=\"moved\"}"
		" 2");
	ck_line("rehome_call_rehome_duration_seconds_bucket{outcome=\"failed\","
		"le=\"20\"} 0");
	ck_line("rehome_call_rehome_duration_seconds_bucket{outcome=\"failed\","
		"le=\"40\"} 1");
	ck_assert_ptr_null(strstr(text, "=\"\""));
	ck_assert_ptr_null(strstr(text, "rehome_rehome_"));
}
END_TEST


START_TEST(test_cluster_families_only_from_collector)
{
	metrics_redis_up(false);
	metrics_call_started();
	expose(print_all, NULL);

	ck_line("rehome_calls_total 1");
	ck_line("# TYPE process_cpu_seconds_total counter");
	ck_line("# TYPE process_resident_memory_bytes gauge");
	ck_assert_ptr_null(strstr(text, "rehome_redis_up"));
	ck_assert_ptr_null(strstr(text, "rehome_repl_"));

	ck_assert_int_eq(metrics_collector_add(print_cluster, NULL), 0);
	metrics_redis_up(true);
	expose(print_all, NULL);
	ck_line("rehome_redis_up 1");
	ck_line("rehome_repl_lag_seconds_count 0");

	metrics_close();
	expose(print_all, NULL);
	ck_assert_ptr_null(strstr(text, "rehome_redis_up"));
}
END_TEST


START_TEST(test_free_labels_fold_into_other)
{
	char reason[16];
	unsigned lines = 0;
	const char *p;

	for (int i = 0; i < 40; i++) {
		re_snprintf(reason, sizeof(reason), "r%d", i);
		metrics_repl_dropped(reason);
	}
	expose(print_cluster, NULL);

	ck_line("rehome_repl_messages_dropped_total{reason=\"r30\"} 1");
	ck_no_line("rehome_repl_messages_dropped_total{reason=\"r31\"} 1");
	ck_line("rehome_repl_messages_dropped_total{reason=\"other\"} 9");
	for (p = text; (p = strstr(p, "\nrehome_repl_messages_dropped_total{"));
	     p++)
		++lines;
	ck_assert_uint_eq(lines, 32);
}
END_TEST


#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)

/** The value of rehome_heap_bytes{kind="<kind>"} in a fresh exposition */
static size_t heap_bytes(const char *kind)
{
	char line[64];
	const char *p;

	expose(print_all, NULL);
	re_snprintf(line, sizeof(line), "\nrehome_heap_bytes{kind=\"%s\"} ",
		    kind);
	p = strstr(text, line);
	ck_assert_msg(p != NULL, "no %s in:\n%s", line + 1, text);

	return (size_t)strtoull(p + strlen(line), NULL, 10);
}


START_TEST(test_heap_in_use_then_free)
{
	/* every other block freed: holes the heap keeps (a freed run
	 * next to the top would go back to the system at once); HALF
	 * leaves room for the few freed blocks glibc's tcache keeps, which
	 * it counts in use */
	enum { N = 2048, SZ = 1000, HALF = N / 2 * SZ * 3 / 4 };
	void *block[N];
	size_t in_use, free0;

	in_use = heap_bytes("in_use");
	ck_line("# TYPE rehome_heap_bytes gauge");
	for (int i = 0; i < N; i++)
		block[i] = malloc(SZ);
	ck_assert_uint_ge(heap_bytes("in_use"), in_use + 2 * HALF);

	in_use = heap_bytes("in_use");
	free0 = heap_bytes("free");
	for (int i = 0; i < N; i += 2)
		free(block[i]);
	ck_assert_uint_le(heap_bytes("in_use"), in_use - HALF);
	ck_assert_uint_ge(heap_bytes("free"), free0 + HALF);

	for (int i = 1; i < N; i += 2)
		free(block[i]);
}
END_TEST

#else

START_TEST(test_heap_in_use_then_free)
{
	/* malloc is not glibc's: its figures would say nothing */
	expose(print_all, NULL);
	ck_assert_ptr_null(strstr(text, "rehome_heap_bytes"));
}
END_TEST

#endif


static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, NULL, text_free);
	tcase_add_test(tc, test_labels_without_value_left_out);
	tcase_add_test(tc, test_lag_histogram_buckets);
	tcase_add_test(tc, test_empty_histogram_prints_zeros);
	tcase_add_test(tc, test_rehome_results_and_duration);
	tcase_add_test(tc, test_cluster_families_only_from_collector);
	tcase_add_test(tc, test_free_labels_fold_into_other);
	tcase_add_test(tc, test_heap_in_use_then_free);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(metrics_suite());
}
