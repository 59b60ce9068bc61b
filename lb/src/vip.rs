//! Listener lookup: (destination address, protocol, port) → listener, with
//! all-ports listeners, for IPv4 and IPv6. Two hash probes at most, built
//! on the slow path.

use std::net::IpAddr;

use dnlb_model::Listener;
use rustc_hash::FxHashMap;

use crate::ids::ListenerId;

/// An address as 16 bytes (IPv4 mapped into IPv6), the table key.
#[inline(always)]
pub fn addr_key_v4(a: [u8; 4]) -> u128 {
    0xffff_0000_0000 | u32::from_be_bytes(a) as u128
}

/// An IPv6 address as the table key. An IPv4-mapped address
/// (`::ffff:a.b.c.d`) would collide with the key of IPv4 address `a.b.c.d`:
/// it becomes the key of `::`, which is never a VIP, so an IPv6 packet to
/// it is not for a VIP.
#[inline(always)]
pub fn addr_key_v6(a: [u8; 16]) -> u128 {
    let k = u128::from_be_bytes(a);
    if k >> 32 == 0xffff {
        0
    } else {
        k
    }
}

/// An address as the table key.
pub fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => addr_key_v4(v.octets()),
        IpAddr::V6(v) => addr_key_v6(v.octets()),
    }
}

/// Which listener non-first fragments to a VIP belong to (they carry no port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FragmentTarget {
    /// No listener for this protocol on the address.
    #[default]
    None,
    /// The all-ports listener, or the only port listener.
    One(ListenerId),
    /// Several port listeners: cannot be told without reassembly.
    Ambiguous,
}

#[derive(Debug, Clone, Default)]
struct VipEntry {
    /// Index 0: TCP, 1: UDP.
    all_ports: [Option<ListenerId>; 2],
    fragments: [FragmentTarget; 2],
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipMatch {
    /// The address is not a VIP.
    NotVip,
    /// A VIP, but no listener for this protocol and port.
    NoListener,
    /// The listener.
    Listener(ListenerId),
}

/// A key of a [`FlatMap`]: a value no real key takes marks empty slots,
/// and a word to place it by.
trait FlatKey: Copy + PartialEq {
    const EMPTY: Self;
    fn word(&self) -> u64;
}

/// IPv4: address, protocol and port in one word ([`v4_key`]); no key is
/// all ones (the protocol byte of a listener is 6 or 17).
impl FlatKey for u64 {
    const EMPTY: u64 = u64::MAX;
    #[inline(always)]
    fn word(&self) -> u64 {
        *self
    }
}

/// IPv6: the address key and `proto << 16 | port`, which stays below
/// 2^24, so an all-ones protocol-and-port marks the empty slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V6Key {
    addr: u128,
    proto_port: u32,
}

impl V6Key {
    #[inline(always)]
    fn new(addr: u128, proto: u8, port: u16) -> Self {
        V6Key {
            addr,
            proto_port: u32::from(proto) << 16 | u32::from(port),
        }
    }
}

impl FlatKey for V6Key {
    const EMPTY: V6Key = V6Key {
        addr: 0,
        proto_port: u32::MAX,
    };
    #[inline(always)]
    fn word(&self) -> u64 {
        // The low half varies most among the VIPs of one prefix.
        (self.addr as u64)
            ^ ((self.addr >> 64) as u64).rotate_left(29)
            ^ u64::from(self.proto_port) << 8
    }
}

/// A fixed open-addressing map from keys to listener ids, built once: one
/// multiply and usually one probe (kept at most 25% full).
#[derive(Debug, Clone)]
struct FlatMap<K: FlatKey> {
    /// Keys and their values side by side (one bounds check a probe).
    slots: Box<[(K, ListenerId)]>,
    shift: u32,
}

impl<K: FlatKey> Default for FlatMap<K> {
    fn default() -> Self {
        FlatMap::build(&[])
    }
}

