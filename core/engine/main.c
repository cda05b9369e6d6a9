/**
 * @file main.c  rehomed: command line, start-up and signals
 *
 * Without -c the installed configuration is read (REHOME_CONFFILE, from
 * meson: <sysconfdir>/rehome/rehome.conf). -t checks what a start would
 * refuse, the file and the policy it names, without opening a socket.
 * Under systemd (Type=notify) the service manager is told when the node is
 * ready and when it stops; logging follows the file's log_target.
 * With `workers N` this process only supervises N forked workers, each of
 * which carries on from here as a node (engine_workers.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "sdnotify.h"
#include "engine.h"

enum {
	MAIN_ERR_SZ  = 512,    /* the config error line */
	MAIN_MAX_FDS = 16384,  /* sockets and files libre may poll */
};

static void usage(void)
{
	(void)re_fprintf(stderr,
		"usage: rehomed [-c FILE] [-t] [-V] [-h]\n"
		"  -c FILE  configuration file (default "
		REHOME_CONFFILE ")\n"
		"  -t       check the configuration and its policy, and exit "
		"(0 good, 1 bad)\n"
		"  -V       print the version and exit\n"
		"  -h       this help\n");
}


static void signal_handler(int sig)
{
	log_info("main", "signal %d: stopping", sig);
	sdnotify_stopping();
	re_cancel();
}


int main(int argc, char *argv[])
{
	const char *path = REHOME_CONFFILE;
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

	/* the verdict on a config is one plain line, -t or not */
	err = conf_load(&cfg, path, errbuf, sizeof(errbuf));
	if (!err && check_only)
		err = engine_check(&cfg, errbuf, sizeof(errbuf));
	if (err) {
		(void)re_fprintf(stderr, "%s\n", errbuf);
		goto out;
	}
	if (check_only) {
		(void)re_printf("%s: configuration ok%s%s\n", path,
				str_isset(cfg.policy) ? ", policy " : "",
				cfg.policy);
		goto out;
	}

	log_init();
	log_set_level(cfg.log_level);
	log_set_target(cfg.log_target);
	(void)fd_setsize(MAIN_MAX_FDS);

	if (engine_workers_run(&cfg))
		goto out;

	err = engine_init(&cfg);
	if (!err) {
		log_info("main", "rehomed %s node '%s' running",
			 REHOME_VERSION, cfg.node_id);
		(void)sdnotify_ready();
		err = re_main(signal_handler);
	}

	sdnotify_close();
	engine_close();
 out:
	libre_close();
	tmr_debug();
	mem_debug();
	log_close();

	return err ? 1 : 0;
}
