/**
 * @file sdnotify.h  Telling systemd the daemon's state (Type=notify)
 */

int  sdnotify_ready(void);
void sdnotify_ping(void);
void sdnotify_stopping(void);
void sdnotify_close(void);
