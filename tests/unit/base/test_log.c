/**
 * @file test_log.c  Unit tests of logging: line format, levels, libre's output
 *
 * stderr is pointed at a temporary file (fd 2, so that the real stderr,
 * the one log.c keeps, writes there too) and the file is read back: every
 * line must start with an ISO 8601 date and time and carry no escape byte
 * (a file is not a terminal), and what libre prints, through its dbg
 * functions or straight to stderr, must come out the same way.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <re.h>
#define DEBUG_MODULE "test"
#define DEBUG_LEVEL 7
#include <re_dbg.h>
#include "log.h"

#define ISO_LINE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}" \
	"\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} (debug|info |warn |error) "

static FILE *capture;
static int saved_fd = -1;


static void capture_start(void)
{
	fflush(stderr);
	capture = tmpfile();
	ck_assert_ptr_nonnull(capture);
	saved_fd = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_fd, 0);
	ck_assert_int_ge(dup2(fileno(capture), STDERR_FILENO), 0);
}


/* Everything written to stderr since capture_start(), NUL-terminated */
static char *capture_end(void)
{
	static char buf[8192];
	size_t n;

	fflush(stderr);
	(void)dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);

	rewind(capture);
	n = fread(buf, 1, sizeof(buf) - 1, capture);
	buf[n] = '\0';
	fclose(capture);

	return buf;
}


static unsigned count_lines(const char *text)
{
	unsigned n = 0;

	for (const char *p = text; *p; p++)
		n += *p == '\n';

	return n;
}


/* Every line has the ISO prefix; no ESC byte anywhere */
static void assert_plain_lines(const char *text)
{
	regex_t re;
	char *copy = strdup(text), *save = NULL;

	ck_assert_int_eq(regcomp(&re, ISO_LINE, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(!strchr(text, '\x1b'), "escape byte in: %s", text);

	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		ck_assert_msg(!regexec(&re, l, 0, NULL, 0), "line '%s'", l);

	regfree(&re);
	free(copy);
}


START_TEST(test_decode)
{
	enum log_level level;
	enum log_target target;

	ck_assert_int_eq(log_level_decode(&level, "warn"), 0);
	ck_assert_int_eq(level, LOG_WARN);
	ck_assert_int_eq(log_level_decode(&level, "DEBUG"), 0);
	ck_assert_int_eq(level, LOG_DEBUG);
	ck_assert_int_eq(log_level_decode(&level, "loud"), EINVAL);
	ck_assert_int_eq(log_level_decode(&level, NULL), EINVAL);
	ck_assert_str_eq(log_level_name(LOG_ERROR), "error");

	ck_assert_int_eq(log_target_decode(&target, "syslog"), 0);
	ck_assert_int_eq(target, LOG_TARGET_SYSLOG);
	ck_assert_int_eq(log_target_decode(&target, "stderr"), 0);
	ck_assert_int_eq(target, LOG_TARGET_STDERR);
	ck_assert_int_eq(log_target_decode(&target, "file"), EINVAL);
}
END_TEST


START_TEST(test_line_format)
{
	char *out;

	log_set_level(LOG_INFO);
	capture_start();
	log_info("test", "hello %d", 42);
	log_warn("test", "careful");
	out = capture_end();

	ck_assert_uint_eq(count_lines(out), 2);
	assert_plain_lines(out);
	ck_assert_ptr_nonnull(strstr(out, " info  test    hello 42\n"));
	ck_assert_ptr_nonnull(strstr(out, " warn  test    careful\n"));
}
END_TEST


/* The setter works at run time: what is below the level disappears */
START_TEST(test_runtime_level)
{
	char *out;

	capture_start();
	log_set_level(LOG_WARN);
	log_info("test", "hidden");
	log_debug("test", "hidden too");
	log_set_level(LOG_DEBUG);
	log_debug("test", "shown");
	out = capture_end();

	ck_assert_ptr_null(strstr(out, "hidden"));
	ck_assert_ptr_nonnull(strstr(out, " debug test    shown\n"));
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
}
END_TEST


/* libre's dbg lines and raw stderr writes, once log_init() holds them */
START_TEST(test_libre_output)
{
	char *out;

	capture_start();
	log_init();
	log_set_level(LOG_INFO);
	DEBUG_WARNING("dbg warning %d\n", 1);
	DEBUG_INFO("dbg info\n");
	(void)re_fprintf(stderr, "sip: msg decode err: %s\n", "raw");
	(void)re_fprintf(stderr, "partial ");
	(void)re_fprintf(stderr, "line\n");
	log_set_level(LOG_ERROR);
	DEBUG_WARNING("filtered out\n");
	(void)re_fprintf(stderr, "filtered raw\n");
	log_close();
	out = capture_end();

	assert_plain_lines(out);
	ck_assert_ptr_nonnull(strstr(out, " warn  libre   test: dbg warning "
				     "1\n"));
	ck_assert_ptr_nonnull(strstr(out, " info  libre   test: dbg info\n"));
	ck_assert_ptr_nonnull(strstr(out, " warn  stderr  sip: msg decode "
				     "err: raw\n"));
	ck_assert_ptr_nonnull(strstr(out, " warn  stderr  partial line\n"));
	ck_assert_ptr_null(strstr(out, "filtered"));
	log_set_level(LOG_INFO);
}
END_TEST


static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_line_format);
	tcase_add_test(tc, test_runtime_level);
	tcase_add_test(tc, test_libre_output);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(log_suite());
}
