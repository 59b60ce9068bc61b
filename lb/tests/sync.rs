//! Flow-exception sync on the packet path: a worker finds the flows a new
//! (staged) table would move, another gateway that learns them sends those
//! flows where they began, SYNs are pinned across a staged switch, and the
//! bounded pending list stops and resumes the walk without losing any.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use common::{learn_ops, GW_MAC, ROUTER_MAC};
use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{Exception, LearnOp, Processor};
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};
use dnlb_lb::verdict::Action;
use dnlb_testkit::VecPacket;
use etherparse::PacketBuilder;

const VIP: [u8; 4] = [192, 0, 2, 1];
const FLOWS: u32 = 2000;

/// A gateway's snapshot with backends 10.9.0.1 ..= 10.9.0.`n` (IPIP), a
/// TCP listener on VIP:80 and a UDP one on VIP:53; `down` lists backends
/// (last octets) that fail their health checks.
fn snapshot(reg: &mut BackendRegistry, n: u8, down: &[u8]) -> Snapshot {
    let mut text = String::from(
        "[gateway]\nname = \"s\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         [[listener]]\nname = \"dns\"\nvips = [\"192.0.2.1\"]\nprotocol = \"udp\"\nport = 53\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n",
    );
    for i in 1..=n {
        text += &format!("[[target_group.backend]]\naddress = \"10.9.0.{i}\"\ntunnel = \"ipip\"\n");
    }
    let cfg = dnlb_config::parse(Path::new("s.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let healthy = |_: &str, id: &dnlb_lb::maglev::Identity| {
        !down.iter().any(|d| id[12..16] == [10, 9, 0, *d])
    };
    let at = dnlb_lb::snapshot::BuildTime::now();
    Snapshot::build_with_health(&cfg, u64::from(n), reg, None, &healthy, &at)
        .unwrap()
        .0
}

/// A TCP segment from flow `i` (198.18.x.y:1000+i%50000) to VIP:80 with
/// `flags` (S, A, F, R).
fn tcp(i: u32, flags: &str) -> Vec<u8> {
    let src = [198, 18, (i >> 8) as u8, i as u8];
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, VIP, 61)
        .tcp(1000 + (i % 50_000) as u16, 80, 2, 1000);
    let b = flags.chars().fold(b, |b, f| match f {
        'S' => b.syn(),
        'A' => b.ack(1),
        'F' => b.fin(),
        'R' => b.rst(),
        _ => unreachable!(),
    });
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

/// A UDP datagram of flow `i` to VIP:53.
fn udp(i: u32) -> Vec<u8> {
    let src = [198, 18, (i >> 8) as u8, i as u8];
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, GW_MAC)
        .ipv4(src, VIP, 61)
        .udp(2000, 53)
        .write(&mut out, &[1, 2, 3])
        .unwrap();
    out
}

/// The backend a frame went to.
fn send(p: &mut Processor, snap: &Snapshot, frame: &[u8], now: u32) -> BackendId {
    match p.process(snap, &mut VecPacket::new(frame), GW_MAC, now) {
        Action::Encapsulated(b) => b,
        other => panic!("not encapsulated: {other:?}"),
    }
}

fn gateway(snap: &Snapshot, seed: u64) -> Processor {
    let mut p = Processor::new(1 << 14, seed).with_sync(1 << 14, 1 << 14);
    p.adopt(snap);
    p
}

/// Walks the whole flow table against `snap` and takes what it found.
fn walk_all(p: &mut Processor, snap: &Snapshot, now: u32) -> Vec<Exception> {
    p.restart_sync_walk();
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let done = p.sync_walk(snap, now, 64);
        out.extend(p.sync().unwrap().drain());
        if done {
            return out;
        }
    }
    panic!("the walk never finished");
}

/// Two versions of a gateway's config: 4 backends, then a fifth added
/// (ids from one registry, as on one gateway).
fn versions() -> (BackendRegistry, Snapshot, Snapshot) {
    let mut reg = BackendRegistry::default();
    let old = snapshot(&mut reg, 4, &[]);
    let new = snapshot(&mut reg, 5, &[]);
    (reg, old, new)
}

/// Establishes every flow on `p` (an ACK each); where each went.
fn establish(p: &mut Processor, snap: &Snapshot) -> Vec<BackendId> {
    (0..FLOWS).map(|i| send(p, snap, &tcp(i, "A"), 0)).collect()
}

