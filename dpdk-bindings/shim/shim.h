/*
 * C wrappers for DPDK's static-inline functions, macros and thread-local
 * variables. Rust cannot call those directly: static inlines have no symbol,
 * and binding the per-lcore TLS variables as statics links but crashes.
 * Each wrapper is one call per burst (or per slow-path operation), never per
 * packet on the fast path.
 */
#ifndef DNLB_DPDK_SHIM_H
#define DNLB_DPDK_SHIM_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_version.h>

uint16_t dnlb_rx_burst(uint16_t port_id, uint16_t queue_id,
                       struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t dnlb_tx_burst(uint16_t port_id, uint16_t queue_id,
                       struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *dnlb_pktmbuf_alloc(struct rte_mempool *mp);
int dnlb_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                            unsigned int count);
void dnlb_pktmbuf_free(struct rte_mbuf *m);
void dnlb_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);

/* Reference implementations used by tests to check the Rust-side mbuf
 * arithmetic against DPDK's own. */
char *dnlb_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *dnlb_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
char *dnlb_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
void *dnlb_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t dnlb_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t dnlb_pktmbuf_tailroom(const struct rte_mbuf *m);

unsigned int dnlb_lcore_id(void);
int dnlb_errno(void);
uint64_t dnlb_rdtsc(void);
void dnlb_pause(void);
const char *dnlb_version(void);
/* RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP: macros bindgen cannot evaluate. */
uint64_t dnlb_rss_hf_ip_tcp_udp(void);

#endif
