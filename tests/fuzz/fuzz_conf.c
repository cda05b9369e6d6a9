/**
 * @file fuzz_conf.c  libFuzzer target: the config file parser
 *
 * A config file is written by hand, so conf_load_buf() must turn anything
 * into either a checked config or one error line, never a crash; and what
 * it accepts must be sane: listeners within bounds, and an error line
 * that is a NUL-terminated string within its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#define DEBUG_MODULE "fuzz"
#define DEBUG_LEVEL 0
#include <re_dbg.h>
#include "log.h"
#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


/* the warnings of accepted configs would flood the output */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;

	dbg_init(DBG_ERR, 0);
	log_init();
	log_set_level(LOG_ERROR);
	return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rh_conf *cfg;
	char errbuf[256];
	int err;

	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		abort();

	memset(errbuf, 0x55, sizeof(errbuf));
	err = conf_load_buf(cfg, "fuzz.conf", (const char *)data, size,
			    errbuf, sizeof(errbuf));
	if (err && !memchr(errbuf, '\0', sizeof(errbuf)))
		abort();
	if (!err && (cfg->listenc < 1 || cfg->listenc > CONF_MAX_LISTENERS ||
		     cfg->shtagc > CONF_MAX_SHTAGS ||
		     cfg->media_relayc > CONF_MAX_MEDIA_RELAYS))
		abort();

	free(cfg);
	return 0;
}