/// `cfg` with a `[sync]` section (only its presence matters to a snapshot:
/// the other zones' and the zone-loss tables are built only with sync).
fn with_sync(mut cfg: dnlb_model::Config) -> dnlb_model::Config {
    cfg.sync = Some(dnlb_model::ExceptionSync {
        listen: "192.0.2.254:4790".parse().unwrap(),
        peers: vec!["192.0.2.253:4790".parse().unwrap()],
        key_file: "sync.key".into(),
        previous_key_file: None,
        batch_interval: std::time::Duration::from_millis(100),
        max_bytes_per_sec_per_peer: 1_000_000,
        max_queued: 1000,
        max_held: 1000,
        fetch_timeout: std::time::Duration::from_secs(1),
    });
    cfg
}

#[test]
fn a_backend_added_moves_flows_that_a_peer_that_learned_them_keeps() {
    let (_, old, new) = versions();
    // Gateway A carries the flows (established under the old table).
    let mut a = gateway(&old, 1);
    let began = establish(&mut a, &old);
    // The new version staged: A finds the flows it would move.
    let staged = old.staging(&new);
    assert!(staged.is_staging() && !old.is_staging());
    let found = walk_all(&mut a, &staged, 10);
    // Gateway B (another seed) under the new table: which flows would it
    // move without sync?
    let mut b = gateway(&new, 2);
    let moved: HashSet<u32> = (0..FLOWS)
        .filter(|&i| {
            let mut probe = gateway(&new, 3);
            send(&mut probe, &new, &tcp(i, "A"), 20) != began[i as usize]
        })
        .collect();
    assert!(
        moved.len() > FLOWS as usize / 20,
        "adding a fifth backend moves about a fifth of the flows: {}",
        moved.len()
    );
    assert_eq!(
        found.len(),
        moved.len(),
        "exactly the moved flows are exceptions"
    );
    assert!(found.iter().all(|e| e.remaining_ms > 0 && !e.closing));
    // B learns them, and then every flow ECMP moves to B keeps its backend.
    let now = 20;
    for op in learn_ops(found.iter().copied()) {
        b.sync().unwrap().learn(op, now);
    }
    for i in 0..FLOWS {
        assert_eq!(
            send(&mut b, &new, &tcp(i, "A"), now),
            began[i as usize],
            "flow {i}"
        );
    }
    let c = b.sync().unwrap().counters;
    assert_eq!(c.learned, found.len() as u64);
    assert_eq!(c.learned_used, moved.len() as u64);
    // B now tracks them itself (no learned lookup for the next packets),
    // and its own walk shares them again (it carries them now).
    for i in 0..FLOWS {
        assert_eq!(send(&mut b, &new, &tcp(i, "A"), now + 1), began[i as usize]);
    }
    assert_eq!(b.sync().unwrap().counters.learned_used, moved.len() as u64);
    let again = walk_all(&mut b, &new, now + 2);
    let hashes = |v: &[Exception]| v.iter().map(|e| e.hash).collect::<HashSet<_>>();
    assert_eq!(hashes(&again), hashes(&found));
    // A, after switching to the new version, finds the same exceptions.
    assert_eq!(hashes(&walk_all(&mut a, &new, 30)), hashes(&found));
}

