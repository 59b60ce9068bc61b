//! `dnlb explain`'s pure part: the listener (or why none), the table's
//! answer, each worker's entries and the reasons, checked against where
//! the processor really sends packets.

mod common;

use std::net::IpAddr;
use std::path::Path;

use common::{GW_MAC, ROUTER_MAC};
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{
    explain_table, verdict, FlowQuery, LearnOp, Match, Processor, Reason, WorkerAnswer,
};
use dnlb_lb::snapshot::{BackendRegistry, BuildTime, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::VecPacket;
use etherparse::PacketBuilder;

const HEAD: &str = "[gateway]\nname = \"s\"\nzone = \"a\"\n[dataplane]\nworker_lcores = [1]\n\
    [[dataplane.ports]]\nname = \"net_null0\"\n\
    [encap]\nsource_v4 = \"192.0.2.254\"\nsource_v6 = \"2001:db8::fe\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n";

/// A snapshot of `HEAD` + `rest`; `down` lists backends (last IPv4
/// octet) failing their health checks.
fn snap(rest: &str, down: &[u8]) -> Snapshot {
    let text = format!("{HEAD}{rest}");
    let cfg = dnlb_config::parse(Path::new("e.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let healthy = |_: &str, id: &dnlb_lb::maglev::Identity| !down.iter().any(|d| id[15] == *d);
    let mut reg = BackendRegistry::default();
    Snapshot::build_with_health(&cfg, 1, &mut reg, None, &healthy, &BuildTime::now())
        .unwrap()
        .0
}

/// Backends 10.9.0.1 ..= 10.9.0.`n`, the first half in zone a, the rest in b.
fn backends(n: u8) -> String {
    (1..=n)
        .map(|i| {
            let zone = if i <= n / 2 { "a" } else { "b" };
            format!("[[target_group.backend]]\naddress = \"10.9.0.{i}\"\ntunnel = \"ipip\"\nzone = \"{zone}\"\n")
        })
        .collect()
}

fn listener(extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\", \"2001:db8::1\"]\nprotocol = \"tcp\"\nport = 80\n\
         target_group = \"g\"\n{extra}"
    )
}

fn q(src: &str, sport: u16, dst: &str, dport: u16) -> FlowQuery {
    FlowQuery {
        src: src.parse().unwrap(),
        sport,
        dst: dst.parse().unwrap(),
        dport,
        proto: 6,
    }
}

/// A TCP segment of flow `f` with ACK set.
fn ack(f: &FlowQuery) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC);
    let b = match (f.src, f.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 61),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 61),
        _ => unreachable!(),
    };
    let mut out = Vec::new();
    b.tcp(f.sport, f.dport, 2, 1000)
        .ack(1)
        .write(&mut out, &[])
        .unwrap();
    out
}

fn send(p: &mut Processor, s: &Snapshot, f: &FlowQuery, now: u32) -> Option<BackendId> {
    match p.process(s, &mut VecPacket::new(&ack(f)), GW_MAC, now) {
        Action::Encapsulated(b) => Some(b),
        _ => None,
    }
}

fn worker(s: &Snapshot, seed: u64) -> Processor {
    let mut p = Processor::new(1 << 12, seed);
    p.adopt(s);
    p
}

#[test]
fn a_flow_the_table_picks_is_explained_by_maglev_and_agrees_with_the_processor() {
    let s = snap(
        &format!(
            "{}[[target_group]]\nname = \"g\"\n{}",
            listener(""),
            backends(4)
        ),
        &[],
    );
    let mut p = worker(&s, 7);
    for i in 0..200u16 {
        for f in [
            q(&format!("198.18.0.{}", i % 250), 1000 + i, "192.0.2.1", 80),
            q(&format!("2001:db8:9::{i:x}"), 1000 + i, "2001:db8::1", 80),
        ] {
            let t = explain_table(&s, &f);
            let pick = t.pick.unwrap();
            assert!(matches!(t.matched, Match::Listener(_)));
            assert!(pick.slot < pick.table_size);
            let before = p.explain(&s, &f, 10);
            assert_eq!(before.flow, None, "not tracked yet");
            let v = verdict(&s, &t, &[before]);
            assert_eq!(v.reasons, vec![Reason::Maglev]);
            let went = send(&mut p, &s, &f, 10);
            assert_eq!(went, v.backend, "explain agrees with the packet path");
            // Now tracked: a flow-table hit on the same backend, with its
            // whole idle timeout left (nothing refreshed by asking).
            let after = p.explain(&s, &f, 10);
            let e = after.flow.unwrap();
            assert_eq!((Some(e.backend), e.usable, e.closing), (went, true, false));
            assert_eq!(e.remaining_ms, s.params.tcp_timeout_ms);
            assert_eq!(
                p.explain(&s, &f, 1010).flow.unwrap().remaining_ms,
                e.remaining_ms - 1000
            );
            let v = verdict(&s, &t, &[after]);
            assert_eq!((v.backend, v.reasons), (went, vec![Reason::FlowTable]));
        }
    }
    // Another worker (another seed) does not track these flows.
    let other = worker(&s, 8);
    assert_eq!(
        other
            .explain(&s, &q("198.18.0.1", 1001, "192.0.2.1", 80), 10)
            .flow,
        None
    );
}

