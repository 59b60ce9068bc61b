//! `dnlb explain`'s worker side: each worker tells what its own flow table
//! (and learned table) holds for one flow, without a lock and without
//! allocating.
//!
//! The control thread writes the flow (a [`FlowQuery`], a few words) under
//! a sequence number (a seqlock: odd while it writes), and each worker,
//! which checks the sequence once per loop iteration (one relaxed load),
//! reads the flow, computes [`Processor::explain`] against the snapshot it
//! runs and writes the fixed-size answer into its own slot, then marks the
//! slot with the sequence it answered. The control thread waits for every
//! slot with a deadline and reports the workers that did not answer.
//! Nothing happens per packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;
#[allow(clippy::disallowed_types, reason = "control thread only: one asker")]
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dnlb_lb::ids::BackendId;
use dnlb_lb::processor::{FlowQuery, Processor, Tracked, WorkerAnswer};
use dnlb_lb::snapshot::Snapshot;

/// Words of a query: two addresses of two words, and one of ports,
/// protocol and families.
const QUERY_WORDS: usize = 5;
/// Words of an answer: generation, sync, and two words per entry.
const ANSWER_WORDS: usize = 6;

#[derive(Debug, Default)]
struct Slot {
    /// The query sequence this slot answers.
    served: AtomicU64,
    words: [AtomicU64; ANSWER_WORDS],
}

/// Where the control thread asks workers about a flow. One slot per worker.
#[derive(Debug)]
pub struct ExplainBoard {
    /// Seqlock over `query`: odd while the control thread writes it.
    seq: AtomicU64,
    query: [AtomicU64; QUERY_WORDS],
    slots: Vec<Slot>,
    /// One asker at a time.
    #[allow(clippy::disallowed_types, reason = "control thread only")]
    asking: Mutex<()>,
}

fn addr_words(a: IpAddr) -> (u64, u64, bool) {
    let (v, v6) = match a {
        IpAddr::V4(a) => (u128::from(u32::from(a)), false),
        IpAddr::V6(a) => (u128::from(a), true),
    };
    (v as u64, (v >> 64) as u64, v6)
}

fn addr_of(lo: u64, hi: u64, v6: bool) -> IpAddr {
    let v = u128::from(lo) | u128::from(hi) << 64;
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

fn encode_query(q: &FlowQuery) -> [u64; QUERY_WORDS] {
    let (s0, s1, s6) = addr_words(q.src);
    let (d0, d1, d6) = addr_words(q.dst);
    let rest = u64::from(q.proto)
        | u64::from(q.sport) << 8
        | u64::from(q.dport) << 24
        | u64::from(s6) << 40
        | u64::from(d6) << 41;
    [s0, s1, d0, d1, rest]
}

fn decode_query(w: [u64; QUERY_WORDS]) -> FlowQuery {
    FlowQuery {
        src: addr_of(w[0], w[1], w[4] >> 40 & 1 != 0),
        dst: addr_of(w[2], w[3], w[4] >> 41 & 1 != 0),
        proto: w[4] as u8,
        sport: (w[4] >> 8) as u16,
        dport: (w[4] >> 24) as u16,
    }
}

fn encode_tracked(t: Option<Tracked>) -> [u64; 2] {
    match t {
        None => [0, 0],
        Some(t) => [
            u64::from(t.backend.0)
                | 1 << 32
                | u64::from(t.closing) << 33
                | u64::from(t.pinned) << 34
                | u64::from(t.usable) << 35,
            u64::from(t.remaining_ms),
        ],
    }
}

fn decode_tracked(w0: u64, w1: u64) -> Option<Tracked> {
    (w0 >> 32 & 1 != 0).then_some(Tracked {
        backend: BackendId(w0 as u32),
        closing: w0 >> 33 & 1 != 0,
        pinned: w0 >> 34 & 1 != 0,
        usable: w0 >> 35 & 1 != 0,
        remaining_ms: w1 as u32,
    })
}

fn encode_answer(a: &WorkerAnswer) -> [u64; ANSWER_WORDS] {
    let [f0, f1] = encode_tracked(a.flow);
    let [l0, l1] = encode_tracked(a.learned);
    [a.generation, u64::from(a.sync), f0, f1, l0, l1]
}

fn decode_answer(w: [u64; ANSWER_WORDS]) -> WorkerAnswer {
    WorkerAnswer {
        generation: w[0],
        sync: w[1] != 0,
        flow: decode_tracked(w[2], w[3]),
        learned: decode_tracked(w[4], w[5]),
    }
}

impl ExplainBoard {
    /// A board for `workers` workers.
    #[allow(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        reason = "control thread"
    )]
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(ExplainBoard {
            seq: AtomicU64::new(0),
            query: Default::default(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
            asking: Mutex::new(()),
        })
    }

    /// The answering end for worker `index`.
    pub fn responder(self: &Arc<Self>, index: usize) -> ExplainResponder {
        assert!(index < self.slots.len());
        ExplainResponder {
            board: self.clone(),
            index,
            last: 0,
        }
    }

    /// Asks every worker about flow `q` and waits up to `timeout` for
    /// their answers (a worker in idle back-off answers after its sleep):
    /// one entry per worker, `None` for a worker that did not answer in
    /// time.
    #[allow(clippy::disallowed_methods, reason = "control thread only")]
    pub fn ask(&self, q: &FlowQuery, timeout: Duration) -> Vec<Option<WorkerAnswer>> {
        let _one = self.asking.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + timeout;
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (w, v) in self.query.iter().zip(encode_query(q)) {
            w.store(v, Ordering::Relaxed);
        }
        let asked = s + 2;
        self.seq.store(asked, Ordering::Release);
        loop {
            let done = self
                .slots
                .iter()
                .all(|s| s.served.load(Ordering::Acquire) == asked);
            if done || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        self.slots
            .iter()
            .map(|s| {
                // The worker wrote its words before marking the slot, and
                // writes nothing more until the next query.
                (s.served.load(Ordering::Acquire) == asked).then(|| {
                    decode_answer(std::array::from_fn(|i| s.words[i].load(Ordering::Relaxed)))
                })
            })
            .collect()
    }
}

