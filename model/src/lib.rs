//! dnlb's validated configuration, as plain data.
//!
//! `dnlb-config` parses and validates the TOML file into these types; the
//! load-balancing logic (`dnlb-lb`), the data plane and the control plane
//! read them. The crate has no dependencies (no serde, no TOML), so the data
//! plane can take a validated model without pulling in a parser. Values are
//! meant to be built by validation; nothing downstream re-checks them.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This gateway.
    pub gateway: Gateway,
    /// Packet I/O.
    pub dataplane: Dataplane,
    /// Encapsulation toward backends.
    pub encap: Encap,
    /// Connection tracking.
    pub flows: Flows,
    /// Listeners; indices into this list are listener indices elsewhere.
    pub listeners: Vec<Listener>,
    /// Target groups; `Listener::target_group` indexes this list.
    pub target_groups: Vec<TargetGroup>,
    /// The admin API, if enabled.
    pub admin: Option<Admin>,
    /// Route announcements, if enabled.
    pub routing: Option<Routing>,
    /// Rate limits that protect the gateway and the backends.
    pub protection: Protection,
    /// Flow-exception sync with peer gateways, if enabled.
    pub sync: Option<ExceptionSync>,
}

/// A rate: events per second, and how many may come at once (the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Events per second (at least 1).
    pub per_sec: u32,
    /// Events allowed at once before the rate applies (at least 1).
    pub burst: u32,
}

impl Rate {
    /// `per_sec` per second with a burst of one second's worth.
    pub const fn per_sec(per_sec: u32) -> Self {
        Rate {
            per_sec,
            burst: per_sec,
        }
    }
}

/// Gateway-wide rate limits (`[protection]`), per gateway: each of its
/// workers enforces its share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// ICMP echo replies sent (to VIPs' pings).
    pub echo_replies: Rate,
    /// ICMP errors about VIP flows forwarded to backends.
    pub icmp_errors_forwarded: Rate,
    /// The exception path (frames for the host's own stack through the host
    /// port), by class.
    pub host: HostPolicing,
}

/// Packets per second the exception path passes to the host, by class, so
/// that a flood of one class cannot starve another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicing {
    /// Routing protocols: BGP (TCP port 179) and BFD (UDP 3784, 3785, 4784).
    pub routing: Rate,
    /// The routing peers' addresses: when given, only their packets are in
    /// the routing class; when empty, any BGP segment but a bare SYN is
    /// (a flood of SYNs to port 179 is `other`).
    pub routing_peers: Vec<IpAddr>,
    /// ARP and IPv6 neighbour discovery / router messages.
    pub neighbor: Rate,
    /// From a backend address (health-check answers).
    pub backends: Rate,
    /// Everything else.
    pub other: Rate,
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            echo_replies: Rate::per_sec(1000),
            icmp_errors_forwarded: Rate::per_sec(10_000),
            host: HostPolicing {
                routing: Rate::per_sec(10_000),
                routing_peers: Vec::new(),
                neighbor: Rate::per_sec(5_000),
                backends: Rate::per_sec(20_000),
                other: Rate::per_sec(5_000),
            },
        }
    }
}

/// A listener's new-flow limits, per gateway. Only packets that would open
/// a flow count (a TCP SYN, a UDP datagram of an untracked flow); packets
/// of tracked flows are never limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowLimits {
    /// New flows of the whole listener.
    pub listener: Option<Rate>,
    /// New flows of one source address (hashed buckets: sources that share
    /// a bucket share its rate).
    pub source: Option<Rate>,
}

/// Route announcements through BIRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// BIRD's control socket.
    pub bird_socket: std::path::PathBuf,
    /// Where IPv4 VIP routes are written (None: IPv4 VIPs not announced).
    pub vips4_file: Option<std::path::PathBuf>,
    /// Where IPv6 VIP routes are written.
    pub vips6_file: Option<std::path::PathBuf>,
    /// Forwarding time after the withdrawal on shutdown.
    pub withdraw_delay: Duration,
}

/// The fewest bytes a sync key file may hold (256 bits).
pub const SYNC_KEY_MIN_BYTES: usize = 32;
/// The most bytes a sync key file may hold (a larger file is the wrong file).
pub const SYNC_KEY_MAX_BYTES: usize = 4096;

