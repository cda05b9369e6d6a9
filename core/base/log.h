/**
 * @file log.h  Leveled logging to stderr or syslog
 */

#ifndef REHOME_LOG_H
#define REHOME_LOG_H

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/** Where log lines go (config key log_target) */
enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
};

void log_init(void);
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int  log_level_decode(enum log_level *levelp, const char *name);
const char *log_level_name(enum log_level level);
void log_set_target(enum log_target target);
void log_set_worker(unsigned worker);
int  log_target_decode(enum log_target *targetp, const char *name);
void log_msg(enum log_level level, const char *mod, const char *fmt, ...);

#define log_debug(mod, ...) \
	do { if (log_get_level() <= LOG_DEBUG) \
		log_msg(LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define log_info(mod, ...)  log_msg(LOG_INFO,  mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_WARN,  mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