#[test]
fn learned_entries_do_not_override_syns_unusable_backends_or_removals() {
    let (reg, old, new) = versions();
    let mut a = gateway(&old, 1);
    let began = establish(&mut a, &old);
    let found = walk_all(&mut a, &old.staging(&new), 10);
    let table_pick = |i: u32| send(&mut gateway(&new, 9), &new, &tcp(i, "A"), 0);
    let moved: Vec<u32> = (0..FLOWS)
        .filter(|&i| table_pick(i) != began[i as usize])
        .collect();
    assert_eq!(moved.len(), found.len());
    // A SYN is a new connection: the table decides.
    let mut b = gateway(&new, 2);
    for op in learn_ops(found.iter().copied()) {
        b.sync().unwrap().learn(op, 0);
    }
    for &i in &moved {
        assert_eq!(send(&mut b, &new, &tcp(i, "S"), 1), table_pick(i));
    }
    // A learned backend that is down here is not used.
    let mut c = gateway(&new, 4);
    for op in learn_ops(found.iter().copied()) {
        c.sync().unwrap().learn(op, 0);
    }
    let one = moved[0];
    let std::net::IpAddr::V4(addr) = new.backend(began[one as usize]).unwrap().address else {
        unreachable!()
    };
    let down = [addr.octets()[3]];
    let mut reg2 = reg.clone();
    let new_down = snapshot(&mut reg2, 5, &down);
    let got = send(&mut c, &new_down, &tcp(one, "A"), 1);
    assert_ne!(got, began[one as usize], "the learned backend is down");
    // Removed entries are forgotten; expired ones too.
    let mut d = gateway(&new, 5);
    for op in learn_ops(found.iter().copied()) {
        d.sync().unwrap().learn(op, 0);
    }
    for e in found.iter() {
        d.sync().unwrap().learn(
            LearnOp::Remove {
                listener_slot: e.listener_slot,
                hash: e.hash,
            },
            1,
        );
    }
    for &i in &moved {
        assert_eq!(
            send(&mut d, &new, &tcp(i, "A"), 2),
            table_pick(i),
            "removed"
        );
    }
    let mut f = gateway(&new, 6);
    for op in learn_ops(found.iter().copied()) {
        f.sync().unwrap().learn(op, 0);
    }
    let late = found.iter().map(|e| e.remaining_ms).max().unwrap() + 1;
    for &i in &moved {
        assert_eq!(
            send(&mut f, &new, &tcp(i, "A"), late),
            table_pick(i),
            "expired"
        );
    }
}

#[test]
fn syns_during_staging_are_pinned_and_shared_at_their_first_ack() {
    let (_, old, new) = versions();
    let staged = old.staging(&new);
    let mut a = gateway(&old, 1);
    a.adopt(&staged);
    // SYNs during the staging window go by the current table; the ones the
    // staged table would move are pinned.
    let syn_to: Vec<BackendId> = (0..FLOWS)
        .map(|i| send(&mut a, &staged, &tcp(i, "S"), 0))
        .collect();
    let pinned = a.sync().unwrap().counters.pinned;
    assert!(pinned > FLOWS as u64 / 20, "pinned {pinned}");
    assert!(
        walk_all(&mut a, &staged, 1).is_empty(),
        "pinned SYNs are not shared yet"
    );
    // The switch; the handshakes' first ACKs keep the SYN's backend and
    // are shared.
    a.adopt(&new);
    for i in 0..FLOWS {
        assert_eq!(
            send(&mut a, &new, &tcp(i, "A"), 5),
            syn_to[i as usize],
            "flow {i}"
        );
    }
    let shared = a.sync().unwrap().drain().count() as u64;
    assert_eq!(
        shared, pinned,
        "every pinned flow is shared at its first ACK"
    );
    // Without sync, the same ACKs would go where the new table says.
    let mut plain = Processor::new(1 << 14, 1);
    plain.adopt(&new);
    let differ = (0..FLOWS)
        .filter(|&i| send(&mut plain, &new, &tcp(i, "A"), 5) != syn_to[i as usize])
        .count() as u64;
    assert_eq!(differ, pinned);
    // A pinned SYN that never completes is gone after the pin timeout.
    let mut b = gateway(&old, 2);
    b.adopt(&staged);
    for i in 0..FLOWS {
        send(&mut b, &staged, &tcp(i, "S"), 0);
    }
    assert_eq!(b.flows().len() as u64, pinned);
    assert_eq!(b.flows().sweep(20_000, usize::MAX), pinned as usize);
}

#[test]
fn new_udp_flows_a_staged_table_moves_are_shared_when_they_start() {
    let (_, old, new) = versions();
    let staged = old.staging(&new);
    let mut a = gateway(&old, 1);
    let mut by_new = gateway(&new, 2);
    let mut moved = 0;
    for i in 0..FLOWS {
        if send(&mut a, &staged, &udp(i), 0) != send(&mut by_new, &new, &udp(i), 0) {
            moved += 1;
        }
    }
    assert!(moved > 0);
    assert_eq!(a.sync().unwrap().drain().count(), moved);
}