/// Flow-exception sync between gateways (`[sync]`): after a backend change,
/// the flows whose backend differs from what the current table picks are
/// told to the peers, so a peer that receives such a flow (ECMP moved it)
/// sends it to the same backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionSync {
    /// Where this gateway listens: UDP for the stream of entries, TCP on the
    /// same port for fetches.
    pub listen: SocketAddr,
    /// The peer gateways' sync addresses (same family as `listen`).
    pub peers: Vec<SocketAddr>,
    /// The file holding the shared key (its bytes, exactly; between
    /// [`SYNC_KEY_MIN_BYTES`] and [`SYNC_KEY_MAX_BYTES`]). Messages are sent
    /// with it.
    pub key_file: std::path::PathBuf,
    /// The key before the last rotation, still accepted on receipt.
    pub previous_key_file: Option<std::path::PathBuf>,
    /// How often queued entries are sent.
    pub batch_interval: Duration,
    /// Bytes per second sent to each peer (UDP payload).
    pub max_bytes_per_sec_per_peer: u32,
    /// Entries waiting to be sent; more are dropped and counted.
    pub max_queued: u32,
    /// Entries learned from peers that are kept; more are refused and
    /// counted (live entries are never evicted).
    pub max_held: u32,
    /// How long a starting gateway waits for its peers' answers to a fetch.
    pub fetch_timeout: Duration,
}

impl Config {
    /// The index of the target group named `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.target_groups.iter().position(|g| g.name == name)
    }

    /// The index of the listener named `name`.
    pub fn listener_index(&self, name: &str) -> Option<usize> {
        self.listeners.iter().position(|l| l.name == name)
    }
}

/// The admin HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where it listens (TCP).
    pub listen: SocketAddr,
    /// The file holding the bearer token that writes (and, off loopback,
    /// reads) must carry: `token_file`, or `NAME.admin-token` beside the
    /// config file `NAME.toml`, created at first start.
    pub token_file: std::path::PathBuf,
    /// The token read from `token_file` (`None`: the file does not exist
    /// yet; `dnlb run` creates it).
    pub token: Option<Token>,
    /// A Unix socket that also serves the API; whoever can open it (mode
    /// 0600) may write without the token.
    pub socket: Option<std::path::PathBuf>,
    /// Connections served at once; more are closed at once.
    pub max_connections: u32,
}

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What to do with a packet that is too large once encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooBigPolicy {
    /// Answer with ICMP fragmentation needed / packet too big (rate-limited).
    Icmp,
    /// Drop and count.
    Drop,
}

impl TooBigPolicy {
    /// The name in the config file (`icmp`, `drop`).
    pub fn name(self) -> &'static str {
        match self {
            TooBigPolicy::Icmp => "icmp",
            TooBigPolicy::Drop => "drop",
        }
    }
}

/// What to do with ICMP echo requests to a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoPolicy {
    /// Answer them.
    Reply,
    /// Drop and count.
    Drop,
}

impl EchoPolicy {
    /// The name in the config file (`reply`, `drop`).
    pub fn name(self) -> &'static str {
        match self {
            EchoPolicy::Reply => "reply",
            EchoPolicy::Drop => "drop",
        }
    }
}

/// Encapsulation settings of this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encap {
    /// Outer source toward IPv4 backends.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer source toward IPv6 backends.
    pub source_v6: Option<Ipv6Addr>,
    /// Outer destination MAC (next hop toward backends).
    pub next_hop_mac: [u8; 6],
    /// Egress MTU (bytes of the outer IP packet).
    pub mtu: u16,
    /// Too big after encapsulation.
    pub too_big: TooBigPolicy,
    /// ICMP errors per second per worker.
    pub icmp_rate_per_sec: u32,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// Echo requests to VIPs.
    pub icmp_echo: EchoPolicy,
}

impl Default for Encap {
    fn default() -> Self {
        Encap {
            source_v4: None,
            source_v6: None,
            next_hop_mac: [0; 6],
            mtu: 1500,
            too_big: TooBigPolicy::Icmp,
            icmp_rate_per_sec: 1000,
            ttl: 64,
            icmp_echo: EchoPolicy::Reply,
        }
    }
}

/// Connection-tracking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flows {
    /// Flows per worker.
    pub capacity_per_worker: u32,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// UDP idle timeout.
    pub udp_idle_timeout: Duration,
    /// TCP idle timeout after the client's FIN or RST.
    pub tcp_closing_timeout: Duration,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            capacity_per_worker: 1 << 20,
            tcp_idle_timeout: Duration::from_secs(900),
            udp_idle_timeout: Duration::from_secs(60),
            tcp_closing_timeout: Duration::from_secs(30),
        }
    }
}

/// Transport protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// The name in the config file (`tcp`, `udp`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a listener picks a backend for a new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// Weighted Maglev on the 5-tuple.
    Maglev,
    /// Weighted Maglev on the client address (session persistence).
    SourceIp,
}

impl Scheduler {
    /// The name in the config file (`maglev`, `source_ip`).
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Maglev => "maglev",
            Scheduler::SourceIp => "source_ip",
        }
    }
}

