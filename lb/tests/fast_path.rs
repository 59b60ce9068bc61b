//! The fast path ([`Processor::stage`] and [`Processor::finish`], falling back to the general
//! step when it declines) against the general step alone
//! ([`Processor::process`]), on random streams: every action, every frame
//! sent, the counters and the flow table must be the same. The streams mix
//! what the fast path takes (ACKs, UDP, bare SYNs, hits and new flows) with
//! what it must decline (SYN+ACK, FIN, RST, listeners with access lists,
//! a flow a packet would open on a listener with limits,
//! backends gone unusable, frames over the MTU, malformed frames, expired
//! entries, a full table).

mod common;

use std::path::Path;

use common::{learn_ops, GW_MAC, ROUTER_MAC};
use dnlb_lb::flow_table::Walked;
use dnlb_lb::processor::{ListenerMemo, Processor};
use dnlb_lb::snapshot::{BackendRegistry, BuildTime, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::VecPacket;
use etherparse::PacketBuilder;
use proptest::prelude::*;

/// Listeners: web (TCP 80, both families, to target group `web_group`), web2
/// (TCP 80 on other addresses of both families, group h),
/// dns (UDP 53, new-flow limits), admin (TCP 443, access list), api (TCP
/// 8443, new-flow limits), stats (UDP
/// 5353, source-IP scheduler); group g's backends of every tunnel kind, one
/// over IPv6, and group h's one; MTU 1300.
fn config(web_group: &str) -> String {
    format!(
        "[gateway]\nname = \"f\"\n[dataplane]\nworker_lcores = [1]\n\
    [[dataplane.ports]]\nname = \"net_null0\"\n\
    [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8::fe\"\n\
    next_hop_mac = \"02:00:00:00:00:fe\"\nmtu = 1300\n\
    [[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"tcp\"\nport = 80\n\
    target_group = \"{web_group}\"\n\
    [[listener]]\nname = \"web2\"\nvips = [\"192.0.2.2\", \"2001:db8::2\"]\nprotocol = \"tcp\"\nport = 80\n\
    target_group = \"h\"\n\
    [[listener]]\nname = \"dns\"\nvips = [\"192.0.2.1\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"g\"\n\
    [listener.limits]\nnew_flows_per_sec = 20\n\
    [[listener]]\nname = \"admin\"\nvips = [\"192.0.2.1\"]\nprotocol = \"tcp\"\nport = 443\ntarget_group = \"g\"\n\
    [listener.acl]\ndeny = [\"198.18.0.0/30\"]\n\
    [[listener]]\nname = \"api\"\nvips = [\"192.0.2.1\"]\nprotocol = \"tcp\"\nport = 8443\ntarget_group = \"g\"\n\
    [listener.limits]\nnew_flows_per_sec = 20\n\
    [[listener]]\nname = \"stats\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"udp\"\nport = 5353\n\
    target_group = \"g\"\nscheduler = \"source_ip\"\n\
    [[target_group]]\nname = \"g\"\n\
    [[target_group.backend]]\naddress = \"10.9.0.1\"\ntunnel = \"vxlan\"\nvni = 7\ninner_mac = \"02:00:0a:09:00:01\"\n\
    [[target_group.backend]]\naddress = \"10.9.0.2\"\ntunnel = \"ipip\"\n\
    [[target_group.backend]]\naddress = \"10.9.0.3\"\ntunnel = \"gue\"\n\
    [[target_group.backend]]\naddress = \"2001:db8:9::4\"\ntunnel = \"gre\"\ngre_key = 4\n\
    [[target_group]]\nname = \"h\"\n\
    [[target_group.backend]]\naddress = \"10.9.0.9\"\ntunnel = \"ipip\"\n"
    )
}

/// The snapshot with the backends whose last address byte is in `down`
/// failing their health checks, listener web to group `web_group`.
fn snapshot_of(web_group: &str, down: &[u8], reg: &mut BackendRegistry) -> Snapshot {
    let text = config(web_group);
    let cfg = dnlb_config::parse(Path::new("f.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let healthy = |_: &str, id: &dnlb_lb::maglev::Identity| !down.contains(&id[15]);
    Snapshot::build_with_health(&cfg, 1, reg, None, &healthy, &BuildTime::now())
        .unwrap()
        .0
}

/// [`snapshot_of`] with web to group g.
fn snapshot(down: &[u8], reg: &mut BackendRegistry) -> Snapshot {
    snapshot_of("g", down, reg)
}

/// One packet of the stream.
#[derive(Debug, Clone)]
struct Pkt {
    v6: bool,
    /// The destination's last byte: 1 (most listeners' VIP), 2 (web2's
    /// VIP: the same ports, another listener) or 3 (no VIP).
    dst: u8,
    port: u16,
    client: u8,
    /// TCP flags: bits of F S R P A (UDP ignores them).
    flags: u8,
    payload: usize,
    /// A byte to overwrite (offset, value), making some frames malformed.
    corrupt: Option<(usize, u8)>,
    /// Milliseconds since the previous packet.
    after_ms: u32,
    /// Which snapshot (health state; 4: web moved to group h) is in force.
    health: usize,
    /// Whether the burst's first pass ran (a hint is passed).
    hinted: bool,
}

fn frame(p: &Pkt) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC);
    let b = if p.v6 {
        let mut src = [0x20, 1, 0xd, 0xb8, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        src[15] = p.client;
        let mut dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        dst[15] = p.dst;
        b.ipv6(src, dst, 60)
    } else {
        b.ipv4([198, 18, 0, p.client], [192, 0, 2, p.dst], 60)
    };
    let sport = 1000 + u16::from(p.client % 5);
    let payload = vec![0x5a; p.payload];
    let mut out = Vec::new();
    if p.port == 53 || p.port == 5353 {
        b.udp(sport, p.port).write(&mut out, &payload).unwrap();
    } else {
        let mut t = b.tcp(sport, p.port, 7, 1000);
        for (bit, set) in [(0, "F"), (1, "S"), (2, "R"), (3, "P"), (4, "A")] {
            if p.flags & (1 << bit) != 0 {
                t = match set {
                    "F" => t.fin(),
                    "S" => t.syn(),
                    "R" => t.rst(),
                    "P" => t.psh(),
                    _ => t.ack(1),
                };
            }
        }
        t.write(&mut out, &payload).unwrap();
    }
    if let Some((at, v)) = p.corrupt {
        let i = at % out.len();
        out[i] = v;
    }
    out
}

fn pkt() -> impl Strategy<Value = Pkt> {
    let flags = prop_oneof![
        4 => Just(0b10000u8),
        2 => Just(0b11000),
        1 => Just(0b00010),
        1 => Just(0b10010),
        1 => Just(0b10001),
        1 => Just(0b00100),
        1 => any::<u8>().prop_map(|f| f & 0x1f),
    ];
    (
        (
            (
                prop::bool::weighted(0.25),
                prop_oneof![8 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
            ),
            prop::sample::select(vec![80u16, 80, 80, 53, 443, 5353, 8080, 8443]),
            0u8..12,
            flags,
        ),
        (
            prop_oneof![8 => 0usize..64, 1 => 1200usize..1400],
            prop::option::weighted(0.05, (0usize..80, any::<u8>())),
            prop_oneof![8 => 0u32..50, 1 => 0u32..400_000],
            prop_oneof![12 => Just(0usize), 1 => 1usize..3, 1 => Just(4usize)],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(((v6, dst), port, client, flags), (payload, corrupt, after_ms, health, hinted))| {
                Pkt {
                    v6,
                    dst,
                    port,
                    client,
                    flags,
                    payload,
                    corrupt,
                    after_ms,
                    health,
                    hinted,
                }
            },
        )
}

/// Packets the access lists of `snap`'s listeners counted (every row; the
/// lists of these tests have one rule each, and the default).
fn acl_hits(snap: &Snapshot) -> u64 {
    snap.listeners
        .iter()
        .filter_map(|l| l.acl.as_deref())
        .map(|a| a.hits(Some(0)) + a.hits(None))
        .sum()
}

/// The flow table's entries live at `now`.
fn table(p: &mut Processor, now: u32) -> Vec<Walked> {
    let mut out = Vec::new();
    let t = p.flows();
    let buckets = t.capacity();
    t.walk(0, buckets, now, |w| {
        out.push(w);
        true
    });
    out
}

/// Runs `stream` through the fast path (falling back to the general step)
/// and through the general step alone, comparing after every packet; how
/// many packets the fast path took. With `sync`, both sides run
/// flow-exception sync: the healthy state stages the next (SYNs it would
/// move are pinned, new flows shared), and a peer gateway that sees each
/// packet first shares its exceptions, which both sides learn (untracked
/// flows then take the peer's backend).
fn compare(stream: &[Pkt], sync: bool) -> Result<usize, TestCaseError> {
    let mut reg = BackendRegistry::default();
    let (healthy, one_down) = (snapshot(&[], &mut reg), snapshot(&[2], &mut reg));
    let staged = healthy.staging(&one_down);
    // Last, web's flows tracked to group g's backends must leave them.
    let moved = snapshot_of("h", &[], &mut reg);
    let snaps = [
        healthy,
        one_down,
        snapshot(&[1, 3], &mut reg),
        staged,
        moved,
    ];
    // A table of 64 flows either way (one with sync keeps half as many).
    let side = || {
        if sync {
            Processor::new(128, 42).with_sync(64, 64)
        } else {
            Processor::new(64, 42)
        }
    };
    let (mut fast, mut general) = (side(), side());
    let mut peer = Processor::new(128, 7).with_sync(64, 64);
    for s in &snaps {
        fast.adopt(s);
        general.adopt(s);
        peer.adopt(s);
    }
    let mut now = 1_000u32;
    let mut taken = 0;
    // The first stage's listener memo, kept while the snapshot stays (as
    // the worker keeps one for a burst).
    let (mut memo, mut memo_snap) = (ListenerMemo::new(), usize::MAX);
    for p in stream {
        now = now.wrapping_add(p.after_ms);
        let f = frame(p);
        // With sync the healthy state is staging the next.
        let at = if sync && p.health == 0 { 3 } else { p.health };
        let snap = &snaps[at];
        if at != memo_snap {
            (memo, memo_snap) = (ListenerMemo::new(), at);
        }
        if sync {
            peer.process(&snaps[3], &mut VecPacket::new(&f), GW_MAC, now);
            for op in learn_ops(peer.sync().unwrap().drain()) {
                fast.sync().unwrap().learn(op, now);
                general.sync().unwrap().learn(op, now);
            }
        }
        let (mut a, mut b) = (VecPacket::new(&f), VecPacket::new(&f));
        // Every other packet staged as after a burst that opened flows,
        // with its Maglev slot's load too (a hint: the same result).
        let mut staged = if p.after_ms % 2 == 1 {
            fast.stage_with::<true, _>(snap, &a, &mut memo)
        } else {
            fast.stage(snap, &a, &mut memo)
        };
        if memo.listed() {
            let (pkts, one) = (std::slice::from_ref(&a), std::slice::from_mut(&mut staged));
            fast.stage_listed::<false, _>(snap, pkts, one, &mut memo);
        }
        // The general step with the first stage's fingerprint, or the
        // prefetch pass's.
        let hint = match staged.hint() {
            None if p.hinted => fast.prepare(&a),
            hint => hint,
        };
        // Both sides count in the snapshot's access lists: each must count
        // the packet's rule once.
        let hits = acl_hits(snap);
        let got = match fast.finish(snap, &mut a, &staged, GW_MAC.into(), now) {
            Some(action) => {
                taken += 1;
                fast.count_listed(snap, &staged);
                action
            }
            None => fast.process_hinted(snap, &mut a, GW_MAC, now, hint),
        };
        let fast_hits = acl_hits(snap) - hits;
        let want = general.process(snap, &mut b, GW_MAC, now);
        prop_assert_eq!(fast_hits, acl_hits(snap) - hits - fast_hits, "{:?}", p);
        prop_assert_eq!(got, want, "{:?}", p);
        if matches!(want, Action::Encapsulated(_) | Action::Reply) {
            prop_assert_eq!(a.into_bytes(), b.into_bytes(), "{:?}", p);
        }
        fast.copy_sync_counters();
        general.copy_sync_counters();
        prop_assert_eq!(&fast.counters, &general.counters, "{:?}", p);
        prop_assert_eq!(fast.flows().len(), general.flows().len());
    }
    prop_assert_eq!(table(&mut fast, now), table(&mut general, now));
    Ok(taken)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_path_does_what_the_general_step_does(
        stream in prop::collection::vec(pkt(), 1..120),
        sync in any::<bool>(),
    ) {
        let taken = compare(&stream, sync)?;
        // Most packets of such streams are the usual kind (with sync only
        // tracked flows are: random streams may have none).
        prop_assert!(sync || stream.len() < 40 || taken > 0, "taken {} of {}", taken, stream.len());
    }
}

/// An ACK of client 9 to the web listener (IPv4, 10 bytes of payload).
fn ack() -> Pkt {
    Pkt {
        v6: false,
        dst: 1,
        port: 80,
        client: 9,
        flags: 0b10000,
        payload: 10,
        corrupt: None,
        after_ms: 0,
        health: 0,
        hinted: false,
    }
}

/// Which packets the fast path takes, and that it declines the rest (so the
/// test above exercises both).
#[test]
fn acks_udp_bare_syns_and_allowed_sources_take_the_fast_path_the_rest_does_not() {
    let mut reg = BackendRegistry::default();
    let snap = snapshot(&[], &mut reg);
    let mut p = Processor::new(1024, 42);
    p.adopt(&snap);
    let base = ack();
    let run = |p: &mut Processor, q: &Pkt| {
        let f = frame(q);
        p.process_fast(&snap, &mut VecPacket::new(&f), GW_MAC, 1000)
    };
    // A new flow seen from its first ACK, then its next segments, in
    // both families; UDP to a listener without limits.
    for q in [
        base.clone(),
        Pkt {
            flags: 0b11000,
            ..base.clone()
        },
        Pkt {
            v6: true,
            ..base.clone()
        },
        Pkt {
            port: 5353,
            ..base.clone()
        },
        Pkt {
            port: 5353,
            v6: true,
            ..base.clone()
        },
    ] {
        assert!(
            matches!(run(&mut p, &q), Some(Action::Encapsulated(_))),
            "{q:?}"
        );
    }
    // A bare SYN, tracked or not, is sent on; it stores nothing (nor
    // on a listener with new-flow limits, if its flow is tracked: it
    // opens nothing then).
    let tracked = p.flows().len();
    for q in [
        Pkt {
            flags: 0b00010,
            client: 10,
            ..base.clone()
        },
        Pkt {
            flags: 0b00010,
            v6: true,
            client: 10,
            ..base.clone()
        },
        Pkt {
            flags: 0b00010,
            ..base.clone()
        },
    ] {
        assert!(
            matches!(run(&mut p, &q), Some(Action::Encapsulated(_))),
            "{q:?}"
        );
    }
    assert_eq!(p.flows().len(), tracked, "a SYN stored a flow");
    let limited = Pkt {
        port: 8443,
        client: 12,
        ..base.clone()
    };
    let f = frame(&limited);
    let general = p.process(&snap, &mut VecPacket::new(&f), GW_MAC, 1000);
    assert!(
        matches!(general, Action::Encapsulated(_)),
        "the ACK stored its flow"
    );
    let syn = Pkt {
        flags: 0b00010,
        ..limited.clone()
    };
    assert!(
        matches!(run(&mut p, &syn), Some(Action::Encapsulated(_))),
        "tracked"
    );
    // A source the access list lets in, its rule counted once.
    let list = snap
        .listeners
        .iter()
        .find_map(|l| l.acl.as_deref())
        .unwrap();
    let allowed = list.hits(None);
    let ok = Pkt {
        port: 443,
        ..base.clone()
    };
    assert!(
        matches!(run(&mut p, &ok), Some(Action::Encapsulated(_))),
        "allowed"
    );
    assert_eq!(list.hits(None), allowed + 1);
    // SYN+ACK, endings, a source an access list turns away, a flow a
    // packet would open on a listener with new-flow limits (a datagram or
    // a SYN of an untracked flow), other ports, too big.
    for q in [
        Pkt {
            flags: 0b10010,
            client: 10,
            ..base.clone()
        },
        Pkt {
            flags: 0b10001,
            ..base.clone()
        },
        Pkt {
            client: 13,
            ..syn.clone()
        },
        Pkt {
            flags: 0b00100,
            ..base.clone()
        },
        Pkt {
            port: 443,
            client: 1,
            ..base.clone()
        },
        Pkt {
            port: 53,
            ..base.clone()
        },
        Pkt {
            port: 8080,
            ..base.clone()
        },
        Pkt {
            payload: 1300,
            client: 11,
            ..base.clone()
        },
    ] {
        assert_eq!(run(&mut p, &q), None, "{q:?}");
    }
}

/// With flow-exception sync, a tracked flow's packets take the fast path;
/// an untracked flow's first packet (which may be one a peer shared, or one
/// to share) takes the general step.
#[test]
fn with_sync_tracked_flows_take_the_fast_path_untracked_ones_do_not() {
    let mut reg = BackendRegistry::default();
    let snap = snapshot(&[], &mut reg);
    let mut p = Processor::new(1024, 42).with_sync(1024, 64);
    p.adopt(&snap);
    for q in [
        ack(),
        Pkt {
            v6: true,
            port: 5353,
            client: 3,
            flags: 0,
            ..ack()
        },
    ] {
        let f = frame(&q);
        let first = p.process_fast(&snap, &mut VecPacket::new(&f), GW_MAC, 1000);
        assert_eq!(first, None, "{q:?}");
        let general = p.process(&snap, &mut VecPacket::new(&f), GW_MAC, 1000);
        let next = p.process_fast(&snap, &mut VecPacket::new(&f), GW_MAC, 1001);
        assert_eq!(next, Some(general), "{q:?}");
        assert!(matches!(general, Action::Encapsulated(_)), "{q:?}");
    }
}