#[test]
fn a_full_pending_list_pauses_the_walk_without_losing_exceptions() {
    let (_, old, new) = versions();
    let mut roomy = gateway(&old, 1);
    let mut tight = Processor::new(1 << 14, 1).with_sync(16, 7);
    tight.adopt(&old);
    for i in 0..FLOWS {
        send(&mut roomy, &old, &tcp(i, "A"), 0);
        send(&mut tight, &old, &tcp(i, "A"), 0);
    }
    let staged = old.staging(&new);
    let want: HashSet<u64> = walk_all(&mut roomy, &staged, 1)
        .iter()
        .map(|e| e.hash)
        .collect();
    // The tight one's pending list holds 7: the walk stops when it is full
    // and resumes where it stopped once the worker took them.
    tight.restart_sync_walk();
    let mut got: HashMap<u64, u32> = HashMap::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 100_000);
        let done = tight.sync_walk(&staged, 1, 1 << 20);
        let taken: Vec<Exception> = tight.sync().unwrap().drain().collect();
        assert!(taken.len() <= 7);
        for e in taken {
            *got.entry(e.hash).or_default() += 1;
        }
        if done {
            break;
        }
    }
    assert_eq!(got.keys().copied().collect::<HashSet<_>>(), want);
    assert_eq!(tight.sync().unwrap().counters.walks, 1);
    assert!(calls > want.len() / 7, "it stopped {calls} times");
}

#[test]
fn without_sync_nothing_is_pinned_or_learned() {
    let (_, old, new) = versions();
    let staged = old.staging(&new);
    let mut p = Processor::new(1 << 14, 1);
    p.adopt(&staged);
    for i in 0..FLOWS {
        send(&mut p, &staged, &tcp(i, "S"), 0);
    }
    assert_eq!(p.flows().len(), 0, "SYNs store nothing without sync");
    assert!(p.sync().is_none());
    assert!(p.sync_walk(&staged, 0, 100));
}

