/**
 * @file sipmend.h  A second reading of what libre's parser refuses
 */

int  sipmend_init(void);
bool sipmend_is_rfc2543(const struct sip_msg *msg);
bool sipmend_bad_line(const struct sip_msg *msg);
