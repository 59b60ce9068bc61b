//! Writes a traffic mix as a pcap file, for `net_pcap` replay in benchmarks
//! (and for a hardware packet generator on real testbeds).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use dnlb_testkit::{frames, write_pcap, FlowMix, IpVersion, Proto};

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
    /// Output file.
    #[arg(long, short)]
    out: PathBuf,
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
    let f = frames(&mix);
    write_pcap(&a.out, &f)?;
    eprintln!(
        "wrote {} frames of {} flows to {}",
        f.len(),
        a.flows,
        a.out.display()
    );
    Ok(())
}
