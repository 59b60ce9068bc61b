//! The codec: pinned layout, round trips, and any bytes (random, mutated,
//! mutated and re-tagged, cut, extended) decoded without a panic.

use proptest::prelude::*;

use super::*;
use crate::entry::FLAG_CLOSING;

fn keys() -> Keys {
    Keys::new(Key::new(&[0x5a; 32]).unwrap(), None)
}

fn header() -> Header {
    Header {
        sender: 0x0a0b0c0d0e0f1011,
        epoch: 1_700_000_000_000,
        sequence: 7,
        generation: 3,
        context: 0,
    }
}

fn entry(i: u64) -> FlowException {
    FlowException {
        listener: 1,
        flow: i,
        backend: 100 + i,
        remaining_ms: 900_000,
        flags: 0,
    }
}

#[test]
fn header_layout_is_pinned() {
    let k = keys();
    let m = Message {
        header: header(),
        body: Body::FetchEnd { total: 0x0102 },
    };
    let b = m.encode(k.current()).unwrap();
    assert_eq!(b.len(), HEADER_LEN + 8 + TAG_LEN);
    assert_eq!(&b[0..8], &[b'D', b'N', b'L', b'S', 1, 5, 0, 0]);
    assert_eq!(&b[8..12], &k.current().id().to_be_bytes());
    assert_eq!(&b[12..20], &0x0a0b0c0d0e0f1011u64.to_be_bytes());
    assert_eq!(&b[28..36], &7u64.to_be_bytes());
    assert_eq!(&b[52..60], &0x0102u64.to_be_bytes());
    assert_eq!(&b[60..], &k.current().tag(&b[..60]));
    assert_eq!(Message::decode(&b, &k), Ok(m));
}

#[test]
fn a_full_message_fits_the_limit() {
    assert_eq!(MAX_ENTRIES, 41);
    let m = Message {
        header: header(),
        body: Body::Exceptions((0..41).map(entry).collect()),
    };
    let b = m.encode(keys().current()).unwrap();
    assert_eq!(b.len(), 1396);
    assert!(b.len() <= MAX_MESSAGE_LEN);
    let too_many = Message {
        header: header(),
        body: Body::Withdraw((0..42).map(entry).collect()),
    };
    assert_eq!(
        too_many.encode(keys().current()),
        Err(EncodeError::EntryCount(42))
    );
    let none = Message {
        header: header(),
        body: Body::FetchReply(Vec::new()),
    };
    assert_eq!(
        none.encode(keys().current()),
        Err(EncodeError::EntryCount(0))
    );
}

#[test]
fn rejections_by_reason() {
    let k = keys();
    let m = Message {
        header: header(),
        body: Body::Exceptions(vec![entry(1)]),
    };
    let good = m.encode(k.current()).unwrap();
    assert_eq!(Message::decode(&[0; 1401], &k), Err(Reject::Oversized));
    assert_eq!(Message::decode(&good[..40], &k), Err(Reject::Malformed));
    assert_eq!(
        Message::decode(&good[..good.len() - 1], &k),
        Err(Reject::Malformed)
    );
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(Message::decode(&bad_magic, &k), Err(Reject::Malformed));
    let mut bad_version = good.clone();
    bad_version[4] = 2;
    assert_eq!(Message::decode(&bad_version, &k), Err(Reject::Malformed));
    let mut bad_kind = good.clone();
    bad_kind[5] = 9;
    assert_eq!(Message::decode(&bad_kind, &k), Err(Reject::Malformed));
    // Another key: unknown key id.
    let other = Keys::new(Key::new(&[0x33; 32]).unwrap(), None);
    assert_eq!(Message::decode(&good, &other), Err(Reject::Forged));
    // The right key id but a changed byte: wrong tag.
    let mut flipped = good.clone();
    flipped[60] ^= 1;
    assert_eq!(Message::decode(&flipped, &k), Err(Reject::Forged));
    // A reserved byte set and tagged anew: authentic but malformed.
    let mut reserved = good.clone();
    reserved[HEADER_LEN + 31] = 1;
    let n = reserved.len() - TAG_LEN;
    let tag = k.current().tag(&reserved[..n]);
    reserved[n..].copy_from_slice(&tag);
    assert_eq!(Message::decode(&reserved, &k), Err(Reject::Malformed));
}

