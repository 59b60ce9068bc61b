//! The generator's frames and flows, without DPDK: every frame parses with
//! `etherparse` (independent of dnlb's code) with the asked shape and right
//! checksums (checked by etherparse and by dnlb-wire as a receiver would),
//! stamps read back, and the flow ranges are covered exactly.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use dnlb_pktgen::stamp::Stamp;
use dnlb_pktgen::{AddrRange, FlowSpec, Generator, PortRange, Proto, Tuple};
use dnlb_wire::checksum;
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use proptest::prelude::*;

fn spec(v6: bool, proto: Proto, frame_len: usize) -> FlowSpec {
    let r = |s: &str| s.parse::<AddrRange>().unwrap();
    FlowSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        proto,
        src_ip: if v6 {
            r("2001:db8:c1::fffe+5")
        } else {
            r("198.18.0.254+5")
        },
        src_port: "1024-1026".parse().unwrap(),
        dst_ip: if v6 {
            r("2001:db8::10")
        } else {
            r("192.0.2.10-192.0.2.11")
        },
        dst_port: "80".parse().unwrap(),
        new_src_ip: if v6 {
            r("2001:db8:ffff::/120")
        } else {
            r("10.0.0.0/24")
        },
        new_src_port: "40000-40009".parse().unwrap(),
        frame_len,
        new_flow_fraction: 0.0,
        stamp_every: 0,
        max_stamps: 1 << 16,
    }
}

/// What a frame says, after checking its checksums two ways.
#[derive(Debug)]
struct Parsed {
    tuple: Tuple,
    syn: bool,
    ack: bool,
    stamp: Option<Stamp>,
}

fn parse(frame: &[u8], src_mac: [u8; 6], dst_mac: [u8; 6]) -> Parsed {
    let h = PacketHeaders::from_ethernet_slice(frame).expect("frame parses");
    let eth = h.link.clone().unwrap().ethernet2().unwrap();
    assert_eq!((eth.source, eth.destination), (src_mac, dst_mac));
    let payload = h.payload.slice();
    let (src, dst, seg_at) = match h.net.as_ref().unwrap() {
        NetHeaders::Ipv4(ip, _) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert_eq!(
                usize::from(ip.total_len),
                frame.len() - 14,
                "IPv4 total length"
            );
            // dnlb-wire as a receiver: the header sums to zero.
            assert_eq!(checksum::checksum(&frame[14..34]), 0);
            let (s, d) = (Ipv4Addr::from(ip.source), Ipv4Addr::from(ip.destination));
            let proto = ip.protocol.0;
            assert_eq!(
                checksum::transport_v4(s, d, proto, &frame[34..]),
                0,
                "wire: L4 sum"
            );
            (u128::from(s.to_bits()), u128::from(d.to_bits()), 34)
        }
        NetHeaders::Ipv6(ip, _) => {
            assert_eq!(
                usize::from(ip.payload_length),
                frame.len() - 54,
                "IPv6 payload length"
            );
            let (s, d) = (Ipv6Addr::from(ip.source), Ipv6Addr::from(ip.destination));
            let nh = ip.next_header.0;
            assert_eq!(
                checksum::transport_v6(s, d, nh, &frame[54..]),
                0,
                "wire: L4 sum"
            );
            (s.to_bits(), d.to_bits(), 54)
        }
    };
    let l4_checksum = |calc: u16, got: u16| assert_eq!(got, calc, "etherparse: L4 checksum");
    let (sport, dport, syn, ack) = match (h.transport.as_ref().unwrap(), h.net.as_ref().unwrap()) {
        (TransportHeader::Udp(u), net) => {
            assert_ne!(u.checksum, 0, "UDP checksum present");
            assert_eq!(usize::from(u.length), frame.len() - seg_at);
            match net {
                NetHeaders::Ipv4(ip, _) => {
                    l4_checksum(u.calc_checksum_ipv4(ip, payload).unwrap(), u.checksum)
                }
                NetHeaders::Ipv6(ip, _) => {
                    l4_checksum(u.calc_checksum_ipv6(ip, payload).unwrap(), u.checksum)
                }
            }
            (u.source_port, u.destination_port, false, false)
        }
        (TransportHeader::Tcp(t), net) => {
            match net {
                NetHeaders::Ipv4(ip, _) => {
                    l4_checksum(t.calc_checksum_ipv4(ip, payload).unwrap(), t.checksum)
                }
                NetHeaders::Ipv6(ip, _) => {
                    l4_checksum(t.calc_checksum_ipv6(ip, payload).unwrap(), t.checksum)
                }
            }
            assert!(!t.rst && !t.fin);
            (t.source_port, t.destination_port, t.syn, t.ack)
        }
        other => panic!("unexpected transport {other:?}"),
    };
    Parsed {
        tuple: Tuple {
            src,
            sport,
            dst,
            dport,
        },
        syn,
        ack,
        stamp: Stamp::read(frame),
    }
}

fn frames(g: &mut Generator, n: usize) -> Vec<(Vec<u8>, bool)> {
    (0..n)
        .map(|i| {
            let p = g.next(1000 + i as u64);
            let mut buf = vec![0u8; p.len()];
            p.write(&mut buf);
            (buf, p.new_flow)
        })
        .collect()
}

