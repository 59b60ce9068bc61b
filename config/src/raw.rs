//! The TOML schema exactly as written by users. Nothing outside this crate
//! sees these types: [`crate::validate`] turns them into [`crate::model`].
//!
//! Every field documents its unit and default. Unknown keys are errors.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This gateway.
    pub gateway: Spanned<RawGateway>,
    /// Packet I/O: EAL, lcores, ports.
    pub dataplane: Spanned<RawDataplane>,
    /// How packets are encapsulated toward backends. Required when there are
    /// listeners.
    #[serde(default)]
    pub encap: Option<Spanned<RawEncap>>,
    /// Connection tracking. Default: all defaults.
    #[serde(default)]
    pub flows: Option<Spanned<RawFlows>>,
    /// Listeners (`[[listener]]`). Default: none (frames are only forwarded).
    #[serde(default)]
    pub listener: Vec<Spanned<RawListener>>,
    /// Target groups (`[[target_group]]`).
    #[serde(default)]
    pub target_group: Vec<Spanned<RawTargetGroup>>,
    /// The admin HTTP API and metrics endpoint. Default: none (no API).
    #[serde(default)]
    pub admin: Option<Spanned<RawAdmin>>,
    /// Route announcements through BIRD. Default: none (announce nothing).
    #[serde(default)]
    pub routing: Option<Spanned<RawRouting>>,
    /// Rate limits protecting the gateway and backends. Default: all
    /// defaults.
    #[serde(default)]
    pub protection: Option<RawProtection>,
    /// Flow-exception sync with peer gateways. Default: none (no sync).
    #[serde(default)]
    pub sync: Option<Spanned<RawSync>>,
}

/// `[sync]`: flow exceptions shared with peer gateways (UDP), and fetched
/// from them at start (TCP on the same port).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    /// Address and port to listen on, UDP and TCP, e.g. `"10.0.0.1:7946"`.
    /// Required; port 0 is refused (peers must know it).
    pub listen: Spanned<String>,
    /// The peer gateways' `listen` addresses, of `listen`'s address family.
    /// Required, at least one.
    pub peers: Spanned<Vec<Spanned<String>>>,
    /// File holding the shared key: its bytes exactly, 32 to 4096 of them.
    /// Relative to the config file's directory. Required.
    pub key_file: Spanned<String>,
    /// The key before a rotation, still accepted from peers. Default none.
    #[serde(default)]
    pub previous_key_file: Option<Spanned<String>>,
    /// How often queued entries are sent, milliseconds. Default 100. Range
    /// 10..=10000.
    #[serde(default)]
    pub batch_ms: Option<Spanned<u32>>,
    /// Bytes per second sent to each peer (UDP payload). Default 1000000.
    /// Range 1400..=1000000000.
    #[serde(default)]
    pub max_bytes_per_sec_per_peer: Option<Spanned<u32>>,
    /// Entries waiting to be sent; more are dropped and counted. Default
    /// 100000. Range 1..=4194304.
    #[serde(default)]
    pub max_queued: Option<Spanned<u32>>,
    /// Entries learned from peers that are kept; more are refused and
    /// counted. Default 262144. Range 1..=4194304.
    #[serde(default)]
    pub max_held: Option<Spanned<u32>>,
    /// How long a starting gateway waits for its peers' answers to a fetch,
    /// milliseconds. Default 2000. Range 100..=60000.
    #[serde(default)]
    pub fetch_timeout_ms: Option<Spanned<u32>>,
}

/// `[protection]`: gateway-wide rate limits, per gateway (each worker
/// enforces an equal share). Each rate takes a burst of one second's worth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtection {
    /// ICMP echo replies to pings of VIPs, per second. Default 1000. Range
    /// 1..=10000000 (`encap.icmp_echo = "drop"` answers none).
    #[serde(default)]
    pub echo_replies_per_sec: Option<Spanned<u32>>,
    /// ICMP errors about VIP flows forwarded to backends, per second.
    /// Default 10000. Range 1..=10000000.
    #[serde(default)]
    pub icmp_errors_forwarded_per_sec: Option<Spanned<u32>>,
    /// The exception path: packets per second passed to the host's own
    /// stack through the host port, by class. Default: all defaults.
    #[serde(default)]
    pub host: Option<RawHostPolicing>,
}

