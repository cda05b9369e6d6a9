/**
 * @file linger.h  Objects kept alive a while after their work, one timer
 */

/** The longest stay: 64*T1, RFC 3261's Timers J and L (RFC 6026) */
enum { LINGER_MAX_S = 32 };

void linger_keep(struct le *le, void *obj, uint32_t secs);
void linger_tick(void);
void linger_close(void);