#[test]
fn every_shape_parses_with_right_checksums() {
    for v6 in [false, true] {
        for proto in [Proto::Udp, Proto::Tcp] {
            for len in [60, 61, 63, 64, 75, 77, 78, 79, 128, 1513, 1514] {
                let mut s = spec(v6, proto, len);
                if s.validate().is_err() {
                    assert!(len < 74, "{len} refused for v6={v6} {proto:?}");
                    continue;
                }
                s.stamp_every = 3;
                s.new_flow_fraction = 0.5;
                let mut g = Generator::new(&s).unwrap();
                for (f, new_flow) in frames(&mut g, 24) {
                    let p = parse(&f, s.src_mac, s.dst_mac);
                    if p.stamp.is_some() {
                        assert_eq!(f.len(), s.stamped_len());
                    } else {
                        assert_eq!(f.len(), len);
                    }
                    if proto == Proto::Tcp {
                        // SYNs open flows, ACKs continue them.
                        assert_eq!((p.syn, p.ack), (new_flow, !new_flow));
                    }
                }
                assert_eq!(g.stamps(), 8);
                assert_eq!(g.new_flow_packets(), 12);
            }
        }
    }
}

#[test]
fn frame_lengths_out_of_range_are_refused() {
    assert!(spec(false, Proto::Udp, 59).validate().is_err());
    assert!(spec(false, Proto::Udp, 1515).validate().is_err());
    assert!(spec(true, Proto::Tcp, 73).validate().is_err());
    assert!(spec(true, Proto::Tcp, 74).validate().is_ok());
    let mut s = spec(false, Proto::Udp, 60);
    s.new_flow_fraction = 1.5;
    assert!(s.validate().is_err());
    let mut s = spec(false, Proto::Udp, 60);
    s.dst_ip = "2001:db8::10".parse().unwrap();
    assert!(s.validate().is_err());
}

#[test]
fn stamps_carry_sequence_and_time() {
    let mut s = spec(false, Proto::Tcp, 60);
    s.stamp_every = 4;
    s.max_stamps = 3;
    let mut g = Generator::new(&s).unwrap();
    let got: Vec<Stamp> = frames(&mut g, 40)
        .iter()
        .filter_map(|(f, _)| parse(f, s.src_mac, s.dst_mac).stamp)
        .collect();
    // packets 0, 4 and 8, then no room for more stamps
    let want: Vec<Stamp> = [0u32, 1, 2]
        .iter()
        .map(|&seq| Stamp {
            seq,
            tsc: 1000 + 4 * u64::from(seq),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(s.stamped_len(), 70); // 54 bytes of headers + 16
}

#[test]
fn established_flows_cover_exactly_the_product_of_the_ranges() {
    for v6 in [false, true] {
        let s = spec(v6, Proto::Udp, 100);
        let n = s.flows() as usize;
        assert_eq!(n, 5 * 3 * if v6 { 1 } else { 2 });
        let mut g = Generator::new(&s).unwrap();
        let mut count: HashMap<Tuple, usize> = HashMap::new();
        for (f, _) in frames(&mut g, 3 * n) {
            *count
                .entry(parse(&f, s.src_mac, s.dst_mac).tuple)
                .or_default() += 1;
        }
        let mut want = HashSet::new();
        for a in 0..s.src_ip.count() {
            for p in 0..s.src_port.count() {
                for d in 0..s.dst_ip.count() {
                    want.insert(Tuple {
                        src: s.src_ip.nth_bits(a),
                        sport: s.src_port.nth(p),
                        dst: s.dst_ip.nth_bits(d),
                        dport: 80,
                    });
                }
            }
        }
        assert_eq!(count.keys().copied().collect::<HashSet<_>>(), want);
        assert!(
            count.values().all(|&c| c == 3),
            "round-robin: each flow 3 times"
        );
    }
}

#[test]
fn new_flows_never_repeat_until_the_tuples_run_out() {
    let mut s = spec(false, Proto::Tcp, 60);
    s.new_flow_fraction = 1.0;
    let space = s.new_flow_tuples() as usize;
    assert_eq!(space, 256 * 10 * 2);
    let mut g = Generator::new(&s).unwrap();
    let mut seen = HashSet::new();
    for (f, new_flow) in frames(&mut g, space) {
        assert!(new_flow);
        let p = parse(&f, s.src_mac, s.dst_mac);
        assert!(p.syn && !p.ack);
        assert!(seen.insert(p.tuple), "tuple repeated");
        let src = Ipv4Addr::from_bits(p.tuple.src as u32);
        assert!(src.octets()[..3] == [10, 0, 0]);
        assert!((40000..=40009).contains(&p.tuple.sport));
    }
    assert_eq!(g.new_flow_wraps(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any fraction gives round(n * f) new flows in the first n packets, and
    /// checksums stay right for any addresses and ports (including those
    /// whose sums wrap).
    #[test]
    fn fractions_and_checksums_hold_anywhere(
        v6 in any::<bool>(),
        tcp in any::<bool>(),
        len in 74usize..=1514,
        frac in 0u32..=100,
        src4 in any::<u32>(),
        src6 in any::<u128>(),
        sport in any::<u16>(),
        dport in any::<u16>(),
    ) {
        let mut s = spec(v6, if tcp { Proto::Tcp } else { Proto::Udp }, len);
        s.src_ip = if v6 {
            AddrRange::new(Ipv6Addr::from_bits(src6 & !0xff).into(), 4).unwrap()
        } else {
            AddrRange::new(Ipv4Addr::from_bits(src4 & !0xff).into(), 4).unwrap()
        };
        s.src_port = PortRange::new(sport & !3, sport | 3).unwrap();
        s.dst_port = PortRange::single(dport);
        s.new_flow_fraction = f64::from(frac) / 100.0;
        s.stamp_every = 7;
        let mut g = Generator::new(&s).unwrap();
        let fr = frames(&mut g, 200);
        for (f, _) in &fr {
            parse(f, s.src_mac, s.dst_mac);
        }
        let new_flows = fr.iter().filter(|(_, n)| *n).count();
        prop_assert_eq!(new_flows, (200.0 * s.new_flow_fraction).round() as usize);
    }
}