/// `[protection.host]`: packets per second per class (range 1..=10000000).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostPolicing {
    /// BGP (TCP port 179) and BFD (UDP 3784, 3785, 4784). Default 10000.
    #[serde(default)]
    pub routing_pps: Option<Spanned<u32>>,
    /// The routing peers' addresses (BGP neighbours): when given, only
    /// their packets count as routing. Default: none (any BGP segment but
    /// a bare SYN counts).
    #[serde(default)]
    pub routing_peers: Vec<Spanned<String>>,
    /// ARP and IPv6 neighbour discovery. Default 5000.
    #[serde(default)]
    pub neighbor_pps: Option<Spanned<u32>>,
    /// From a backend's address (health-check answers). Default 20000.
    #[serde(default)]
    pub backends_pps: Option<Spanned<u32>>,
    /// Everything else. Default 5000.
    #[serde(default)]
    pub other_pps: Option<Spanned<u32>>,
}

/// `[routing]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// BIRD's control socket (`bird -s`). Required.
    pub bird_socket: Spanned<String>,
    /// File dnlb writes IPv4 VIP routes to (`route A/32 blackhole;` lines),
    /// included by a `protocol static` of BIRD's config. Relative paths are
    /// relative to the config file. At least one of the two files.
    #[serde(default)]
    pub vips4_file: Option<Spanned<String>>,
    /// The same for IPv6 VIPs (`route A/128 blackhole;`).
    #[serde(default)]
    pub vips6_file: Option<Spanned<String>>,
    /// On shutdown, after withdrawing the VIPs, keep forwarding this long so
    /// routers move traffic away first. Milliseconds, default 2000, range
    /// 0..=600000.
    #[serde(default)]
    pub withdraw_delay_ms: Option<Spanned<u32>>,
}

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address and port the API listens on. Default `"127.0.0.1:9100"`.
    /// Port 0 picks a free port (printed when ready).
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// File holding the bearer token writes (and reads off loopback) must
    /// carry (`Authorization: Bearer TOKEN`). Relative to the config file's
    /// directory. Default: `NAME.admin-token` beside `NAME.toml`, created
    /// with a random token (mode 0600) at first start.
    #[serde(default)]
    pub token_file: Option<Spanned<String>>,
    /// A Unix socket serving the API too (mode 0600); requests on it may
    /// write without the token. Relative to the config file's directory.
    /// Default: none.
    #[serde(default)]
    pub socket: Option<Spanned<String>>,
    /// Connections served at once (1 to 4096); more are closed at once.
    /// Default 64.
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
}

/// `[encap]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncap {
    /// Outer source address toward IPv4 backends. Required if any backend
    /// address is IPv4.
    #[serde(default)]
    pub source_v4: Option<Spanned<String>>,
    /// Outer source address toward IPv6 backends. Required if any backend
    /// address is IPv6.
    #[serde(default)]
    pub source_v6: Option<Spanned<String>>,
    /// Destination MAC of encapsulated frames: the next hop (router) toward
    /// the backends, `"02:00:00:00:00:fe"`. Required.
    pub next_hop_mac: Spanned<String>,
    /// Egress MTU in bytes (IP packet including outer headers). Default 1500.
    /// Range 1280..=9600.
    #[serde(default)]
    pub mtu: Option<Spanned<u16>>,
    /// A packet too large after encapsulation: `"icmp"` (answer the client
    /// with ICMP fragmentation needed / packet too big, rate-limited; the
    /// default) or `"drop"`.
    #[serde(default)]
    pub too_big: Option<Spanned<String>>,
    /// ICMP errors generated per second per worker (token bucket; burst the
    /// same). Default 1000. Range 1..=1000000.
    #[serde(default)]
    pub icmp_rate_per_sec: Option<Spanned<u32>>,
    /// TTL / hop limit of outer headers. Default 64.
    #[serde(default)]
    pub ttl: Option<Spanned<u8>>,
    /// ICMP echo requests to a VIP: `"reply"` (default) or `"drop"`.
    #[serde(default)]
    pub icmp_echo: Option<Spanned<String>>,
    /// Default UDP destination port of GUE tunnels. Default 6080.
    #[serde(default)]
    pub gue_port: Option<Spanned<u16>>,
}