#[test]
fn the_previous_key_is_accepted_during_a_rotation() {
    let old = Key::new(&[1; 32]).unwrap();
    let new = Key::new(&[2; 32]).unwrap();
    let m = Message {
        header: header(),
        body: Body::FetchRequest,
    };
    let by_old = m.encode(&old).unwrap();
    let by_new = m.encode(&new).unwrap();
    let rotated = Keys::new(new.clone(), Some(old.clone()));
    assert_eq!(Message::decode(&by_old, &rotated), Ok(m.clone()));
    assert_eq!(Message::decode(&by_new, &rotated), Ok(m.clone()));
    let done = Keys::new(new, None);
    assert_eq!(Message::decode(&by_old, &done), Err(Reject::Forged));
}

fn arb_entry() -> impl Strategy<Value = FlowException> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        0u8..4,
    )
        .prop_map(
            |(listener, flow, backend, remaining_ms, flags)| FlowException {
                listener,
                flow,
                backend,
                remaining_ms,
                flags,
            },
        )
}

fn arb_message() -> impl Strategy<Value = Message> {
    let header = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(sender, epoch, sequence, generation, context)| Header {
            sender,
            epoch,
            sequence,
            generation,
            context,
        });
    let entries = || prop::collection::vec(arb_entry(), 1..=MAX_ENTRIES);
    let body = prop_oneof![
        entries().prop_map(Body::Exceptions),
        entries().prop_map(Body::Withdraw),
        Just(Body::FetchRequest),
        entries().prop_map(Body::FetchReply),
        any::<u64>().prop_map(|total| Body::FetchEnd { total }),
    ];
    (header, body).prop_map(|(header, body)| Message { header, body })
}

/// Tags `bytes` anew (when long enough), as a peer holding the key would.
fn retag(bytes: &mut [u8], key: &Key) {
    if bytes.len() >= TAG_LEN {
        let n = bytes.len() - TAG_LEN;
        let tag = key.tag(&bytes[..n]);
        bytes[n..].copy_from_slice(&tag);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(m in arb_message()) {
        let k = keys();
        let b = m.encode(k.current()).unwrap();
        prop_assert!(b.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(b.len(), message_len(m.body.kind(), m.body.entries().len()));
        prop_assert_eq!(Message::decode(&b, &k), Ok(m));
    }

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..1600)) {
        let k = keys();
        if let Ok(m) = Message::decode(&b, &k) {
            prop_assert_eq!(m.encode(k.current()).unwrap(), b);
        }
    }

    #[test]
    fn random_bytes_with_a_valid_prefix_and_tag_never_panic(
        kind in 0u8..8,
        count in 0u16..50,
        mut rest in prop::collection::vec(any::<u8>(), 0..1500),
    ) {
        // The structure a valid message starts with, so the fields past
        // the first checks are reached too; then tagged with the key.
        let k = keys();
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(kind);
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&k.current().id().to_be_bytes());
        b.append(&mut rest);
        retag(&mut b, k.current());
        if let Ok(m) = Message::decode(&b, &k) {
            prop_assert_eq!(m.encode(k.current()).unwrap(), b);
        }
    }

    #[test]
    fn any_changed_byte_is_rejected(m in arb_message(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let k = keys();
        let mut b = m.encode(k.current()).unwrap();
        let i = at.index(b.len());
        b[i] ^= x;
        prop_assert!(Message::decode(&b, &k).is_err());
    }

    #[test]
    fn mutated_and_retagged_never_panics(
        m in arb_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        let k = keys();
        let mut b = m.encode(k.current()).unwrap();
        for (at, v) in edits {
            let i = at.index(b.len());
            b[i] = v;
        }
        if cut_it {
            b.truncate(cut.index(b.len()));
        }
        retag(&mut b, k.current());
        match Message::decode(&b, &k) {
            // Whatever is accepted is exactly what encoding it gives.
            Ok(d) => prop_assert_eq!(d.encode(k.current()).unwrap(), b),
            Err(r) => prop_assert!(matches!(r, Reject::Malformed | Reject::Forged)),
        }
    }

    #[test]
    fn cut_or_extended_is_rejected(m in arb_message(), cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..64)) {
        let k = keys();
        let b = m.encode(k.current()).unwrap();
        let n = cut.index(b.len());
        prop_assert!(Message::decode(&b[..n], &k).is_err());
        let mut longer = b.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(Message::decode(&longer, &k).is_err());
    }
}

#[test]
fn closing_flag_survives() {
    let k = keys();
    let mut e = entry(5);
    e.flags = FLAG_CLOSING;
    let m = Message {
        header: header(),
        body: Body::Withdraw(vec![e]),
    };
    let d = Message::decode(&m.encode(k.current()).unwrap(), &k).unwrap();
    assert!(d.body.entries()[0].closing());
}
