use dnlb_dataplane::capture::Decision;
use dnlb_dataplane::PortIndex;
use dnlb_lb::verdict::DropReason;
use pcap_file::pcapng::{Block, PcapNgReader};

use super::*;

fn request(json: &str) -> Result<CaptureSpec, String> {
    serde_json::from_str::<CaptureRequest>(json)
        .map_err(|e| e.to_string())?
        .validate()
}

#[test]
fn requests_become_filters_and_budgets_or_are_refused() {
    let s = request(
        r#"{"src": "198.51.100.7", "dst": "192.0.2.0/24", "sport": 5555, "dport": 80, "proto": "TCP", "packets": 10, "seconds": 5}"#,
    )
    .unwrap();
    assert_eq!(s.filter.src.unwrap().len(), 32);
    assert_eq!(s.filter.dst.unwrap().len(), 24);
    assert_eq!(
        (s.filter.sport, s.filter.dport, s.filter.proto),
        (Some(5555), Some(80), Some(6))
    );
    assert_eq!((s.packets, s.seconds), (10, 5));
    let any = request("{}").unwrap();
    assert_eq!(any.filter, CaptureFilter::default());
    assert_eq!(
        (any.packets, any.seconds),
        (DEFAULT_PACKETS, DEFAULT_SECONDS)
    );
    assert_eq!(any.request.packets, Some(DEFAULT_PACKETS), "filled in");
    assert_eq!(
        request(r#"{"src": "2001:db8::/32", "proto": "58"}"#)
            .unwrap()
            .filter
            .proto,
        Some(58)
    );
    for bad in [
        r#"{"src": "10.0.0.0/33"}"#,
        r#"{"src": "nope"}"#,
        r#"{"dst": "10.0.0.0/x"}"#,
        r#"{"src": "10.0.0.1", "dst": "2001:db8::1"}"#,
        r#"{"proto": "sctp!"}"#,
        r#"{"packets": 0}"#,
        r#"{"packets": 20001}"#,
        r#"{"seconds": 3601}"#,
        r#"{"sport": 70000}"#,
        r#"{"color": "red"}"#,
    ] {
        assert!(request(bad).is_err(), "{bad}");
    }
}

fn udp(flow: u32) -> Vec<u8> {
    dnlb_testkit::frame(&dnlb_testkit::FlowMix::default(), flow, 0)
}

#[test]
fn a_capture_keeps_its_budget_and_writes_pcapng_that_reads_back() {
    let board = CaptureBoard::new(2);
    let mut taps = [board.tap(0), board.tap(1)];
    let mut cap = Capture::new(board.clone());
    assert_eq!(cap.status(), CaptureStatus::default());
    assert!(cap.pcapng(&|_| String::new()).is_none());
    let spec = request(r#"{"src": "198.18.0.3", "packets": 3}"#).unwrap();
    assert!(cap.start(spec).armed);
    let out = vec![0x45u8; 90];
    for (i, tap) in taps.iter_mut().enumerate() {
        assert!(tap.armed(1000));
        for flow in [1, 3, 5, 3] {
            let f = udp(flow);
            if let Some(at) = tap.before(&f) {
                let d = if i == 0 {
                    Decision::Backend(BackendId(4))
                } else {
                    Decision::Drop(DropReason::AclDenied)
                };
                tap.after(at, PortIndex(0), &out, d, 1000 + flow);
            }
        }
    }
    cap.tick();
    let st = cap.status();
    assert!(!st.armed, "three packets: the budget");
    assert_eq!(st.ended.as_deref(), Some("packets"));
    // Worker 0: two packets in and out; worker 1: one (dropped: in only).
    assert_eq!((st.packets, st.frames, st.dropped), (3, 5, 0));
    for tap in &mut taps {
        assert!(!tap.armed(2000), "disarmed");
    }
    let file = cap.pcapng(&|b| format!("#{}", b.0)).unwrap();
    let mut r = PcapNgReader::new(&file[..]).unwrap();
    let mut seen = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            let comment = p.options.iter().find_map(|o| match o {
                EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                _ => None,
            });
            seen.push((
                p.interface_id,
                p.original_len,
                p.data.len(),
                comment.unwrap(),
            ));
        }
    }
    let names: Vec<_> = r.interfaces().iter().map(|i| i.options.clone()).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].contains(&InterfaceDescriptionOption::IfName("rx".into())));
    assert!(names[1].contains(&InterfaceDescriptionOption::IfName("tx".into())));
    // In time order (all at the same millisecond here: by worker).
    let f = udp(3).len();
    assert_eq!(
        seen,
        vec![
            (0, f as u32, f, "worker 0 port 0 in: backend #4".to_string()),
            (1, 90, 90, "worker 0 port 0 out: backend #4".to_string()),
            (0, f as u32, f, "worker 0 port 0 in: backend #4".to_string()),
            (1, 90, 90, "worker 0 port 0 out: backend #4".to_string()),
            (
                0,
                f as u32,
                f,
                "worker 1 port 0 in: drop acl_denied".to_string()
            ),
        ]
    );
}

#[test]
fn a_capture_ends_at_its_time_and_a_new_one_discards_old_records() {
    let board = CaptureBoard::new(1);
    let mut tap = board.tap(0);
    let mut cap = Capture::new(board.clone());
    cap.start(request(r#"{"seconds": 1}"#).unwrap());
    assert!(tap.armed(0));
    let f = udp(0);
    let at = tap.before(&f).unwrap();
    tap.after(at, PortIndex(0), &f, Decision::Reply, 0);
    // Left in the ring when the next capture starts: not part of it.
    cap.start(request(r#"{"seconds": 1, "packets": 5}"#).unwrap());
    cap.tick();
    assert_eq!(cap.status().packets, 0);
    // The worker records under the old filter until it looks again.
    let at = tap.before(&f).unwrap();
    tap.after(at, PortIndex(0), &f, Decision::Reply, 0);
    cap.tick();
    assert_eq!(cap.status().packets, 0, "an old capture's record");
    assert!(tap.armed(5));
    let at = tap.before(&f).unwrap();
    tap.after(at, PortIndex(0), &f, Decision::Reply, 5);
    cap.tick();
    assert_eq!((cap.status().packets, cap.status().frames), (1, 2));
    std::thread::sleep(Duration::from_millis(1100));
    cap.tick();
    let st = cap.status();
    assert_eq!((st.armed, st.ended.as_deref()), (false, Some("seconds")));
    let stopped = cap.stop();
    assert_eq!(stopped.ended.as_deref(), Some("seconds"), "already ended");
}