/// `[flows]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlows {
    /// Flows tracked per worker. Default 1048576. Range 1024..=16777216.
    #[serde(default)]
    pub capacity_per_worker: Option<Spanned<u32>>,
    /// Idle timeout of TCP flows in seconds. Default 900. Range 1..=86400.
    #[serde(default)]
    pub tcp_idle_timeout_secs: Option<Spanned<u32>>,
    /// Idle timeout of UDP flows in seconds. Default 60. Range 1..=86400.
    #[serde(default)]
    pub udp_idle_timeout_secs: Option<Spanned<u32>>,
    /// Idle timeout of a TCP flow once the client sent FIN or RST, in
    /// seconds (the backend's FIN never passes the gateway: direct server
    /// return). Default 30. Range 1..=86400.
    #[serde(default)]
    pub tcp_closing_timeout_secs: Option<Spanned<u32>>,
}

/// `[[listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Name, unique among listeners.
    pub name: Spanned<String>,
    /// Virtual IP addresses (IPv4 and/or IPv6), at least one.
    pub vips: Spanned<Vec<Spanned<String>>>,
    /// An elastic (public) address also served by this listener. Default none.
    #[serde(default)]
    pub elastic_ip: Option<Spanned<String>>,
    /// `"tcp"` or `"udp"`.
    pub protocol: Spanned<String>,
    /// Destination port. Exactly one of `port` and `all_ports = true`.
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// Serve every port of the VIPs. Default false.
    #[serde(default)]
    pub all_ports: Option<Spanned<bool>>,
    /// `"maglev"` (weighted, on the 5-tuple; the default) or `"source_ip"`
    /// (weighted, on the client address: session persistence).
    #[serde(default)]
    pub scheduler: Option<Spanned<String>>,
    /// Maglev table size, a prime. Default 65537. Range 251..=16777213; it
    /// should be well above 100 x the number of backends.
    #[serde(default)]
    pub table_size: Option<Spanned<u32>>,
    /// IP fragments: `"drop"` (counted; the default) or `"hash_addresses"`
    /// (all fragments of a datagram go to the backend chosen by addresses).
    #[serde(default)]
    pub fragments: Option<Spanned<String>>,
    /// Name of the target group to balance over.
    pub target_group: Spanned<String>,
    /// Who may open flows (`[listener.acl]`). Default: everyone.
    #[serde(default)]
    pub acl: Option<Spanned<RawAcl>>,
    /// New-flow rate limits (`[listener.limits]`). Default: none.
    #[serde(default)]
    pub limits: Option<Spanned<RawFlowLimits>>,
}

/// `[listener.limits]`: new flows per second, per gateway (each worker
/// enforces an equal share). Only packets that open a flow count (a TCP
/// SYN, a UDP datagram of an untracked flow); tracked flows are never
/// limited. Rates range 1..=100000000; a burst (default: one second's
/// worth) needs its rate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlowLimits {
    /// New flows of the whole listener per second. Default: no limit.
    #[serde(default)]
    pub new_flows_per_sec: Option<Spanned<u32>>,
    /// New flows the listener may open at once.
    #[serde(default)]
    pub new_flows_burst: Option<Spanned<u32>>,
    /// New flows per second of one source address. Default: no limit.
    #[serde(default)]
    pub source_new_flows_per_sec: Option<Spanned<u32>>,
    /// New flows one source may open at once.
    #[serde(default)]
    pub source_new_flows_burst: Option<Spanned<u32>>,
}