impl<K: FlatKey> FlatMap<K> {
    fn build(items: &[(K, ListenerId)]) -> Self {
        let slots = (items.len() * 4).next_power_of_two().max(8);
        let mut m = FlatMap {
            slots: vec![(K::EMPTY, ListenerId(0)); slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
        };
        for &(k, v) in items {
            let mut i = m.slot(&k);
            while m.slots[i].0 != K::EMPTY && m.slots[i].0 != k {
                i = (i + 1) & (slots - 1);
            }
            m.slots[i] = (k, v);
        }
        m
    }

    #[inline(always)]
    fn slot(&self, k: &K) -> usize {
        (k.word().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline(always)]
    fn get(&self, k: K) -> Option<ListenerId> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(&k);
        loop {
            let (key, value) = self.slots[i];
            if key == k {
                return Some(value);
            }
            if key == K::EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

/// The lookup table.
#[derive(Debug, Clone, Default)]
pub struct VipTable {
    /// IPv4 port listeners, keyed by one `u64` (address, protocol, port):
    /// the common case is one multiply and one probe.
    by_port_v4: FlatMap<u64>,
    /// IPv6 port listeners, the same way with a wider key.
    by_port_v6: FlatMap<V6Key>,
    by_addr: FxHashMap<u128, VipEntry>,
}

/// An IPv4 key (as made by [`addr_key_v4`]) with protocol and port in one word.
#[inline(always)]
fn v4_port_key(addr: u128, proto: u8, port: u16) -> Option<u64> {
    (addr >> 32 == 0xffff).then_some(v4_key(addr as u32, proto, port))
}

/// The IPv4 port map's key of IPv4 address `addr` (host order), `proto`,
/// `port`.
#[inline(always)]
fn v4_key(addr: u32, proto: u8, port: u16) -> u64 {
    (u64::from(addr) << 24) | (u64::from(proto) << 16) | u64::from(port)
}

fn proto_slot(proto: u8) -> Option<usize> {
    match proto {
        6 => Some(0),
        17 => Some(1),
        _ => None,
    }
}

impl VipTable {
    /// Builds the table; `listeners[i]` gets `ListenerId(i)`. Overlaps were
    /// rejected by config validation; a later listener would win here.
    pub fn build(listeners: &[Listener]) -> Self {
        let mut t = VipTable::default();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, l) in listeners.iter().enumerate() {
            let id = ListenerId(i as u16);
            let proto = l.protocol.number();
            let slot = proto_slot(proto).expect("listeners are TCP or UDP");
            for a in l.addresses() {
                let k = addr_key(a);
                let e = t.by_addr.entry(k).or_default();
                match l.port {
                    None => {
                        e.all_ports[slot] = Some(id);
                        e.fragments[slot] = FragmentTarget::One(id);
                    }
                    Some(p) => {
                        match v4_port_key(k, proto, p) {
                            Some(k4) => v4.push((k4, id)),
                            None => v6.push((V6Key::new(k, proto, p), id)),
                        }
                        e.fragments[slot] = match e.fragments[slot] {
                            FragmentTarget::None => FragmentTarget::One(id),
                            _ if e.all_ports[slot].is_some() => e.fragments[slot],
                            _ => FragmentTarget::Ambiguous,
                        };
                    }
                }
            }
        }
        t.by_port_v4 = FlatMap::build(&v4);
        t.by_port_v6 = FlatMap::build(&v6);
        t
    }

    /// Whether `addr` is a VIP (or elastic IP) of any listener.
    #[inline]
    pub fn is_vip(&self, addr: u128) -> bool {
        self.by_addr.contains_key(&addr)
    }

    /// The listener for a packet to `addr`, `proto`, `port`.
    #[inline]
    pub fn lookup(&self, addr: u128, proto: u8, port: u16) -> VipMatch {
        if addr >> 32 == 0xffff {
            self.lookup_v4((addr as u32).to_be_bytes(), proto, port)
        } else {
            self.lookup_v6_key(addr, proto, port)
        }
    }

    /// [`VipTable::lookup`] for an IPv4 address: the usual case, in few
    /// steps (one probe of the IPv4 port map when it is a listener's).
    #[inline(always)]
    pub fn lookup_v4(&self, addr: [u8; 4], proto: u8, port: u16) -> VipMatch {
        match self
            .by_port_v4
            .get(v4_key(u32::from_be_bytes(addr), proto, port))
        {
            Some(id) => VipMatch::Listener(id),
            None => self.without_port(addr_key_v4(addr), proto),
        }
    }

    /// [`VipTable::lookup`] of an IPv6 destination (as [`addr_key_v6`]
    /// keys it), in one probe of the IPv6 port map.
    #[inline(always)]
    pub fn lookup_v6(&self, addr: [u8; 16], proto: u8, port: u16) -> VipMatch {
        self.lookup_v6_key(addr_key_v6(addr), proto, port)
    }

    /// [`VipTable::lookup_v6`] of an address already keyed.
    #[inline(always)]
    fn lookup_v6_key(&self, key: u128, proto: u8, port: u16) -> VipMatch {
        match self.by_port_v6.get(V6Key::new(key, proto, port)) {
            Some(id) => VipMatch::Listener(id),
            None => self.without_port(key, proto),
        }
    }

    /// What a packet to `addr` whose port no listener has is: not for a
    /// VIP, for an all-ports listener, or for no listener.
    #[inline(never)]
    fn without_port(&self, addr: u128, proto: u8) -> VipMatch {
        match self.by_addr.get(&addr) {
            None => VipMatch::NotVip,
            Some(e) => match proto_slot(proto).and_then(|s| e.all_ports[s]) {
                Some(id) => VipMatch::Listener(id),
                None => VipMatch::NoListener,
            },
        }
    }

    /// Which listener fragments to `addr` with `proto` belong to; `None` when
    /// the address is not a VIP.
    #[inline]
    pub fn fragment_target(&self, addr: u128, proto: u8) -> Option<FragmentTarget> {
        let e = self.by_addr.get(&addr)?;
        Some(proto_slot(proto).map_or(FragmentTarget::None, |s| e.fragments[s]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnlb_model::{FragmentPolicy, Protocol, Scheduler};

    fn listener(vips: &[&str], protocol: Protocol, port: Option<u16>) -> Listener {
        Listener {
            name: "l".into(),
            vips: vips.iter().map(|v| v.parse().unwrap()).collect(),
            elastic_ip: None,
            protocol,
            port,
            scheduler: Scheduler::Maglev,
            table_size: 251,
            fragments: FragmentPolicy::Drop,
            target_group: 0,
            acl: None,
            limits: Default::default(),
        }
    }

    #[test]
    fn port_then_all_ports_then_not_vip() {
        let mut web = listener(&["192.0.2.1", "2001:db8::1"], Protocol::Tcp, Some(80));
        web.elastic_ip = Some("203.0.113.1".parse().unwrap());
        let t = VipTable::build(&[
            web,
            listener(&["192.0.2.1"], Protocol::Tcp, Some(443)),
            listener(&["192.0.2.1"], Protocol::Udp, None),
        ]);
        let v4 = addr_key_v4([192, 0, 2, 1]);
        let v6 = addr_key("2001:db8::1".parse().unwrap());
        let eip = addr_key_v4([203, 0, 113, 1]);
        assert_eq!(t.lookup(v4, 6, 80), VipMatch::Listener(ListenerId(0)));
        assert_eq!(t.lookup(v6, 6, 80), VipMatch::Listener(ListenerId(0)));
        assert_eq!(t.lookup(eip, 6, 80), VipMatch::Listener(ListenerId(0)));
        assert_eq!(t.lookup(v4, 6, 443), VipMatch::Listener(ListenerId(1)));
        assert_eq!(t.lookup(v4, 6, 22), VipMatch::NoListener);
        assert_eq!(t.lookup(v6, 17, 53), VipMatch::NoListener);
        assert_eq!(t.lookup(v4, 17, 53), VipMatch::Listener(ListenerId(2)));
        assert_eq!(t.lookup(v4, 17, 1), VipMatch::Listener(ListenerId(2)));
        assert_eq!(
            t.lookup(addr_key_v4([192, 0, 2, 2]), 6, 80),
            VipMatch::NotVip
        );
        assert!(t.is_vip(eip) && !t.is_vip(addr_key_v4([10, 0, 0, 1])));
        // fragments: two TCP port listeners on v4 → ambiguous; one on v6; UDP all-ports
        assert_eq!(t.fragment_target(v4, 6), Some(FragmentTarget::Ambiguous));
        assert_eq!(
            t.fragment_target(v6, 6),
            Some(FragmentTarget::One(ListenerId(0)))
        );
        assert_eq!(
            t.fragment_target(v4, 17),
            Some(FragmentTarget::One(ListenerId(2)))
        );
        assert_eq!(t.fragment_target(v6, 17), Some(FragmentTarget::None));
        assert_eq!(t.fragment_target(addr_key_v4([1, 1, 1, 1]), 6), None);
        // v4-mapped keys never collide with real IPv6 addresses of other VIPs
        assert_ne!(
            addr_key_v4([192, 0, 2, 1]),
            addr_key("::192.0.2.1".parse().unwrap())
        );
        // ...nor with an IPv6 packet's IPv4-mapped destination.
        assert_ne!(
            addr_key_v4([192, 0, 2, 1]),
            addr_key("::ffff:192.0.2.1".parse().unwrap())
        );
        assert!(!t.is_vip(addr_key("::ffff:192.0.2.1".parse().unwrap())));
        assert!(t.is_vip(v4));
    }

    #[test]
    fn all_ports_listener_takes_fragments_even_beside_port_listeners() {
        let t = VipTable::build(&[
            listener(&["192.0.2.1"], Protocol::Udp, Some(53)),
            listener(&["192.0.2.1"], Protocol::Udp, None),
            listener(&["192.0.2.1"], Protocol::Udp, Some(54)),
        ]);
        let v4 = addr_key_v4([192, 0, 2, 1]);
        assert_eq!(
            t.fragment_target(v4, 17),
            Some(FragmentTarget::One(ListenerId(1)))
        );
    }

    proptest::proptest! {
        /// Every lookup (the general one and each family's) agrees with a
        /// plain model of listeners: the port listener, else the address's
        /// all-ports listener, else no listener on a VIP, else not a VIP.
        #[test]
        fn lookups_agree_with_a_model_of_the_listeners(
            specs in proptest::collection::vec((0usize..12, proptest::bool::ANY, proptest::option::of(79u16..84)), 1..60),
            queries in proptest::collection::vec((0usize..14, proptest::bool::ANY, 78u16..85), 1..200),
        ) {
            use std::collections::{HashMap, HashSet};
            // Six IPv4 and six IPv6 addresses (indices 12, 13: no VIP).
            let addr = |i: usize| -> IpAddr {
                if i.is_multiple_of(2) {
                    IpAddr::from([192, 0, 2, i as u8])
                } else {
                    IpAddr::from([0x2001, 0xdb8, 0, 0, (i as u16) << 8, 0, 0, i as u16])
                }
            };
            let proto = |tcp: bool| if tcp { Protocol::Tcp } else { Protocol::Udp };
            let ls: Vec<Listener> = specs
                .iter()
                .map(|&(a, tcp, port)| {
                    let mut l = listener(&[], proto(tcp), port);
                    l.vips = vec![addr(a)];
                    l
                })
                .collect();
            let t = VipTable::build(&ls);
            let (mut ports, mut all, mut vips) = (HashMap::new(), HashMap::new(), HashSet::new());
            for (i, &(a, tcp, port)) in specs.iter().enumerate() {
                let k = addr_key(addr(a));
                vips.insert(k);
                match port {
                    Some(p) => ports.insert((k, proto(tcp).number(), p), ListenerId(i as u16)),
                    None => all.insert((k, proto(tcp).number()), ListenerId(i as u16)),
                };
            }
            for (a, tcp, port) in queries {
                let (ip, pr) = (addr(a), proto(tcp).number());
                let k = addr_key(ip);
                let want = match ports.get(&(k, pr, port)).or(all.get(&(k, pr))) {
                    Some(&id) => VipMatch::Listener(id),
                    None if vips.contains(&k) => VipMatch::NoListener,
                    None => VipMatch::NotVip,
                };
                proptest::prop_assert_eq!(t.lookup(k, pr, port), want);
                let family = match ip {
                    IpAddr::V4(v) => t.lookup_v4(v.octets(), pr, port),
                    IpAddr::V6(v) => t.lookup_v6(v.octets(), pr, port),
                };
                proptest::prop_assert_eq!(family, want);
            }
        }
    }
}
