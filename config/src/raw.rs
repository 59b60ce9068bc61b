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
    /// Name of the port that frames from this one leave by until the
    /// load-balancing pipeline decides per packet. Default: this port.
    #[serde(default)]
    pub forward_to: Option<Spanned<String>>,
    /// Spread flows over the workers' RX queues with RSS. Default: true.
    #[serde(default)]
    pub rss: Option<bool>,
    /// MTU to set on the port. Default: the device's. Range 68..=9600.
    #[serde(default)]
    pub mtu: Option<Spanned<u16>>,
}
