/**
 * @file fuzz_engine.h  The fuzz targets' engine: a node started in-process
 */

int  fuzz_engine_init(const char *conf_text);
void fuzz_engine_poll(void);
const struct rh_conf *fuzz_engine_conf(void);
sip_msg_h *fuzz_engine_sip_handler(bool req);
redis_msg_h *fuzz_engine_channel(const char *suffix);