/// Two gateways of a fleet under `zone_affinity = "prefer_own"`, in zones
/// a and b; backends .1 and .2 in zone a, .3 and .4 in zone b.
fn zoned(gateway_zone: &str) -> Snapshot {
    let mut text = format!(
        "[gateway]\nname = \"z\"\nzone = \"{gateway_zone}\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\nzone_affinity = \"prefer_own\"\n"
    );
    for (i, z) in [(1, "a"), (2, "a"), (3, "b"), (4, "b")] {
        text += &format!("[[target_group.backend]]\naddress = \"10.9.0.{i}\"\ntunnel = \"ipip\"\nzone = \"{z}\"\n");
    }
    let cfg = dnlb_config::parse(Path::new("z.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(&with_sync(cfg), 1, &mut BackendRegistry::default()).unwrap()
}

#[test]
fn under_own_zone_preference_every_flow_is_shared_and_the_other_zone_keeps_it() {
    let (in_a, in_b) = (zoned("a"), zoned("b"));
    assert_eq!(
        in_a.listeners[0].peer_tables.len(),
        2,
        "zone b's table, and the zone-less one"
    );
    // Gateway A (zone a) sends new flows to zone a's backends only, and
    // shares each as it starts: zone b's gateways (and zone-less ones)
    // would pick otherwise.
    let mut a = gateway(&in_a, 1);
    let began = establish(&mut a, &in_a);
    let zone_a = |id: BackendId| matches!(in_a.backend(id).unwrap().zone.as_deref(), Some("a"));
    assert!(began.iter().all(|&b| zone_a(b)));
    let shared: Vec<Exception> = a.sync().unwrap().drain().collect();
    assert_eq!(
        shared.len(),
        FLOWS as usize,
        "every flow is an exception to zone b"
    );
    // The walk finds them too.
    assert_eq!(walk_all(&mut a, &in_a, 1).len(), FLOWS as usize);
    // Zone a lost its gateway: zone b's gateway keeps every flow on its
    // zone-a backend with what it learned, and without it would move all.
    let mut b = gateway(&in_b, 2);
    for op in learn_ops(shared.iter().copied()) {
        b.sync().unwrap().learn(op, 0);
    }
    let mut plain = gateway(&in_b, 3);
    for i in 0..FLOWS {
        assert_eq!(send(&mut b, &in_b, &tcp(i, "A"), 1), began[i as usize]);
        assert!(!zone_a(send(&mut plain, &in_b, &tcp(i, "A"), 1)));
    }
    // A SYN is not pinned for another zone's sake (SYNs take no entry).
    let mut c = gateway(&in_a, 4);
    for i in 0..FLOWS {
        send(&mut c, &in_a, &tcp(i, "S"), 0);
    }
    assert_eq!(c.flows().len(), 0);
    assert_eq!(c.sync().unwrap().counters.pinned, 0);
    // Without a zone preference, no peer tables: nothing to share.
    assert!(
        snapshot(&mut BackendRegistry::default(), 4, &[]).listeners[0]
            .peer_tables
            .is_empty()
    );
}

/// The zone of backend 10.9.0.`i` in [`three_zones`].
fn zone(i: u8) -> &'static str {
    ["a", "b", "c"][usize::from(i - 1) / 2]
}

/// A gateway's config (no zone preference, no `[sync]`) with backends
/// .1-.2 in zone a, .3-.4 in b and .5-.6 in c.
fn three_zones_cfg() -> dnlb_model::Config {
    let mut text = String::from(
        "[gateway]\nname = \"z\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.1\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g\"\n\
         [[target_group]]\nname = \"g\"\n",
    );
    for i in 1..=6u8 {
        text += &format!(
            "[[target_group.backend]]\naddress = \"10.9.0.{i}\"\ntunnel = \"ipip\"\nzone = \"{}\"\n",
            zone(i)
        );
    }
    dnlb_config::parse(Path::new("z.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// [`three_zones_cfg`] with sync, built; `down` lists the zones whose
/// backends failed.
fn three_zones(reg: &mut BackendRegistry, down: &[&str]) -> Snapshot {
    let healthy = |_: &str, id: &dnlb_lb::maglev::Identity| !down.contains(&zone(id[15]));
    let at = dnlb_lb::snapshot::BuildTime::now();
    Snapshot::build_with_health(&with_sync(three_zones_cfg()), 1, reg, None, &healthy, &at)
        .unwrap()
        .0
}

#[test]
fn without_sync_no_other_tables_are_built() {
    let s = Snapshot::build(&three_zones_cfg(), 1, &mut BackendRegistry::default()).unwrap();
    assert!(s.listeners[0].loss_tables.is_empty());
    assert!(s.listeners[0].peer_tables.is_empty());
    assert_eq!(
        three_zones(&mut BackendRegistry::default(), &[]).listeners[0]
            .loss_tables
            .len(),
        3
    );
}

#[test]
fn flows_a_zone_loss_would_move_are_shared_before_it_and_survive_it() {
    let mut reg = BackendRegistry::default();
    let before = three_zones(&mut reg, &[]);
    let after = three_zones(&mut reg.clone(), &["c"]);
    assert_eq!(before.listeners[0].loss_tables.len(), 3, "one per zone");
    let zone_of = |id: BackendId| before.backend(id).unwrap().zone.clone().unwrap();
    // Gateway A carries the flows; nothing changed, yet it shares the
    // flows a zone loss would move (their backends outside that zone) as
    // they start.
    let mut a = gateway(&before, 1);
    let began = establish(&mut a, &before);
    let shared: Vec<Exception> = a.sync().unwrap().drain().collect();
    assert!(!shared.is_empty());
    assert!(
        shared.len() < FLOWS as usize / 2,
        "a fraction is pre-shared: {}",
        shared.len()
    );
    assert_eq!(
        walk_all(&mut a, &before, 1).len(),
        shared.len(),
        "the walk finds the same"
    );
    // Zone c is lost with gateway A. Without what A shared, some flows on
    // surviving backends move; with it, none does.
    let mut plain = gateway(&after, 2);
    let mut b = gateway(&after, 3);
    for op in learn_ops(shared.iter().copied()) {
        b.sync().unwrap().learn(op, 0);
    }
    let (mut moved_plain, mut moved_b, mut survivors) = (0, 0, 0);
    for i in 0..FLOWS {
        if zone_of(began[i as usize]) == "c" {
            continue; // orphaned: its backend is gone
        }
        survivors += 1;
        moved_plain += usize::from(send(&mut plain, &after, &tcp(i, "A"), 1) != began[i as usize]);
        moved_b += usize::from(send(&mut b, &after, &tcp(i, "A"), 1) != began[i as usize]);
    }
    assert!(survivors > FLOWS as usize / 2);
    assert!(
        moved_plain > 0,
        "Maglev moves some survivors' flows when a third of the backends leave"
    );
    assert_eq!(
        moved_b, 0,
        "every surviving flow kept its backend ({moved_plain} would have moved)"
    );
}
