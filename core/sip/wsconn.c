/**
 * @file wsconn.c  libre 1.1.0's incoming WebSocket connections, made usable
 *
 * libre 1.1.0 never marks a connection accepted on a ws/wss listener as
 * established, so every request sent over it (a BYE, a re-INVITE toward a
 * WebSocket client) waits in its queue forever; and it closes the
 * connection 32 s after the upgrade, whatever crosses it. Both are fixed
 * upstream after 1.1.0 (re commits 9181e07f "set incoming websocket
 * connections as established" and b2656f3e "reset tcp timeout on
 * websocket receive"), not in Debian 12's package. Until a fixed libre is
 * there, every SIP message received over such a connection does what
 * those fixes do: it marks the connection established and restarts its
 * idle timer (libre's own handler, TCP's 900 s).
 *
 * That needs libre's private struct sip_conn, copied below from the 1.1.0
 * source exactly; with any other libre version the shim does nothing.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "wsconn.h"

enum { WSCONN_IDLE_MS = 900 * 1000 };  /* libre's TCP_IDLE_TIMEOUT */

/* src/sip/transp.c of libre 1.1.0 */
struct sip_conn_110 {
	struct le he;
	struct list ql;
	struct list kal;
	struct tmr tmr;
	struct tmr tmr_ka;
	struct sa laddr;
	struct sa paddr;
	struct tls_conn *sc;
	struct tcp_conn *tc;
	struct mbuf *mb;
	struct sip *sip;
	uint32_t ka_interval;
	bool established;
	enum sip_transp tp;
	struct websock_conn *websock_conn;
};

static int shim = -1;   /* unknown yet; then 0 or 1 */


static bool shim_applies(void)
{
	if (shim < 0) {
		shim = !str_cmp(sys_libre_version_get(), "1.1.0");
		log_info("ws", "libre %s: WebSocket connection fix %s",
			 sys_libre_version_get(), shim ? "applied" :
			 "not needed");
	}

	return shim == 1;
}


/** A message came over a WebSocket connection: keep it usable. */
void wsconn_touch(const struct sip_msg *msg)
{
	struct sip_conn_110 *conn;

	if (!msg || (msg->tp != SIP_TRANSP_WS && msg->tp != SIP_TRANSP_WSS))
		return;

	if (!msg->sock || !shim_applies())
		return;

	conn = msg->sock;
	if (!conn->websock_conn || conn->tp != msg->tp)
		return;   /* not the layout we know: leave it alone */

	conn->established = true;
	if (conn->tmr.th)
		tmr_start(&conn->tmr, WSCONN_IDLE_MS, conn->tmr.th,
			  conn->tmr.arg);
}
