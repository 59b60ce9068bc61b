//! Traffic for tests and benchmarks.
//!
//! Frames are built with `etherparse`, a library independent of dnlb's own
//! packet code, so tests that compare against them are differential.

#![forbid(unsafe_code)]

mod packet;

pub use packet::VecPacket;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

/// Transport protocol of generated flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments (ACK set, SYN on a flow's first packet when `syn` is set).
    Tcp,
}

/// IP version of generated flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// A mix of flows to generate: `flows` distinct 5-tuples toward one
/// destination address and port, frames of `frame_len` bytes (padded up to
/// the minimum the headers need).
#[derive(Debug, Clone)]
pub struct FlowMix {
    /// Number of distinct flows (source address and port vary).
    pub flows: u32,
    /// Packets per flow, emitted round-robin over flows.
    pub packets_per_flow: u32,
    /// Transport.
    pub proto: Proto,
    /// IP version.
    pub ip: IpVersion,
    /// Ethernet frame length without FCS (64-byte wire frames are 60 here).
    pub frame_len: usize,
    /// Destination port.
    pub dst_port: u16,
}

impl Default for FlowMix {
    fn default() -> Self {
        FlowMix {
            flows: 1000,
            packets_per_flow: 1,
            proto: Proto::Udp,
            ip: IpVersion::V4,
            frame_len: 60,
            dst_port: 80,
        }
    }
}

/// Source MAC of generated frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of generated frames.
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Destination IPv4 address (a VIP in documentation space).
pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// Destination IPv6 address (a VIP in documentation space).
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

fn client4(i: u32) -> Ipv4Addr {
    // 198.18.0.0/15, the benchmarking range.
    Ipv4Addr::from(0xc612_0000u32 | (i & 0x1_ffff))
}

fn client6(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, (i >> 16) as u16, i as u16)
}

/// One frame of flow `flow`, `seq`-th of the flow.
pub fn frame(mix: &FlowMix, flow: u32, seq: u32) -> Vec<u8> {
    let sport = 1024 + (flow % 64000) as u16;
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GATEWAY_MAC);
    let b = match mix.ip {
        IpVersion::V4 => b.ipv4(client4(flow).octets(), VIP4.octets(), 64),
        IpVersion::V6 => b.ipv6(client6(flow).octets(), VIP6.octets(), 64),
    };
    let headers = match (mix.ip, mix.proto) {
        (IpVersion::V4, Proto::Udp) => 14 + 20 + 8,
        (IpVersion::V6, Proto::Udp) => 14 + 40 + 8,
        (IpVersion::V4, Proto::Tcp) => 14 + 20 + 20,
        (IpVersion::V6, Proto::Tcp) => 14 + 40 + 20,
    };
    let payload_len = mix.frame_len.saturating_sub(headers);
    let mut payload = vec![0u8; payload_len];
    for (i, p) in payload.iter_mut().enumerate() {
        *p = (flow as usize + seq as usize + i) as u8;
    }
    let mut out = Vec::with_capacity(headers + payload_len);
    match mix.proto {
        Proto::Udp => b.udp(sport, mix.dst_port).write(&mut out, &payload),
        Proto::Tcp => {
            let t = b.tcp(sport, mix.dst_port, 1000 + seq, 65535);
            let t = if seq == 0 { t.syn() } else { t.ack(1) };
            t.write(&mut out, &payload)
        }
    }
    .expect("writing a generated frame");
    out
}

/// All frames of a mix, round-robin over flows.
pub fn frames(mix: &FlowMix) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity((mix.flows * mix.packets_per_flow) as usize);
    for seq in 0..mix.packets_per_flow {
        for f in 0..mix.flows {
            v.push(frame(mix, f, seq));
        }
    }
    v
}

/// A non-IP frame (ARP request) for mixes that must leave some traffic to
/// the host.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x06]); // ethertype ARP
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

/// Writes frames to a pcap file (Ethernet link type), 1 µs apart.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let mut w = PcapWriter::new(file).map_err(std::io::Error::other)?;
    for (i, f) in frames.iter().enumerate() {
        let ts = std::time::Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Reads every frame of a pcap file.
pub fn read_pcap(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut r =
        PcapReader::new(BufReader::new(File::open(path)?)).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.map_err(std::io::Error::other)?.data.into_owned());
    }
    Ok(out)
}

/// splitmix64: a small deterministic generator for test and benchmark
/// inputs (fingerprints, addresses), the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random IPv4 address.
    pub fn v4(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }

    /// A random IPv6 address.
    pub fn v6(&mut self) -> [u8; 16] {
        (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn frames_parse_back_with_the_asked_shape() {
        for ip in [IpVersion::V4, IpVersion::V6] {
            for proto in [Proto::Udp, Proto::Tcp] {
                let mix = FlowMix {
                    flows: 50,
                    packets_per_flow: 2,
                    proto,
                    ip,
                    frame_len: 100,
                    dst_port: 443,
                };
                let fr = frames(&mix);
                assert_eq!(fr.len(), 100);
                let mut sources = std::collections::HashSet::new();
                for f in &fr {
                    assert_eq!(f.len(), 100);
                    let p = SlicedPacket::from_ethernet(f).unwrap();
                    match (&p.net, ip) {
                        (Some(NetSlice::Ipv4(h)), IpVersion::V4) => {
                            sources.insert(h.header().source().to_vec());
                        }
                        (Some(NetSlice::Ipv6(h)), IpVersion::V6) => {
                            sources.insert(h.header().source().to_vec());
                        }
                        other => panic!("unexpected net layer {other:?}"),
                    }
                    match (&p.transport, proto) {
                        (Some(TransportSlice::Udp(u)), Proto::Udp) => {
                            assert_eq!(u.destination_port(), 443)
                        }
                        (Some(TransportSlice::Tcp(t)), Proto::Tcp) => {
                            assert_eq!(t.destination_port(), 443)
                        }
                        other => panic!("unexpected transport {other:?}"),
                    }
                }
                assert_eq!(sources.len(), 50);
            }
        }
    }

    #[test]
    fn pcap_round_trip() {
        let dir = std::env::temp_dir().join(format!("dnlb-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.pcap");
        let fr = frames(&FlowMix {
            flows: 10,
            ..FlowMix::default()
        });
        write_pcap(&path, &fr).unwrap();
        assert_eq!(read_pcap(&path).unwrap(), fr);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