/// What a listener does with IP fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentPolicy {
    /// Drop and count.
    Drop,
    /// Hash on addresses only, so every fragment of a datagram lands on one
    /// backend.
    HashAddresses,
}

impl FragmentPolicy {
    /// The name in the config file (`drop`, `hash_addresses`).
    pub fn name(self) -> &'static str {
        match self {
            FragmentPolicy::Drop => "drop",
            FragmentPolicy::HashAddresses => "hash_addresses",
        }
    }
}

/// A listener: VIPs + protocol + port (or all ports) → target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Name.
    pub name: String,
    /// VIPs (at least one).
    pub vips: Vec<IpAddr>,
    /// Elastic IP, served like a VIP.
    pub elastic_ip: Option<IpAddr>,
    /// Protocol.
    pub protocol: Protocol,
    /// Port; `None` = all ports.
    pub port: Option<u16>,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Maglev table size (prime).
    pub table_size: u32,
    /// Fragments.
    pub fragments: FragmentPolicy,
    /// Index into `Config::target_groups`.
    pub target_group: usize,
    /// Who may open flows to it (`None`: everyone).
    pub acl: Option<Acl>,
    /// New-flow rate limits.
    pub limits: FlowLimits,
}

/// An IP prefix: an address and how many of its leading bits count. The
/// address has no bits set past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The first address.
    pub addr: IpAddr,
    /// Prefix length (0–32 for IPv4, 0–128 for IPv6).
    pub len: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What an access list does with a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclAction {
    /// Its packets are load-balanced.
    Allow,
    /// Its packets are dropped (`acl_denied`).
    Deny,
}

impl AclAction {
    /// The word used in config and reports.
    pub fn name(self) -> &'static str {
        match self {
            AclAction::Allow => "allow",
            AclAction::Deny => "deny",
        }
    }
}

/// A listener's access list: each source address takes the action of the
/// longest prefix that contains it, or `default` when none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// For sources no rule covers.
    pub default: AclAction,
    /// Rules, as written (allow lists first, then deny lists); a rule's
    /// place here is its counter's index.
    pub rules: Vec<(Cidr, AclAction)>,
}

impl Listener {
    /// Every address this listener serves: its VIPs and elastic IP.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vips.iter().copied().chain(self.elastic_ip)
    }
}

/// A group of backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Name.
    pub name: String,
    /// Backends.
    pub backends: Vec<Backend>,
    /// When every backend is unhealthy.
    pub all_down: AllDownPolicy,
    /// Health checking, if configured.
    pub health_check: Option<HealthCheck>,
    /// Whether new flows prefer the gateway's own zone.
    pub zone_affinity: ZoneAffinity,
}

/// Where a gateway sends new flows, by zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneAffinity {
    /// Every zone (all gateways build the same table).
    None,
    /// The gateway's own zone while it has a usable backend with weight;
    /// every zone otherwise.
    PreferOwn,
}

/// What a group does when every backend is unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllDownPolicy {
    /// Use every backend anyway (better some than none).
    FailOpen,
    /// Drop new flows (counted as `no_backend`).
    Drop,
}

/// How a probe asks a backend whether it is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection is accepted.
    Tcp,
    /// `GET path` answers with one of these status codes.
    Http {
        /// Request path.
        path: String,
        /// Healthy status codes.
        expected_status: Vec<u16>,
    },
    /// A datagram with this payload gets any reply.
    Udp {
        /// Probe payload.
        payload: Vec<u8>,
    },
}

/// Active health checking of a target group's backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The probe.
    pub probe: Probe,
    /// Port probed on each backend's address.
    pub port: u16,
    /// Time between probes of one backend.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Consecutive successes to become healthy.
    pub healthy_threshold: u8,
    /// Consecutive failures to become unhealthy.
    pub unhealthy_threshold: u8,
    /// After the gateway starts (or the group gains its health check),
    /// failed probes do not take a backend down for this long: a gateway
    /// whose own network path comes up late does not see every backend
    /// dead. Zero: no grace.
    pub startup_grace: Duration,
}

/// VM or container (informational; both are reached the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A virtual machine.
    Vm,
    /// A container.
    Container,
}

impl BackendKind {
    /// The name in the config file (`vm`, `container`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Vm => "vm",
            BackendKind::Container => "container",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How packets are carried to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// IP-in-IP (4in4, 6in6, 4in6, 6in4).
    IpIp,
    /// GUE variant 1 (direct IP in UDP) to this port.
    Gue {
        /// UDP destination port.
        port: u16,
    },
    /// VXLAN.
    Vxlan {
        /// Network identifier.
        vni: u32,
        /// Inner destination MAC.
        inner_mac: [u8; 6],
        /// UDP destination port.
        port: u16,
    },
    /// GRE.
    Gre {
        /// Optional key.
        key: Option<u32>,
    },
}