/// `[listener.acl]`: source prefixes allowed and denied. A source takes the
/// action of the longest prefix containing it, else `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcl {
    /// `"allow"` (the default) or `"deny"`: for sources no prefix covers.
    #[serde(default)]
    pub default: Option<Spanned<String>>,
    /// Prefixes allowed, e.g. `["10.0.0.0/8", "2001:db8::/32"]`; a bare
    /// address is a /32 or /128.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Prefixes denied.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

/// `[[target_group]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetGroup {
    /// Name, unique among target groups.
    pub name: Spanned<String>,
    /// Backends (`[[target_group.backend]]`). May be empty.
    #[serde(default)]
    pub backend: Vec<Spanned<RawBackend>>,
    /// When every backend is unhealthy: `"fail_open"` (use them all, the
    /// default) or `"drop"`.
    #[serde(default)]
    pub all_down: Option<Spanned<String>>,
    /// Active health checking of the backends. Default: none (all healthy).
    #[serde(default)]
    pub health_check: Option<Spanned<RawHealthCheck>>,
    /// `"none"` (the default: every gateway spreads new flows over every
    /// zone, so all gateways build the same table) or `"prefer_own"` (new
    /// flows go to backends in the gateway's own zone while it has a usable
    /// one; other zones take over when it has none).
    #[serde(default)]
    pub zone_affinity: Option<Spanned<String>>,
}

/// `[target_group.health_check]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// `"tcp"` (connect), `"http"` (GET, expected status) or `"udp"` (send a
    /// payload, expect any reply).
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Port probed on each backend's address. Required.
    pub port: Spanned<u16>,
    /// HTTP path. Default `"/"`.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// HTTP status codes that mean healthy. Default `[200]`.
    #[serde(default)]
    pub expected_status: Option<Spanned<Vec<u16>>>,
    /// UDP probe payload. Default `"ping"`.
    #[serde(default)]
    pub udp_payload: Option<Spanned<String>>,
    /// Time between probes of a backend, milliseconds. Default 5000.
    /// Range 50..=300000 (sub-second intervals are for tests).
    #[serde(default)]
    pub interval_ms: Option<Spanned<u32>>,
    /// Probe timeout, milliseconds, below the interval. Default 2000.
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u32>>,
    /// Consecutive successes that make an unhealthy backend healthy. Default 3.
    #[serde(default)]
    pub healthy_threshold: Option<Spanned<u8>>,
    /// Consecutive failures that make a healthy backend unhealthy. Default 3.
    #[serde(default)]
    pub unhealthy_threshold: Option<Spanned<u8>>,
    /// For this long after the gateway starts (or the group gains its health
    /// check), failed probes do not take a backend down. Milliseconds,
    /// default 0 (no grace), range 0..=600000.
    #[serde(default)]
    pub startup_grace_ms: Option<Spanned<u32>>,
}

/// `[[target_group.backend]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// Tunnel endpoint address of the backend (IPv4 or IPv6).
    pub address: Spanned<String>,
    /// Service port on the backend; part of its identity (two backends on one
    /// address need distinct ports or tunnel parameters). Packets are not
    /// rewritten (direct server return). Default 0 = none.
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// `"vm"` (default) or `"container"`.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Weight 0..=100; 0 = no new flows. Default 100.
    #[serde(default)]
    pub weight: Option<Spanned<u8>>,
    /// Availability zone. Default none.
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
    /// Rack. Default none.
    #[serde(default)]
    pub rack: Option<Spanned<String>>,
    /// Encapsulation: `"ipip"` (4in4, 6in6, 4in6, 6in4 by address families),
    /// `"gue"`, `"vxlan"` or `"gre"`.
    pub tunnel: Spanned<String>,
    /// VXLAN network identifier, 0..=16777215. VXLAN only, required.
    #[serde(default)]
    pub vni: Option<Spanned<u32>>,
    /// Destination MAC of the inner Ethernet header: the backend's VXLAN
    /// device. VXLAN only, required.
    #[serde(default)]
    pub inner_mac: Option<Spanned<String>>,
    /// UDP destination port. VXLAN (default 4789) and GUE (default
    /// `encap.gue_port`) only.
    #[serde(default)]
    pub tunnel_port: Option<Spanned<u16>>,
    /// GRE key. GRE only. Default none.
    #[serde(default)]
    pub gre_key: Option<Spanned<u32>>,
    /// Drain: from now on no new flows; established flows keep the backend
    /// until this time (a TOML offset date-time, e.g.
    /// `2026-11-24T08:00:00Z`), then move. Default: not draining.
    #[serde(default)]
    pub drain_until: Option<Spanned<toml::value::Datetime>>,
}

