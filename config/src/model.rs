//! The validated configuration. Everything downstream of `dnlb-config`
//! works on these types; they can only be built by validation.

use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This gateway.
    pub gateway: Gateway,
    /// Packet I/O.
    pub dataplane: Dataplane,
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
    /// Index (in `Dataplane::ports`) of the port frames leave by.
    pub forward_to: usize,
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
