//! `dnlb-pktgen [EAL arguments] -- [options]`: sends flows out of one DPDK
//! port, counts what comes back, prints JSON lines (see `--help`).

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use dnlb_pktgen::{run, AddrRange, FlowSpec, Generator, PortRange, Proto, RunConfig, Session};
use dnlb_testkit::{VIP4, VIP6};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtoArg {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IpArg {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A fixed set of flows, round-robin (TCP: ACKs mid-connection).
    Established,
    /// Every packet opens a new flow (TCP: SYNs from ever-new sources).
    NewFlows,
}

/// A DPDK traffic generator: sends flows out of one port (any PMD given as
/// EAL --vdev arguments), counts what comes back on the same port, measures
/// round-trip latency from stamps, and prints JSON lines (`start`, one
/// `second` per interval, `summary`) on stdout.
///
/// Ranges: addresses as A, A-B (inclusive), A/LEN (a whole prefix) or A+N
/// (N addresses from A); ports as P or P-Q. Established flows are the
/// product of --src-ip, --src-port, --dst-ip and --dst-port; new flows come
/// from --new-src-ip x --new-src-port toward the same destinations.
#[derive(Debug, Parser)]
#[command(
    name = "dnlb-pktgen",
    version,
    override_usage = "dnlb-pktgen [EAL arguments] -- [OPTIONS]"
)]
struct Args {
    /// DPDK device to use (default: the only probed port).
    #[arg(long)]
    port: Option<String>,
    /// Transport protocol.
    #[arg(long, value_enum, default_value = "udp")]
    proto: ProtoArg,
    /// IP version of the default ranges (default: that of the ranges given,
    /// else 4).
    #[arg(long, value_enum)]
    ip: Option<IpArg>,
    /// Source addresses of established flows [default: 198.18.0.0+1000 or
    /// 2001:db8:c1::+1000].
    #[arg(long)]
    src_ip: Option<AddrRange>,
    /// Source ports of established flows.
    #[arg(long, default_value = "1024")]
    src_port: PortRange,
    /// Destination addresses (VIPs) [default: 192.0.2.10 or 2001:db8::10].
    #[arg(long)]
    dst_ip: Option<AddrRange>,
    /// Destination ports.
    #[arg(long, default_value = "80")]
    dst_port: PortRange,
    /// Source addresses of new flows [default: 10.0.0.0/8 or
    /// 2001:db8:ffff::/80].
    #[arg(long)]
    new_src_ip: Option<AddrRange>,
    /// Source ports of new flows.
    #[arg(long, default_value = "1024-65535")]
    new_src_port: PortRange,
    /// Traffic: established flows, or every packet a new flow.
    #[arg(long, value_enum, default_value = "established")]
    mode: Mode,
    /// In established mode, the share of packets (0..1) that open a new
    /// flow instead (TCP: a SYN/ACK mix).
    #[arg(long, default_value_t = 0.0)]
    syn_fraction: f64,
    /// Frame length without FCS, 60..1514 (60 = a 64-byte frame on the
    /// wire).
    #[arg(long, default_value_t = 60)]
    frame_len: usize,
    /// Source MAC [default: the port's].
    #[arg(long, value_parser = parse_mac)]
    src_mac: Option<[u8; 6]>,
    /// Destination MAC.
    #[arg(long, value_parser = parse_mac, default_value = "02:00:00:00:00:02")]
    dst_mac: [u8; 6],
    /// Target packets per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to send, from link up (0: no limit).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Packets to send (default: no limit); whichever of --duration and
    /// --count comes first stops sending.
    #[arg(long)]
    count: Option<u64>,
    /// Packets per TX burst, 1..32.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=32))]
    burst: u16,
    /// Stamp every N-th packet for round-trip latency (0: no stamps).
    #[arg(long, default_value_t = 1000)]
    latency_every: u64,
    /// Latency samples room (stamping stops after this many).
    #[arg(long, default_value_t = 1 << 20)]
    max_latency_samples: u32,
    /// Mbufs in the pool.
    #[arg(long, default_value_t = 8191)]
    mbufs: u32,
    /// RX descriptors.
    #[arg(long, default_value_t = 1024)]
    rx_desc: u16,
    /// TX descriptors.
    #[arg(long, default_value_t = 1024)]
    tx_desc: u16,
    /// Seconds to wait for the link (a memif peer) to come up.
    #[arg(long, default_value_t = 30.0)]
    link_wait: f64,
    /// Milliseconds to keep receiving after sending stopped.
    #[arg(long, default_value_t = 100)]
    drain_ms: u64,
    /// Report interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// After the summary, wait up to this many seconds, without polling,
    /// for the peer to close the link before closing the port (0: close at
    /// once). For memif peers: stop the peer when the summary appears, and
    /// neither side unmaps rings the other is still polling.
    #[arg(long, default_value_t = 0.0)]
    linger: f64,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut m = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?}: bad byte {p:?}"))?;
    }
    Ok(m)
}

fn range(s: &str) -> AddrRange {
    s.parse().expect("built-in default ranges parse")
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what}: {s} is not a duration in seconds"))
}

