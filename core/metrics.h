/**
 * @file metrics.h  Counters and gauges, exported in Prometheus text format
 */

void metrics_sip_request(const struct pl *method);
void metrics_sip_response(uint16_t scode);
int  metrics_print(struct re_printf *pf);
