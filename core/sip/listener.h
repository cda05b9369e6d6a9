/**
 * @file listener.h  SIP listeners and their tags
 */

struct rh_conf;

/** A listening socket; the tag names its purpose, equal on every node */
struct listener {
	struct le le;
	enum sip_transp tp;
	struct sa addr;
	struct sa own;         /* Via, Contact: a worker's own socket, else addr */
	char *tag;
	int fd;                /* UDP: the socket libre opened, else -1 */
	unsigned long inode;   /* UDP: its inode, for the drop count */
	unsigned long own_inode; /* UDP: the own socket's, else 0 */
	int rcvbuf;            /* UDP: SO_RCVBUF as the kernel reports it */
};

/** Called for each listener until it returns true */
typedef bool (listener_apply_h)(const struct listener *l, void *arg);

int  listener_init(struct sip *sip, const struct rh_conf *cfg);
void listener_close(void);
const struct listener *listener_by_tag(const char *tag, enum sip_transp tp);
const struct listener *listener_by_addr(const struct sa *laddr,
					enum sip_transp tp);
const struct listener *listener_first(void);
void listener_apply(listener_apply_h *h, void *arg);
