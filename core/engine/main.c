/**
 * @file main.c  rehomed: command line, start-up and signals
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "engine.h"

enum {
	MAIN_ERR_SZ  = 512,    /* the config error line */
	MAIN_MAX_FDS = 16384,  /* sockets and files libre may poll */
};

static void usage(void)
{
	(void)re_fprintf(stderr,
		"usage: rehomed [-c FILE] [-t] [-V] [-h]\n"
		"  -c FILE  configuration file (default conf/rehome.conf)\n"
		"  -t       check the configuration and exit (0 good, 1 bad)\n"
		"  -V       print the version and exit\n"
		"  -h       this help\n");
}


static void signal_handler(int sig)
{
	log_info("main", "signal %d: stopping", sig);
	re_cancel();
}


int main(int argc, char *argv[])
{
	const char *path = "conf/rehome.conf";
	static struct rh_conf cfg;
	char errbuf[MAIN_ERR_SZ];
	bool check_only = false;
	int opt, err;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': check_only = true; break;
		case 'V': (void)re_printf("rehomed %s\n", REHOME_VERSION);
			  return 0;
		case 'h': usage(); return 0;
		default:  usage(); return 2;
		}
	}
	if (optind < argc) {
		usage();
		return 2;
	}

	err = libre_init();
	if (err) {
		(void)re_fprintf(stderr, "rehomed: libre_init: %m\n", err);
		return 1;
	}

	err = conf_load(&cfg, path, errbuf, sizeof(errbuf));
	if (err) {
		(void)re_fprintf(stderr, "%s\n", errbuf);
		libre_close();
		return 1;
	}
	if (check_only) {
		(void)re_printf("%s: configuration ok\n", path);
		libre_close();
		return 0;
	}

	log_set_level(cfg.log_level);
	(void)fd_setsize(MAIN_MAX_FDS);

	err = engine_init(&cfg);
	if (!err) {
		log_info("main", "rehomed %s node '%s' running",
			 REHOME_VERSION, cfg.node_id);
		err = re_main(signal_handler);
	}

	engine_close();
	libre_close();
	tmr_debug();
	mem_debug();

	return err ? 1 : 0;
}
