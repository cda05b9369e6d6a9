/**
 * @file log.h  Leveled logging to stderr
 */

#ifndef REHOME_LOG_H
#define REHOME_LOG_H

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int  log_level_decode(enum log_level *levelp, const char *name);
void log_msg(enum log_level level, const char *mod, const char *fmt, ...);

#define log_debug(mod, ...) \
	do { if (log_get_level() <= LOG_DEBUG) \
		log_msg(LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define log_info(mod, ...)  log_msg(LOG_INFO,  mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_WARN,  mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