/// A worker's end of the [`ExplainBoard`].
#[derive(Debug)]
pub struct ExplainResponder {
    board: Arc<ExplainBoard>,
    index: usize,
    /// The last query sequence answered.
    last: u64,
}

impl ExplainResponder {
    /// Whether the control thread asked something this worker has not
    /// answered yet (one relaxed load; call once per loop iteration).
    #[inline]
    pub fn requested(&self) -> bool {
        self.board.seq.load(Ordering::Relaxed) != self.last
    }

    /// Answers the pending query from `p`'s tables against `snap` (the
    /// snapshot the worker runs) at `now`. A query being rewritten is left
    /// for the next call.
    #[cold]
    pub fn answer(&mut self, p: &Processor, snap: &Snapshot, now: u32) {
        let b = &*self.board;
        let s = b.seq.load(Ordering::Acquire);
        if s == self.last || s % 2 == 1 {
            return;
        }
        let words = std::array::from_fn(|i| b.query[i].load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        if b.seq.load(Ordering::Relaxed) != s {
            return;
        }
        let a = p.explain(snap, &decode_query(words), now);
        let slot = &b.slots[self.index];
        for (w, v) in slot.words.iter().zip(encode_answer(&a)) {
            w.store(v, Ordering::Relaxed);
        }
        slot.served.store(s, Ordering::Release);
        self.last = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(src: &str, dst: &str) -> FlowQuery {
        FlowQuery {
            src: src.parse().unwrap(),
            sport: 5555,
            dst: dst.parse().unwrap(),
            dport: 443,
            proto: 17,
        }
    }

    #[test]
    fn queries_and_answers_round_trip() {
        for q in [
            query("198.51.100.7", "192.0.2.1"),
            query("2001:db8::7", "2001:db8:ffff::1"),
            query("198.51.100.7", "2001:db8::1"),
        ] {
            assert_eq!(decode_query(encode_query(&q)), q);
        }
        let t = Tracked {
            backend: BackendId(0x3fff_ffff),
            closing: true,
            pinned: false,
            remaining_ms: u32::MAX,
            usable: true,
        };
        for a in [
            WorkerAnswer::default(),
            WorkerAnswer {
                generation: 77,
                flow: Some(t),
                learned: Some(Tracked {
                    pinned: true,
                    closing: false,
                    usable: false,
                    ..t
                }),
                sync: true,
            },
        ] {
            assert_eq!(decode_answer(encode_answer(&a)), a);
        }
    }

    fn snapshot() -> Snapshot {
        let text = "[gateway]\nname = \"s\"\n[dataplane]\nworker_lcores = [1]\n\
            [[dataplane.ports]]\nname = \"net_null0\"\n\
            [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
            [[listener]]\nname = \"u\"\nvips = [\"192.0.2.10\"]\nprotocol = \"udp\"\nport = 80\ntarget_group = \"g\"\n\
            [[target_group]]\nname = \"g\"\n[[target_group.backend]]\naddress = \"10.9.0.1\"\ntunnel = \"ipip\"\n";
        let cfg = dnlb_config::parse(std::path::Path::new("e.toml"), text).unwrap();
        Snapshot::build(&cfg, 3, &mut Default::default()).unwrap()
    }

    #[test]
    fn workers_answer_on_their_poll_and_a_silent_one_is_reported() {
        let snap = Arc::new(snapshot());
        let board = ExplainBoard::new(2);
        let mut w0 = board.responder(0);
        let _silent = board.responder(1);
        let mut p = Processor::new(1024, 1);
        p.adopt(&snap);
        // One UDP datagram of flow 0 (198.18.0.0:1024 -> 192.0.2.10:80).
        let mix = dnlb_testkit::FlowMix::default();
        let mut pkt = dnlb_testkit::VecPacket::new(&dnlb_testkit::frame(&mix, 0, 0));
        assert!(matches!(
            p.process(&snap, &mut pkt, [2, 0, 0, 0, 0, 9], 100),
            dnlb_lb::verdict::Action::Encapsulated(_)
        ));
        assert!(!w0.requested());
        let q = FlowQuery {
            src: "198.18.0.0".parse().unwrap(),
            sport: 1024,
            dst: "192.0.2.10".parse().unwrap(),
            dport: 80,
            proto: 17,
        };
        let b = board.clone();
        let asker = std::thread::spawn(move || b.ask(&q, Duration::from_millis(300)));
        while !asker.is_finished() {
            if w0.requested() {
                w0.answer(&p, &snap, 1100);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let answers = asker.join().unwrap();
        assert_eq!(answers.len(), 2);
        let a = answers[0].unwrap();
        let f = a.flow.expect("the worker tracks the flow");
        assert_eq!((a.generation, a.sync), (3, false));
        assert_eq!(
            (f.backend, f.usable, f.closing),
            (BackendId(0), true, false)
        );
        assert_eq!(f.remaining_ms, snap.params.udp_timeout_ms - 1000);
        assert_eq!(answers[1], None, "the silent worker is reported");
        assert!(!w0.requested(), "answered once");
    }
}