#[test]
fn an_established_flow_keeps_its_backend_while_the_current_table_moves() {
    let old = snap(
        &format!(
            "{}[[target_group]]\nname = \"g\"\n{}",
            listener(""),
            backends(2)
        ),
        &[],
    );
    let new = snap(
        &format!(
            "{}[[target_group]]\nname = \"g\"\n{}",
            listener(""),
            backends(8)
        ),
        &[],
    );
    let mut p = worker(&old, 1);
    let mut moved = 0;
    for i in 0..300u16 {
        let f = q("198.18.1.1", 2000 + i, "192.0.2.1", 80);
        let went = send(&mut p, &old, &f, 0);
        p.adopt(&new);
        let t = explain_table(&new, &f);
        let v = verdict(&new, &t, &[p.explain(&new, &f, 5)]);
        assert_eq!(
            (v.backend, &v.reasons[..]),
            (went, &[Reason::FlowTable][..])
        );
        assert_eq!(send(&mut p, &new, &f, 5), went, "the packet path agrees");
        moved += usize::from(t.pick.unwrap().backend != went);
    }
    assert!(moved > 100, "the new table moves most flows ({moved})");
}

#[test]
fn no_match_reasons_not_a_vip_no_listener_acl_deny_mixed_families() {
    let s = snap(
        &format!(
            "{}[listener.acl]\ndeny = [\"198.51.100.0/24\"]\n[[target_group]]\nname = \"g\"\n{}",
            listener(""),
            backends(2)
        ),
        &[],
    );
    let cases = [
        (q("198.18.0.1", 1, "192.0.2.9", 80), Reason::NotVip),
        (q("198.18.0.1", 1, "192.0.2.1", 81), Reason::NoListener),
        (q("198.51.100.7", 5555, "192.0.2.1", 80), Reason::AclDenied),
        (
            q("2001:db8:9::1", 1, "192.0.2.1", 80),
            Reason::MixedFamilies,
        ),
    ];
    let mut p = worker(&s, 3);
    for (f, why) in cases {
        let t = explain_table(&s, &f);
        assert_eq!(t.pick, None);
        let v = verdict(&s, &t, &[p.explain(&s, &f, 0)]);
        assert_eq!((v.backend, v.reasons), (None, vec![why]), "{f:?}");
        if why != Reason::MixedFamilies {
            assert_eq!(send(&mut p, &s, &f, 0), None, "nothing forwarded: {f:?}");
        }
    }
    assert!(matches!(
        explain_table(&s, &cases[2].0).matched,
        Match::AclDenied(_)
    ));
}

#[test]
fn source_ip_scheduler_one_backend_for_every_port() {
    let s = snap(
        &format!(
            "{}[[target_group]]\nname = \"g\"\n{}",
            listener("scheduler = \"source_ip\"\n"),
            backends(6)
        ),
        &[],
    );
    let t0 = explain_table(&s, &q("198.18.3.4", 1, "192.0.2.1", 80));
    for port in 2..50 {
        let t = explain_table(&s, &q("198.18.3.4", port, "192.0.2.1", 80));
        assert_eq!(t.pick.unwrap().hash, t0.pick.unwrap().hash);
        let v = verdict(&s, &t, &[]);
        assert_eq!(v.reasons, vec![Reason::SourceIp]);
        assert_eq!(v.backend, t0.pick.unwrap().backend);
    }
}