/// `[gateway]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Name of this gateway, unique in the fleet (letters, digits, `-`, `_`, `.`).
    pub name: Spanned<String>,
    /// Availability zone this gateway is in. Default: none.
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
}

/// `[dataplane]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataplane {
    /// Extra EAL arguments, e.g. `["--no-huge", "-m", "512"]`. Must not contain
    /// `--vdev` for configured ports (dnlb adds those) nor `-l`/`--lcores`
    /// unless `worker_lcores` names lcores they enable. Default: none.
    #[serde(default)]
    pub eal_args: Vec<Spanned<String>>,
    /// The lcore that runs the control thread. Default: 0.
    #[serde(default)]
    pub main_lcore: Option<Spanned<u32>>,
    /// One poll-mode worker per lcore listed. Each worker owns one RX and one
    /// TX queue on every port. Required, at least one.
    pub worker_lcores: Spanned<Vec<Spanned<u32>>>,
    /// Mbufs in the packet pool. Default: 8191 (fits `--no-huge -m 512`).
    #[serde(default)]
    pub pool_mbufs: Option<Spanned<u32>>,
    /// RX descriptors per queue. Default: 1024.
    #[serde(default)]
    pub rx_descriptors: Option<Spanned<u16>>,
    /// TX descriptors per queue. Default: 1024.
    #[serde(default)]
    pub tx_descriptors: Option<Spanned<u16>>,
    /// Idle back-off: after this many consecutive empty polls a worker sleeps
    /// `idle_sleep_us`. Default: 0 = never sleep (busy-poll).
    #[serde(default)]
    pub idle_polls_before_sleep: Option<Spanned<u32>>,
    /// Idle back-off sleep in microseconds. Default: 100 (used only when
    /// `idle_polls_before_sleep` > 0). Range 1..=100000.
    #[serde(default)]
    pub idle_sleep_us: Option<Spanned<u32>>,
    /// Ports, in the order DPDK should use them.
    pub ports: Spanned<Vec<Spanned<RawPort>>>,
    /// The exception-path port (e.g. `net_tap0`): frames not for a VIP go
    /// there, and frames from it leave by its `forward_to` (default: the
    /// first other port). Default none.
    #[serde(default)]
    pub host_port: Option<Spanned<String>>,
}

/// `[[dataplane.ports]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    /// DPDK device name: a virtual device (`net_pcap0`, `net_ring0`,
    /// `net_af_xdp0`, ...) or a PCI address (`0000:03:00.0`).
    pub name: Spanned<String>,
    /// Virtual-device arguments, e.g. `"rx_pcap=in.pcap,tx_pcap=out.pcap"`.
    /// Only for virtual devices (names starting with `net_`). Default: none.
    #[serde(default)]
    pub devargs: Option<Spanned<String>>,
    /// Name of the port that frames received here and not for a VIP leave
    /// by (a bump in the wire). Default: none — they go to `host_port`, or
    /// are counted and freed (the kernel sees them through af_packet/af_xdp).
    #[serde(default)]
    pub forward_to: Option<Spanned<String>>,
    /// Spread flows over the workers' RX queues with RSS. Default: true.
    #[serde(default)]
    pub rss: Option<bool>,
    /// MTU to set on the port. Default: the device's. Range 68..=9600.
    #[serde(default)]
    pub mtu: Option<Spanned<u16>>,
}
