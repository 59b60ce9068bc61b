use std::net::IpAddr;

use dnlb_testkit::{frame, FlowMix, IpVersion, Proto};

use super::*;

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse::<IpAddr>().unwrap(), l.parse().unwrap()).unwrap()
}

fn mix(ip: IpVersion, proto: Proto) -> FlowMix {
    FlowMix {
        ip,
        proto,
        ..FlowMix::default()
    }
}

#[test]
fn prefixes_clear_host_bits_and_refuse_long_lengths() {
    assert_eq!(
        pfx("198.18.7.9/16").addr(),
        "198.18.0.0".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        pfx("2001:db8::1/32").addr(),
        "2001:db8::".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        pfx("10.0.0.1/0").addr(),
        "0.0.0.0".parse::<IpAddr>().unwrap()
    );
    assert!(Prefix::new("10.0.0.1".parse().unwrap(), 33).is_none());
    assert!(Prefix::new("::1".parse().unwrap(), 129).is_none());
    assert!(Prefix::new("::1".parse().unwrap(), 128).is_some());
}

#[test]
fn filters_match_ipv4_and_ipv6_by_prefix_port_and_protocol() {
    let udp4 = frame(&mix(IpVersion::V4, Proto::Udp), 5, 0); // 198.18.0.5:1029 -> 192.0.2.10:80
    let tcp4 = frame(&mix(IpVersion::V4, Proto::Tcp), 5, 1);
    let udp6 = frame(&mix(IpVersion::V6, Proto::Udp), 5, 0); // 2001:db8:c1::5:1029 -> 2001:db8::10:80
    let arp = dnlb_testkit::arp_request([198, 18, 0, 1].into(), [192, 0, 2, 1].into());
    let f = |src: Option<&str>, dst: Option<&str>, sport, dport, proto| CaptureFilter {
        src: src.map(pfx),
        dst: dst.map(pfx),
        sport,
        dport,
        proto,
    };
    // (filter, [udp4, tcp4, udp6, arp])
    let cases = [
        (CaptureFilter::default(), [true, true, true, true]),
        (
            f(Some("198.18.0.5/32"), None, None, None, None),
            [true, true, false, false],
        ),
        (
            f(Some("198.18.0.0/15"), None, None, None, None),
            [true, true, false, false],
        ),
        (
            f(Some("198.18.0.6/32"), None, None, None, None),
            [false, false, false, false],
        ),
        (
            f(Some("0.0.0.0/0"), None, None, None, None),
            [true, true, false, false],
        ),
        (
            f(Some("::/0"), None, None, None, None),
            [false, false, true, false],
        ),
        (
            f(None, Some("2001:db8::/32"), None, None, None),
            [false, false, true, false],
        ),
        (
            f(None, Some("2001:db8::10/128"), None, Some(80), Some(17)),
            [false, false, true, false],
        ),
        (
            f(None, Some("192.0.2.10/32"), Some(1029), Some(80), Some(6)),
            [false, true, false, false],
        ),
        (
            f(None, None, Some(1029), None, None),
            [true, true, true, false],
        ),
        (
            f(None, None, Some(1030), None, None),
            [false, false, false, false],
        ),
        (
            f(None, None, None, Some(80), Some(17)),
            [true, false, true, false],
        ),
        (
            f(None, None, None, None, Some(1)),
            [false, false, false, false],
        ),
    ];
    for (filter, want) in cases {
        let got = [&udp4, &tcp4, &udp6, &arp].map(|fr| filter.matches(fr));
        assert_eq!(got, want, "{filter:?}");
        assert_eq!(CaptureFilter::decode(filter.encode()), filter);
    }
    // A later IPv4 fragment has no ports: only a filter without ports
    // keeps it.
    let mut frag = udp4.clone();
    frag[20] = 0x00;
    frag[21] = 0x10;
    assert!(!f(None, None, None, Some(80), None).matches(&frag));
    assert!(f(Some("198.18.0.5/32"), None, None, None, Some(17)).matches(&frag));
    // Truncated frames never panic.
    for n in 0..udp6.len() {
        let _ = f(None, None, Some(1), Some(2), None).matches(&udp6[..n]);
    }
}

fn drained(board: &CaptureBoard) -> Vec<Record> {
    let mut v = Vec::new();
    board.drain(0, &mut v);
    v
}

