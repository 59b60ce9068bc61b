//! Writes a traffic mix as a pcap file, for `net_pcap` replay in benchmarks
//! (and for a hardware packet generator on real testbeds).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use std::net::Ipv4Addr;

use dnlb_testkit::{frame, frames, write_pcap, FlowMix, IpVersion, Proto};
use dnlb_wire::checksum::update_addr_v4;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtoArg {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IpArg {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
}

/// Generate a pcap of N flows toward one VIP.
#[derive(Debug, Parser)]
struct Args {
    /// Distinct flows (5-tuples).
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Packets per flow (round-robin over flows).
    #[arg(long, default_value_t = 1)]
    packets_per_flow: u32,
    /// Frame length without FCS (60 = a 64-byte frame on the wire).
    #[arg(long, default_value_t = 60)]
    frame_len: usize,
    /// Transport protocol.
    #[arg(long, value_enum, default_value = "udp")]
    proto: ProtoArg,
    /// IP version.
    #[arg(long, value_enum, default_value = "4")]
    ip: IpArg,
    /// Destination port.
    #[arg(long, default_value_t = 80)]
    dst_port: u16,
    /// Packets past each flow's first instead of all of them (TCP: ACKs of
    /// an established connection, no SYN), `packets_per_flow` of each,
    /// round-robin over flows.
    #[arg(long)]
    mid_flow: bool,
    /// IPv4 only: each flow from its own source address, 10.0.0.0 + flow
    /// number (up to 2^24 sources; the default mix spans a /15).
    #[arg(long)]
    distinct_sources: bool,
    /// Output file.
    #[arg(long, short)]
    out: PathBuf,
}

/// Moves IPv4 frame `f` to source 10.0.0.0 + `n`, checksums kept right.
fn with_source(mut f: Vec<u8>, n: u32) -> Vec<u8> {
    let old = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let new = Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff));
    f[26..30].copy_from_slice(&new.octets());
    let ip = u16::from_be_bytes([f[24], f[25]]);
    f[24..26].copy_from_slice(&update_addr_v4(ip, old, new).to_be_bytes());
    // TCP (checksum at +16) or UDP (+6) after a 20-byte IPv4 header.
    let at = if f[23] == 6 { 34 + 16 } else { 34 + 6 };
    let l4 = u16::from_be_bytes([f[at], f[at + 1]]);
    f[at..at + 2].copy_from_slice(&update_addr_v4(l4, old, new).to_be_bytes());
    f
}

fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let mix = FlowMix {
        flows: a.flows,
        packets_per_flow: a.packets_per_flow,
        proto: match a.proto {
            ProtoArg::Udp => Proto::Udp,
            ProtoArg::Tcp => Proto::Tcp,
        },
        ip: match a.ip {
            IpArg::V4 => IpVersion::V4,
            IpArg::V6 => IpVersion::V6,
        },
        frame_len: a.frame_len,
        dst_port: a.dst_port,
    };
    let f: Vec<Vec<u8>> = if a.mid_flow || a.distinct_sources {
        let (first, rounds) = if a.mid_flow {
            (1, a.packets_per_flow.max(1))
        } else {
            (0, 1)
        };
        (first..first + rounds)
            .flat_map(|seq| (0..a.flows).map(move |n| (n, seq)))
            .map(|(n, seq)| {
                let f = frame(&mix, n, seq);
                if a.distinct_sources && matches!(mix.ip, IpVersion::V4) {
                    with_source(f, n)
                } else {
                    f
                }
            })
            .collect()
    } else {
        frames(&mix)
    };
    write_pcap(&a.out, &f)?;
    eprintln!(
        "wrote {} frames of {} flows to {}",
        f.len(),
        a.flows,
        a.out.display()
    );
    Ok(())
}
