// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * vip_redirect: the XDP program for dnlb's net_af_xdp ports.
 *
 * DPDK's af_xdp PMD (22.11) loads it with the devarg `xdp_prog=vip_redirect.o`,
 * attaches it to the interface and puts each of its AF_XDP sockets into the
 * map called `xsks_map` (an XSKMAP, key = the queue index). This program
 * redirects to that socket only the frames addressed to a VIP (IPv4 or IPv6,
 * any protocol, optionally behind one 802.1Q/802.1ad tag) and returns
 * XDP_PASS for everything else, so ARP, BGP, ICMP and SSH to the host stay in
 * the kernel. If no socket is bound on the queue, the frame goes to the
 * kernel as well (the fallback action of bpf_redirect_map).
 *
 * The VIPs are compiled in (one object per gateway / VIP set):
 *
 *   clang -O2 -g -target bpf -c vip_redirect.c -o vip_redirect.o \
 *     -DVIP4_LIST='VIP4(203,0,113,10) VIP4(203,0,113,11)' \
 *     -DVIP6_LIST='VIP6(0x20010db8,0x01000000,0,0x10)'
 *
 * VIP4(a,b,c,d) is a dotted quad; VIP6(w0,w1,w2,w3) is an IPv6 address as four
 * 32-bit words, most significant first (2001:db8:100::10 above). Without
 * VIP4_LIST / VIP6_LIST no address of that family matches. Define
 * VIP_REDIRECT_ALL to redirect every frame (like DPDK's default program).
 *
 * scripts/lib/xdp.sh (xdp_build) wraps this.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef XSKS_MAX_QUEUES
#define XSKS_MAX_QUEUES 64
#endif

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XSKS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

#define VIP4(a, b, c, d)                                                       \
	if (daddr == bpf_htonl(((__u32)(a) << 24) | ((__u32)(b) << 16) |       \
			       ((__u32)(c) << 8) | (__u32)(d)))                \
		return 1;

#define VIP6(w0, w1, w2, w3)                                                   \
	if (d[0] == bpf_htonl(w0) && d[1] == bpf_htonl(w1) &&                  \
	    d[2] == bpf_htonl(w2) && d[3] == bpf_htonl(w3))                    \
		return 1;

static __always_inline int is_vip4(__be32 daddr)
{
#ifdef VIP4_LIST
	VIP4_LIST
#endif
	(void)daddr;
	return 0;
}

static __always_inline int is_vip6(const __be32 *d)
{
#ifdef VIP6_LIST
	VIP6_LIST
#endif
	(void)d;
	return 0;
}

SEC("xdp")
int vip_redirect(struct xdp_md *ctx)
{
#ifdef VIP_REDIRECT_ALL
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
#else
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > end)
			return XDP_PASS;
		proto = vh->proto;
		l3 = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (is_vip4(ip->daddr))
			return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		if (is_vip6(ip6->daddr.in6_u.u6_addr32))
			return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	}
	return XDP_PASS;
#endif
}

char _license[] SEC("license") = "Dual BSD/GPL";