#[test]
fn armed_taps_record_matching_packets_in_and_out_with_the_decision() {
    let board = CaptureBoard::new(1);
    let mut tap = board.tap(0);
    let m = mix(IpVersion::V4, Proto::Udp);
    let (a, b) = (frame(&m, 1, 0), frame(&m, 2, 0));
    assert!(!tap.armed(10), "nothing armed");
    let seq = board.arm(&CaptureFilter {
        sport: Some(1025),
        ..Default::default()
    });
    assert!(tap.armed(100));
    assert_eq!(board.taken(0), seq);
    assert_eq!(tap.before(&b), None, "another flow");
    let at = tap.before(&a).unwrap();
    let out = vec![0xabu8; 700];
    let d = Decision::Backend(BackendId(7));
    tap.after(at, PortIndex(1), &out, d, 130);
    let at = tap.before(&a).unwrap();
    let dropped = Decision::Drop(DropReason::AclDenied);
    tap.after(at, PortIndex(1), &a, dropped, 131);
    let r = drained(&board);
    assert_eq!(r.len(), 3, "in and out, then a dropped packet's in only");
    assert_eq!(
        (r[0].seq, r[0].direction, r[0].port, r[0].decision, r[0].ms),
        (seq, Direction::In, PortIndex(1), d, 30)
    );
    assert_eq!((r[0].orig_len as usize, &r[0].data), (a.len(), &a));
    assert_eq!(
        (r[1].direction, r[1].decision, r[1].orig_len),
        (Direction::Out, d, 700)
    );
    assert_eq!(
        r[1].data,
        out[..SNAP_LEN].to_vec(),
        "cut at the snap length"
    );
    assert_eq!(
        (r[2].direction, r[2].decision, r[2].ms),
        (Direction::In, dropped, 31)
    );
    assert!(drained(&board).is_empty());
    let off = board.disarm();
    assert!(!tap.armed(200));
    assert_eq!(board.taken(0), off);
}

#[test]
fn a_full_ring_counts_drops_and_never_blocks() {
    let board = CaptureBoard::new(2);
    let mut tap = board.tap(1);
    board.arm(&CaptureFilter::default());
    assert!(tap.armed(0));
    let f = frame(&FlowMix::default(), 0, 0);
    let pass = Decision::Passed(PortIndex(0));
    // Each packet takes two slots.
    for _ in 0..RING_SLOTS / 2 + 10 {
        if let Some(at) = tap.before(&f) {
            tap.after(at, PortIndex(0), &f, pass, 0);
        }
    }
    assert_eq!(board.dropped(1), 10);
    assert_eq!(board.dropped(0), 0);
    // A packet whose received frame fits but whose leaving frame does not.
    let mut v = Vec::new();
    board.drain(1, &mut v);
    assert_eq!(v.len(), RING_SLOTS);
    for _ in 0..RING_SLOTS - 1 {
        let at = tap.before(&f).unwrap();
        tap.after(
            at,
            PortIndex(0),
            &f,
            Decision::Drop(DropReason::MalformedL4),
            0,
        );
    }
    let at = tap.before(&f).unwrap();
    tap.after(at, PortIndex(0), &f, pass, 0);
    assert_eq!(board.dropped(1), 11, "the leaving frame is counted");
    v.clear();
    board.drain(1, &mut v);
    assert_eq!(v.len(), RING_SLOTS);
    assert_eq!(v.last().unwrap().direction, Direction::In);
}

#[test]
fn the_consumer_on_another_thread_sees_whole_records_in_order() {
    let board = CaptureBoard::new(1);
    let mut tap = board.tap(0);
    board.arm(&CaptureFilter::default());
    assert!(tap.armed(0));
    let m = mix(IpVersion::V6, Proto::Tcp);
    let b = board.clone();
    let consumer = std::thread::spawn(move || {
        let mut all = Vec::new();
        while all.len() < 2 * 20_000 {
            b.drain(0, &mut all);
        }
        all
    });
    let mut sent = 0u32;
    while sent < 20_000 {
        let f = frame(&m, sent, 0);
        if let Some(at) = tap.before(&f) {
            tap.after(at, PortIndex(0), &f, Decision::Reply, sent);
            sent += 1;
        }
    }
    let all = consumer.join().unwrap();
    for (i, pair) in all.chunks(2).enumerate() {
        let f = frame(&m, i as u32, 0);
        assert_eq!(pair[0].data, f);
        assert_eq!(pair[1].data, f);
        assert_eq!((pair[0].ms, pair[1].direction), (i as u32, Direction::Out));
    }
}