impl Args {
    /// The flow spec; `src_mac` stands in until the port's MAC is known.
    fn spec(&self, src_mac: [u8; 6]) -> FlowSpec {
        let given = [&self.src_ip, &self.dst_ip, &self.new_src_ip];
        let v6 = match self.ip {
            Some(ip) => ip == IpArg::V6,
            None => given.iter().any(|r| r.is_some_and(|r| r.is_v6())),
        };
        let (src, dst, new_src) = if v6 {
            (
                range("2001:db8:c1::+1000"),
                AddrRange::single(VIP6.into()),
                range("2001:db8:ffff::/80"),
            )
        } else {
            (
                range("198.18.0.0+1000"),
                AddrRange::single(VIP4.into()),
                range("10.0.0.0/8"),
            )
        };
        FlowSpec {
            src_mac,
            dst_mac: self.dst_mac,
            proto: match self.proto {
                ProtoArg::Udp => Proto::Udp,
                ProtoArg::Tcp => Proto::Tcp,
            },
            src_ip: self.src_ip.unwrap_or(src),
            src_port: self.src_port,
            dst_ip: self.dst_ip.unwrap_or(dst),
            dst_port: self.dst_port,
            new_src_ip: self.new_src_ip.unwrap_or(new_src),
            new_src_port: self.new_src_port,
            frame_len: self.frame_len,
            new_flow_fraction: match self.mode {
                Mode::Established => self.syn_fraction,
                Mode::NewFlows => 1.0,
            },
            stamp_every: self.latency_every,
            max_stamps: self.max_latency_samples,
        }
    }

    fn run_config(&self) -> Result<RunConfig, String> {
        if self.mode == Mode::NewFlows && self.syn_fraction != 0.0 {
            return Err(
                "--syn-fraction is for established mode (new-flows sends only new flows)".into(),
            );
        }
        Ok(RunConfig {
            port: self.port.clone(),
            rate_pps: self.rate,
            duration: (self.duration > 0.0)
                .then(|| secs(self.duration, "--duration"))
                .transpose()?,
            count: self.count,
            burst: usize::from(self.burst),
            pool_mbufs: self.mbufs,
            rx_descriptors: self.rx_desc,
            tx_descriptors: self.tx_desc,
            link_wait: secs(self.link_wait, "--link-wait")?,
            drain: Duration::from_millis(self.drain_ms),
            interval: Duration::from_millis(self.interval_ms.max(1)),
            linger: secs(self.linger, "--linger")?,
        })
    }
}

/// EAL arguments (before the first `--`) and the generator's (after it).
fn split_args(all: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut it = all.into_iter();
    let prog = it.next().unwrap_or_else(|| "dnlb-pktgen".into());
    let rest: Vec<String> = it.collect();
    match rest.iter().position(|a| a == "--") {
        Some(i) => {
            let mut app = vec![prog];
            app.extend_from_slice(&rest[i + 1..]);
            (rest[..i].to_vec(), app)
        }
        None => (Vec::new(), std::iter::once(prog).chain(rest).collect()),
    }
}

fn main() -> ExitCode {
    let (eal_args, app_args) = split_args(std::env::args().collect());
    let args = Args::parse_from(app_args);
    match real_main(&args, eal_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dnlb-pktgen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: &Args, eal_args: Vec<String>) -> Result<(), String> {
    let cfg = args.run_config()?;
    // Check the flow spec before DPDK starts (the real MAC comes later).
    args.spec([0; 6]).validate().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("installing a signal handler: {e}"))?;
    }
    let eal = dpdk_bindings::Eal::init(eal_args).map_err(|e| e.to_string())?;
    let mut session = Session::open(&eal, &cfg).map_err(|e| e.to_string())?;
    let mac = match args.src_mac {
        Some(m) => m,
        None => session.mac().map_err(|e| e.to_string())?,
    };
    let spec = args.spec(mac);
    let mut gen = Generator::new(&spec).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    run(&mut session, &mut gen, &spec, &cfg, &stop, &mut out).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eal_and_app_arguments_split_at_the_first_double_dash() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let (eal, app) = split_args(v("p --no-huge --vdev net_null0 -- --rate 5 -- x"));
        assert_eq!(eal, v("--no-huge --vdev net_null0"));
        assert_eq!(app, v("p --rate 5 -- x"));
        let (eal, app) = split_args(v("p --help"));
        assert!(eal.is_empty());
        assert_eq!(app, v("p --help"));
    }

    #[test]
    fn defaults_follow_the_family_of_the_ranges_given() {
        let a = Args::parse_from(["p", "--dst-ip", "2001:db8::10", "--frame-len", "90"]);
        let s = a.spec([0; 6]);
        assert!(s.is_v6() && s.src_ip.is_v6() && s.new_src_ip.is_v6());
        s.validate().unwrap();
        let a = Args::parse_from(["p", "--mode", "new-flows", "--proto", "tcp"]);
        let s = a.spec([0; 6]);
        assert_eq!(s.new_flow_fraction, 1.0);
        assert_eq!(s.flows(), 1000);
        let a = Args::parse_from(["p", "--mode", "new-flows", "--syn-fraction", "0.5"]);
        assert!(a.run_config().is_err());
        let a = Args::parse_from(["p", "--mode", "established", "--syn-fraction", "0.5"]);
        assert!(a.run_config().is_ok());
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:00:0a:01:00:ff").unwrap(),
            [2, 0, 10, 1, 0, 255]
        );
        assert!(parse_mac("02:00:0a:01:00").is_err());
        assert!(parse_mac("02:00:0a:01:00:zz").is_err());
    }
}
