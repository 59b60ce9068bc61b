//! The run-time changes file survives what real gateways meet: `kill -9` at
//! any moment of a stream of API changes (the file is then the last
//! acknowledged version or the one in flight, never empty or torn, and the
//! gateway starts from it), and a full disk (the change is refused with a
//! clear error; the running config and the file stay as they were).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dnlb_config::runtime::RuntimeChanges;

const BACKEND: &str = "10.1.0.1";

fn config(dir: &Path, tag: &str) -> PathBuf {
    let text = format!(
        "[gateway]\nname = \"durable\"\n[dataplane]\neal_args = {}\nworker_lcores = [1]\n\
         idle_polls_before_sleep = 64\nidle_sleep_us = 500\n\
         [[dataplane.ports]]\nname = \"net_null0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n\
         [[listener]]\nname = \"web\"\nvips = [\"192.0.2.10\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"web\"\n\
         [[target_group]]\nname = \"web\"\n\
         [[target_group.backend]]\naddress = \"{BACKEND}\"\ntunnel = \"gue\"\n",
        common::toml_list(&common::eal_args(tag)),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the changes in this test amount to: the registered addresses and
/// the weight set on [`BACKEND`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    registered: BTreeSet<String>,
    weight: Option<u8>,
}

impl State {
    fn of(ch: &RuntimeChanges) -> State {
        State {
            registered: ch
                .register
                .iter()
                .map(|r| r.backend["address"].as_str().unwrap().to_string())
                .collect(),
            weight: ch
                .weight
                .iter()
                .find(|w| w.backend.address.to_string() == BACKEND)
                .map(|w| w.weight),
        }
    }
}

/// Change number `k`: even ones register or deregister one of eight
/// addresses, odd ones set the weight to a value the one before did not
/// have.
fn change(k: u64, s: &State) -> (String, String, String, State) {
    let mut next = s.clone();
    if k.is_multiple_of(2) {
        let a = format!("10.2.0.{}", (k / 2) % 8 + 1);
        if s.registered.contains(&a) {
            next.registered.remove(&a);
            let path = format!("/v1/target_groups/web/backends/{a}");
            ("DELETE".into(), path, String::new(), next)
        } else {
            next.registered.insert(a.clone());
            let body = format!("{{\"address\": \"{a}\", \"tunnel\": \"gue\"}}");
            (
                "POST".into(),
                "/v1/target_groups/web/backends".into(),
                body,
                next,
            )
        }
    } else {
        let w = (k % 100) as u8 + 1;
        next.weight = Some(w);
        let path = format!("/v1/target_groups/web/backends/{BACKEND}/weight");
        ("PUT".into(), path, format!("{{\"weight\": {w}}}"), next)
    }
}

/// A small deterministic generator (xorshift), seeded per run and printed,
/// for the kill moments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn call(addr: &str, token: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let bearer = format!("Authorization: Bearer {token}");
    let mut headers = vec!["Host: localhost", bearer.as_str()];
    if !body.is_empty() {
        headers.push("Content-Type: application/json");
    }
    s.write_all(common::http_request(method, path, &headers, body).as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text))
}

