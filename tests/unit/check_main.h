/**
 * @file check_main.h  The main() of every unit test program
 *
 * Runs one check suite with libre initialised around it; CK_ENV lets
 * CK_VERBOSITY=verbose show passing checks too. Include it last, after
 * <check.h>, <stdlib.h> and <re.h>.
 */

static int check_main(Suite *suite)
{
	SRunner *sr;
	int failed;

	if (libre_init())
		return EXIT_FAILURE;

	sr = srunner_create(suite);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	libre_close();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