#[test]
fn own_zone_fallback_and_fail_open() {
    let group = |extra: &str| {
        format!(
            "{}[[target_group]]\nname = \"g\"\nzone_affinity = \"prefer_own\"\n{extra}{}",
            listener(""),
            backends(4)
        )
    };
    let f = q("198.18.0.1", 1234, "192.0.2.1", 80);
    // Zone a has 10.9.0.1 and .2: only they take new flows.
    let s = snap(&group(""), &[]);
    for port in 0..100 {
        let f = q("198.18.0.1", port, "192.0.2.1", 80);
        let v = verdict(&s, &explain_table(&s, &f), &[]);
        assert_eq!(v.reasons, vec![Reason::Maglev, Reason::OwnZone]);
        let b = s.backend(v.backend.unwrap()).unwrap();
        assert_eq!(b.zone.as_deref(), Some("a"));
    }
    // Zone a's backends down: every zone (the others are healthy).
    let s = snap(&group(""), &[1, 2]);
    let v = verdict(&s, &explain_table(&s, &f), &[]);
    assert_eq!(v.reasons, vec![Reason::Maglev, Reason::ZoneFallback]);
    assert_eq!(
        s.backend(v.backend.unwrap()).unwrap().zone.as_deref(),
        Some("b")
    );
    // Everything down, the group fails open (the default).
    let s = snap(&group(""), &[1, 2, 3, 4]);
    let v = verdict(&s, &explain_table(&s, &f), &[]);
    assert_eq!(
        v.reasons,
        vec![Reason::Maglev, Reason::OwnZone, Reason::FailOpen]
    );
    // Everything down, the group drops: no backend.
    let s = snap(&group("all_down = \"drop\"\n"), &[1, 2, 3, 4]);
    let v = verdict(&s, &explain_table(&s, &f), &[]);
    assert_eq!(v.backend, None);
    assert_eq!(
        v.reasons,
        vec![Reason::Maglev, Reason::ZoneFallback, Reason::NoBackend]
    );
}

#[test]
fn a_learned_entry_and_a_staged_version() {
    let mut reg = BackendRegistry::default();
    let build = |reg: &mut BackendRegistry, n| {
        let text = format!(
            "{HEAD}{}[[target_group]]\nname = \"g\"\n{}",
            listener(""),
            backends(n)
        );
        let cfg = dnlb_config::parse(Path::new("e.toml"), &text).unwrap();
        Snapshot::build(&cfg, u64::from(n), reg).unwrap()
    };
    let old = build(&mut reg, 2);
    let new = build(&mut reg, 8);
    // A flow the new table moves.
    let f = (0..1000u16)
        .map(|i| q("198.18.2.2", 3000 + i, "192.0.2.1", 80))
        .find(|f| {
            explain_table(&old, f).pick.unwrap().backend
                != explain_table(&new, f).pick.unwrap().backend
        })
        .unwrap();
    let was = explain_table(&old, &f).pick.unwrap();
    // Staged: the current table still decides; the staged answer is shown.
    let staged = old.staging(&new);
    let t = explain_table(&staged, &f);
    assert_eq!(
        t.pick.unwrap().staged,
        Some(explain_table(&new, &f).pick.unwrap().backend)
    );
    let v = verdict(&staged, &t, &[]);
    assert_eq!(
        (v.backend, v.reasons),
        (was.backend, vec![Reason::Maglev, Reason::Staged])
    );
    // A peer shared the flow: this gateway (on the new table) learned it.
    let mut p = Processor::new(1 << 12, 9).with_sync(1 << 10, 64);
    p.adopt(&new);
    let l = new.listeners[0].slot;
    p.sync().unwrap().learn(
        LearnOp::Add {
            listener_slot: l,
            hash: was.hash,
            backend: was.backend.unwrap(),
            remaining_ms: 30_000,
            closing: false,
        },
        100,
    );
    let w: WorkerAnswer = p.explain(&new, &f, 100);
    let e = w.learned.unwrap();
    assert!(w.sync && e.usable && w.flow.is_none());
    assert_eq!((Some(e.backend), e.remaining_ms), (was.backend, 30_000));
    let v = verdict(&new, &explain_table(&new, &f), &[w]);
    assert_eq!(
        (v.backend, &v.reasons[..]),
        (was.backend, &[Reason::Learned][..])
    );
    assert_eq!(
        send(&mut p, &new, &f, 100),
        was.backend,
        "the packet path agrees"
    );
    // Now tracked by the flow table too.
    let v = verdict(&new, &explain_table(&new, &f), &[p.explain(&new, &f, 100)]);
    assert_eq!(v.reasons, vec![Reason::FlowTable]);
}
