/**
 * @file client.h  rehomectl: HTTP calls to one rehomed's control API
 */

#ifndef REHOMECTL_CLIENT_H
#define REHOMECTL_CLIENT_H

/** The connection to one rehomed and the last reply */
struct client {
	struct sa srv;
	const char *token;
	bool json;
	bool needs_cluster;    /* the command fails on a single node */
	struct dnsc *dnsc;
	struct http_cli *http;
	struct http_req *req;
	struct tmr tmr;
	bool interrupted;
	int err;               /* transport error of the last call */
	uint16_t scode;
	char reason[32];       /* reason phrase of the last reply */
	struct mbuf *body;     /* body of the last reply */
};

int  client_init(struct client *cl);
void client_close(struct client *cl);
int  client_call(struct client *cl, const char *met, const char *path,
		 const struct odict *body, struct odict **odp);
bool client_wait(struct client *cl, uint64_t ms);

#endif