impl Tunnel {
    /// The tunnel type's name in the config file (`ipip`, `gue`, `vxlan`,
    /// `gre`).
    pub fn name(&self) -> &'static str {
        match self {
            Tunnel::IpIp => "ipip",
            Tunnel::Gue { .. } => "gue",
            Tunnel::Vxlan { .. } => "vxlan",
            Tunnel::Gre { .. } => "gre",
        }
    }
}

/// The type and its parameters, e.g. `vxlan vni 42 inner_mac 02:00:00:00:00:01 port 4789`.
impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())?;
        match self {
            Tunnel::IpIp | Tunnel::Gre { key: None } => Ok(()),
            Tunnel::Gue { port } => write!(f, " port {port}"),
            Tunnel::Vxlan {
                vni,
                inner_mac: m,
                port,
            } => write!(
                f,
                " vni {vni} inner_mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} port {port}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            Tunnel::Gre { key: Some(k) } => write!(f, " key {k}"),
        }
    }
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Tunnel endpoint address.
    pub address: IpAddr,
    /// Service port (identity only; 0 = none).
    pub port: u16,
    /// VM or container.
    pub kind: BackendKind,
    /// 0..=100.
    pub weight: u8,
    /// Zone.
    pub zone: Option<String>,
    /// Rack.
    pub rack: Option<String>,
    /// Tunnel.
    pub tunnel: Tunnel,
    /// Draining until this time: no new flows; established flows stay
    /// until then.
    pub drain_until: Option<SystemTime>,
}

/// This gateway's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Name, unique in the fleet.
    pub name: String,
    /// Availability zone.
    pub zone: Option<String>,
}

/// Packet I/O settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// Extra EAL arguments as given.
    pub eal_args: Vec<String>,
    /// The control thread's lcore.
    pub main_lcore: u32,
    /// Worker lcores, distinct, none equal to `main_lcore`.
    pub worker_lcores: Vec<u32>,
    /// Mbufs in the packet pool.
    pub pool_mbufs: u32,
    /// RX descriptors per queue.
    pub rx_descriptors: u16,
    /// TX descriptors per queue.
    pub tx_descriptors: u16,
    /// What an idle worker does.
    pub idle: IdlePolicy,
    /// Ports; indices into this list are port indices everywhere else.
    pub ports: Vec<PortSpec>,
    /// Index of the exception-path port, if any.
    pub host_port: Option<usize>,
}

/// What a worker does when polls come back empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause (a whole core per worker).
    BusyPoll,
    /// Sleep `sleep` after `polls` consecutive empty polls.
    Sleep {
        /// Empty polls before sleeping.
        polls: u32,
        /// How long to sleep.
        sleep: Duration,
    },
}

/// Where a port comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A virtual device created from EAL arguments (`--vdev=name,devargs`).
    Virtual {
        /// Device arguments (may be empty).
        devargs: String,
    },
    /// A PCI device (must be bound to a DPDK-compatible driver).
    Pci,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// DPDK device name.
    pub name: String,
    /// Where it comes from.
    pub device: Device,
    /// Index (in `Dataplane::ports`) of the port that frames received here
    /// and not for a VIP leave by.
    pub forward_to: Option<usize>,
    /// RSS over the RX queues.
    pub rss: bool,
    /// MTU to set.
    pub mtu: Option<u16>,
}

impl Dataplane {
    /// EAL arguments for this configuration: the user's, then lcores (unless
    /// the user gave their own lcore option), then one `--vdev` per virtual
    /// port and one `-a` per PCI port.
    pub fn full_eal_args(&self) -> Vec<String> {
        let mut args = self.eal_args.clone();
        let has_lcores = args.iter().any(|a| {
            a == "-l"
                || a == "-c"
                || a.starts_with("--lcores")
                || a.starts_with("-l") && a.len() > 2
        });
        if !has_lcores {
            let mut l = vec![self.main_lcore];
            l.extend(&self.worker_lcores);
            args.push("-l".into());
            args.push(l.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
            args.push(format!("--main-lcore={}", self.main_lcore));
        }
        for p in &self.ports {
            match &p.device {
                Device::Virtual { devargs } if devargs.is_empty() => {
                    args.push(format!("--vdev={}", p.name))
                }
                Device::Virtual { devargs } => args.push(format!("--vdev={},{}", p.name, devargs)),
                Device::Pci => {
                    args.push("-a".into());
                    args.push(p.name.clone());
                }
            }
        }
        args
    }
}