#[test]
fn kill_9_during_api_changes_never_loses_an_acknowledged_one() {
    let dir = common::tempdir();
    let cfg = config(dir.path(), "kill9");
    let runtime = dnlb_config::runtime::runtime_path(&cfg);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let mut acked = State::default();
    let mut k = 0u64;
    let (mut torn_mid_write, mut total_acked) = (0, 0);
    for round in 0..20 {
        // The gateway starts from whatever the last kill left.
        let (mut child, events) = common::spawn_dnlb(&[
            "run",
            "--watch-config-ms",
            "0",
            "--config",
            cfg.to_str().unwrap(),
        ]);
        let addr = common::admin_addr(&events);
        let token = common::admin_token(&cfg);
        let pid = child.0.id();
        let kill_after = Duration::from_millis(20 + rng.below(1500));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        let mut in_flight = None;
        let started = Instant::now();
        for _ in 0..500 {
            let (method, path, body, next) = change(k, &acked);
            in_flight = Some(next.clone());
            match call(&addr, &token, &method, &path, &body) {
                Some((200, _)) => {
                    acked = next;
                    k += 1;
                    total_acked += 1;
                    in_flight = None;
                }
                Some((code, text)) => panic!("round {round}: {method} {path}: {code} {text}"),
                None => break, // killed
            }
        }
        killer.join().unwrap();
        let _ = child.0.wait();
        // Never empty or torn: it loads, and it is the last acknowledged
        // state or the one in flight.
        let loaded = RuntimeChanges::load(&runtime)
            .unwrap_or_else(|e| panic!("round {round}: the file is damaged: {e}"));
        let got = State::of(&loaded);
        if Some(&got) == in_flight.as_ref() && got != acked {
            // Saved, not yet acknowledged when the kill came.
            torn_mid_write += 1;
            acked = got;
            k += 1;
        } else {
            assert_eq!(
                got,
                acked,
                "round {round} (killed after {:?}): the file lost an acknowledged change",
                started.elapsed()
            );
        }
        let prev = dnlb_config::durable::previous_path(&runtime);
        if prev.exists() {
            RuntimeChanges::load(&prev)
                .unwrap_or_else(|e| panic!("round {round}: the kept version is damaged: {e}"));
        }
    }
    eprintln!(
        "{total_acked} changes acknowledged; {torn_mid_write} kills between saving and answering"
    );
    assert!(
        total_acked > 20,
        "too few changes went through to test anything"
    );
    // A last start shows the gateway takes the file as it is.
    let (child, events) = common::spawn_dnlb(&[
        "run",
        "--watch-config-ms",
        "0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let addr = common::admin_addr(&events);
    let (code, body) = common::http_raw(
        &addr,
        &common::http_request("GET", "/v1/backends", &["Host: localhost"], ""),
    );
    assert_eq!(code, 200);
    for a in &acked.registered {
        assert!(
            body.contains(&format!("\"address\": \"{a}\"")),
            "{a} missing: {body}"
        );
    }
    drop(child);
}

/// A tmpfs mounted for the test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs failed (the test runs as root)");
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_refuses_the_change_and_changes_nothing() {
    let dir = common::tempdir();
    let fs = Tmpfs::mount(dir.path().join("small"), "256k");
    let cfg = config(&fs.0, "full");
    let runtime = dnlb_config::runtime::runtime_path(&cfg);
    let (child, events) = common::spawn_dnlb(&[
        "run",
        "--watch-config-ms",
        "0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let addr = common::admin_addr(&events);
    let token = common::admin_token(&cfg);
    let token = token.as_str();
    let weight = |w: u8| {
        call(
            &addr,
            token,
            "PUT",
            &format!("/v1/target_groups/web/backends/{BACKEND}/weight"),
            &format!("{{\"weight\": {w}}}"),
        )
        .expect("the gateway answers")
    };
    let status = || {
        let (_, body) = common::http_raw(
            &addr,
            &common::http_request("GET", "/v1/status", &["Host: localhost"], ""),
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    assert_eq!(weight(50).0, 200);
    let before = std::fs::read(&runtime).unwrap();
    let generation = status()["generation"].clone();
    // Fill the file system.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(fs.0.join("filler")).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let (code, text) = weight(60);
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("the change was not made"), "{text}");
    // Nothing changed: not the running config, not the file, no debris.
    let s = status();
    assert_eq!(s["generation"], generation);
    assert_eq!(s["backends"][0]["weight"], 50, "{s}");
    assert_eq!(std::fs::read(&runtime).unwrap(), before);
    let debris: Vec<_> = std::fs::read_dir(&fs.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(debris.is_empty(), "{debris:?}");
    // Space again: the same change goes through.
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    assert_eq!(weight(60).0, 200);
    assert_eq!(status()["backends"][0]["weight"], 60);
    drop(child);
    drop(fs);
}

#[test]
fn a_damaged_changes_file_stops_the_start_with_its_name() {
    let dir = common::tempdir();
    let cfg = config(dir.path(), "damaged");
    let runtime = dnlb_config::runtime::runtime_path(&cfg);
    for damage in ["", "[[weight]]\nbackend = { target_group = \"we"] {
        std::fs::write(&runtime, damage).unwrap();
        for cmd in [vec!["run", "--config"], vec!["check"]] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnlb"))
                .args(&cmd)
                .arg(&cfg)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd:?} accepted {damage:?}");
            assert!(
                err.contains(&runtime.display().to_string()),
                "{cmd:?}: the error names no file: {err}"
            );
        }
    }
    // Not overwritten by the failed starts.
    assert_eq!(
        std::fs::read_to_string(&runtime).unwrap(),
        "[[weight]]\nbackend = { target_group = \"we"
    );
}
