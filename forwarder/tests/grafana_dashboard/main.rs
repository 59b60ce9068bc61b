//! The Grafana dashboard `docs/examples/grafana-dashboard.json` against the
//! metrics dnlb really exports: its structure (what Grafana needs to import
//! it), and every PromQL query in it (panels, annotations, template
//! variables) — each metric is one `control::metrics::families()` lists,
//! counters appear only inside `rate()`/`irate()`/`increase()` and those wrap
//! only counters, every label in a matcher, `by (...)`, `on (...)` or a
//! legend is one the series carry there (the labels are read from `/metrics`
//! text rendered from a status that has every family), matchers on drop
//! reasons and the like name values dnlb writes, each panel's unit fits what
//! its queries measure, and Prometheus's own parser (`promtool check rules`)
//! accepts every query.

mod promql;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dnlb_dataplane::DropReason;
use dnlb_forwarder::control::metrics::{self, Kind};
use dnlb_forwarder::control::report;
use dnlb_forwarder::control::status::{
    AclRuleStatus, AclStatus, BackendStatus, FlowStatus, HostClassStatus, LimitsStatus,
    ListenerStatus, PortStatus, RoutesStatus, Status, SyncStatus, WorkerStatus,
};
use dnlb_lb::policing::HostClass;
use promql::{Metric, Type};
use serde_json::Value;

const DASHBOARD: &str = "../docs/examples/grafana-dashboard.json";

/// Metrics the dashboard leaves out on purpose.
const NOT_ON_DASHBOARD: &[&str] = &[];

/// The data source variable every panel and query uses.
const DS: &str = "${DS_PROMETHEUS}";

fn dashboard() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A status with a sample in every family: every drop reason, host class
/// and limit scope, an access list, BIRD.
fn fixture() -> Status {
    let reasons = || -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), 1))
            .collect()
    };
    Status {
        gateway: "gw1".into(),
        zone: Some("a".into()),
        uptime_secs: 60.0,
        generation: 3,
        reloads_ok: 2,
        reloads_rejected: 1,
        workers: vec![WorkerStatus {
            lcore: 1,
            rx_packets: 10,
            busy_seconds: 0.5,
            ..Default::default()
        }],
        ports: vec![PortStatus {
            name: "0000:03:00.0".into(),
            ..Default::default()
        }],
        drops: reasons(),
        flows: FlowStatus {
            host: HostClass::ALL
                .iter()
                .map(|c| HostClassStatus {
                    class: c.name().into(),
                    passed: 1,
                    dropped: 1,
                })
                .collect(),
            ..Default::default()
        },
        listeners: vec![ListenerStatus {
            name: "web".into(),
            drops: reasons(),
            acl: Some(AclStatus {
                default: "deny".into(),
                default_packets: 1,
                rules: vec![AclRuleStatus {
                    prefix: "198.51.100.0/24".into(),
                    action: "allow".into(),
                    packets: 1,
                }],
            }),
            limits: Some(LimitsStatus {
                new_flows_per_sec: Some(1000),
                source_new_flows_per_sec: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        }],
        backends: vec![BackendStatus {
            target_group: "web".into(),
            address: "10.1.0.1".into(),
            zone: Some("a".into()),
            drops: reasons(),
            ..Default::default()
        }],
        runtime_changes: vec!["weight".into()],
        routes: Some(RoutesStatus {
            wanted: vec!["192.0.2.10".into()],
            ..Default::default()
        }),
        // Every rejection reason the status reports.
        sync: Some(SyncStatus {
            rejected: report::rejections(&dnlb_sync::Rejections::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One sample line of the text format: its name and labels.
fn parse_sample(line: &str) -> (&str, Vec<(String, String)>) {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        while !rest.starts_with('}') {
            let (key, r) = rest.split_once("=\"").expect(line);
            let mut value = String::new();
            let mut chars = r.char_indices();
            let close = loop {
                match chars.next().expect(line) {
                    (_, '\\') => value.push(chars.next().expect(line).1),
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_string(), value));
            rest = &r[close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    (name, labels)
}

/// dnlb's metrics: names and kinds from `families()`, labels and their
/// values from the fixture's rendering.
fn catalog() -> BTreeMap<String, Metric> {
    let mut out: BTreeMap<String, Metric> = metrics::families()
        .map(|(kind, name, _)| {
            let m = Metric {
                counter: kind == Kind::Counter,
                ..Default::default()
            };
            (name.to_string(), m)
        })
        .collect();
    let text = metrics::render(&fixture());
    let mut sampled = BTreeSet::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            assert_eq!(out[name].counter, kind == Kind::Counter.name(), "{line}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, labels) = parse_sample(line);
        let m = out
            .get_mut(name)
            .unwrap_or_else(|| panic!("{name} is rendered but not in families()"));
        sampled.insert(name.to_string());
        for (k, v) in labels {
            m.labels.insert(k.clone());
            m.values.entry(k).or_default().insert(v);
        }
    }
    for name in out.keys() {
        assert!(
            sampled.contains(name),
            "the fixture renders no sample of {name}: give it one, so the test knows its labels"
        );
    }
    out
}

/// Every panel, those inside rows too.
fn all_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

fn is_row(p: &Value) -> bool {
    p["type"] == "row"
}

/// The dashboard's template variables by name.
fn variables(d: &Value) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for v in d["templating"]["list"].as_array().expect("templating.list") {
        let name = v["name"].as_str().expect("variable name").to_string();
        assert!(
            out.insert(name.clone(), v).is_none(),
            "variable {name} twice"
        );
    }
    out
}

/// A query of the dashboard: where it is, its PromQL, and the legend
/// templates whose `{{label}}`s must be labels of its result.
struct Query {
    place: String,
    expr: String,
    legends: Vec<String>,
    /// `label_values(selector, label)` of a template variable: the selector
    /// (counters allowed: it asks for series, not values) and the label.
    label_values: Option<String>,
}

fn queries(d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in all_panels(d).into_iter().filter(|p| !is_row(p)) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!(
                    "panel {:?} target {}",
                    p["title"].as_str().unwrap_or_default(),
                    t["refId"].as_str().unwrap_or_default()
                ),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                legends: t["legendFormat"]
                    .as_str()
                    .map(String::from)
                    .into_iter()
                    .collect(),
                label_values: None,
            });
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["expr"].as_str() {
            let legends = ["titleFormat", "textFormat", "tagKeys"]
                .iter()
                .filter_map(|k| a[k].as_str().map(String::from))
                .collect();
            out.push(Query {
                place: format!("annotation {:?}", a["name"]),
                expr: expr.to_string(),
                legends,
                label_values: None,
            });
        }
    }
    for (name, v) in variables(d) {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("a query variable's query");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| {
                panic!("variable {name}: expected label_values(selector, label), got {q}")
            });
        let (selector, label) = inner.rsplit_once(',').expect(q);
        out.push(Query {
            place: format!("variable {name}"),
            expr: selector.trim().to_string(),
            legends: Vec::new(),
            label_values: Some(label.trim().to_string()),
        });
    }
    out
}

/// `q` with Grafana's variables replaced by what Prometheus would see: the
/// interval variables by a duration, the dashboard's own by a value. A
/// variable the dashboard does not define is an error.
fn substitute(q: &str, vars: &BTreeMap<String, &Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = q;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}').ok_or("unclosed ${")?;
            (b[..end].split(':').next().unwrap_or_default(), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match name {
            "__rate_interval" | "__interval" | "__range" => out.push_str("5m"),
            n if vars.contains_key(n) => out.push('x'),
            n => return Err(format!("${n} is not a variable of the dashboard")),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `{{label}}`s of a legend template.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .map(|(l, _)| l.trim().to_string())
        .collect()
}

#[test]
fn dashboard_is_an_importable_grafana_dashboard() {
    let d = dashboard();
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    let uid = d["uid"].as_str().expect("uid");
    assert!(
        (8..=40).contains(&uid.len())
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "uid {uid}"
    );
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
        "schemaVersion of a current Grafana (11 or later)"
    );
    assert!(d["id"].is_null(), "no instance-specific id in an example");
    assert!(d["time"]["from"].is_string() && d["time"]["to"].is_string());

    // The data source is a variable (works for UI import, the HTTP API and
    // file provisioning alike), and everything uses it.
    let vars = variables(&d);
    let ds = vars.get("DS_PROMETHEUS").expect("variable DS_PROMETHEUS");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for (name, v) in &vars {
        assert!(
            ["datasource", "query"].contains(&v["type"].as_str().unwrap_or_default()),
            "{name}"
        );
        if v["type"] == "query" {
            assert_eq!(v["datasource"]["uid"], DS, "variable {name}");
        }
    }
    for want in ["instance", "listener"] {
        assert!(vars.contains_key(want), "variable {want}");
    }

    let top = d["panels"].as_array().expect("panels");
    assert!(
        is_row(&top[0]),
        "the first panel is a row: every panel is in one"
    );
    let mut ids = BTreeSet::new();
    for p in all_panels(&d) {
        let title = &p["title"];
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("{title}: id"));
        assert!(ids.insert(id), "{title}: id {id} is not unique");
        let g = &p["gridPos"];
        let [h, w, x] = ["h", "w", "x"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(h >= 1 && w >= 1 && x + w <= 24, "{title}: gridPos {g}");
        if is_row(p) {
            assert_eq!((h, w, x), (1, 24, 0), "row {title}");
            assert!(title.as_str().is_some_and(|t| !t.is_empty()));
            continue;
        }
        assert!(
            ["timeseries", "stat", "table", "state-timeline"]
                .contains(&p["type"].as_str().unwrap()),
            "{title}: type {}",
            p["type"]
        );
        assert!(
            title.as_str().is_some_and(|t| !t.is_empty()),
            "panel {id}: title"
        );
        assert!(
            p["description"].as_str().is_some_and(|t| !t.is_empty()),
            "{title}: a description tells the operator what it shows"
        );
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(p["datasource"]["uid"], DS, "{title}");
        assert!(
            p["fieldConfig"]["defaults"]["unit"].is_string(),
            "{title}: fieldConfig.defaults.unit"
        );
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: targets"));
        assert!(!targets.is_empty(), "{title}: targets");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: refId twice"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}: expr"
            );
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"]["uid"], DS, "{title}");
            }
        }
    }

    // In (y, x) order, as Grafana saves them (a row holds the panels below
    // it up to the next row), and no two overlap.
    let pos = |p: &Value| {
        let g = &p["gridPos"];
        ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap())
    };
    for pair in top.windows(2) {
        let ([x0, y0, ..], [x1, y1, ..]) = (pos(&pair[0]), pos(&pair[1]));
        assert!(
            (y0, x0) < (y1, x1),
            "{} before {}",
            pair[0]["title"],
            pair[1]["title"]
        );
    }
    for (i, a) in top.iter().enumerate() {
        for b in &top[i + 1..] {
            let ([ax, ay, aw, ah], [bx, by, bw, bh]) = (pos(a), pos(b));
            let apart = ax + aw <= bx || bx + bw <= ax || ay + ah <= by || by + bh <= ay;
            assert!(apart, "{} overlaps {}", a["title"], b["title"]);
        }
    }
}

#[test]
fn queries_use_only_what_dnlb_exports() {
    let d = dashboard();
    let metrics = catalog();
    let vars = variables(&d);
    let qs = queries(&d);
    assert!(qs.len() > 40, "{} queries", qs.len());
    let mut used = BTreeSet::new();
    for q in &qs {
        let fail = |e: String| -> ! { panic!("{}: {}\n  {}", q.place, e, q.expr) };
        let expr = substitute(&q.expr, &vars).unwrap_or_else(|e| fail(e));
        let parsed = promql::parse(&expr).unwrap_or_else(|e| fail(e));
        let labels = if let Some(label) = &q.label_values {
            // A series query: the selector's metric and labels, any kind.
            let promql::Expr::Selector {
                metric,
                range: false,
                ..
            } = &parsed
            else {
                fail("label_values needs a plain selector".into())
            };
            let m = &metrics
                .get(metric)
                .unwrap_or_else(|| fail(format!("no metric {metric}")));
            if !m.labels.contains(label) && !promql::TARGET_LABELS.contains(&label.as_str()) {
                fail(format!(
                    "{metric} has no label {label} (it has {:?})",
                    m.labels
                ));
            }
            used.insert(metric.clone());
            continue;
        } else {
            match promql::check(&parsed, &metrics).unwrap_or_else(|e| fail(e)) {
                Type::Vector(labels, _) => labels,
                Type::Scalar => BTreeSet::new(),
                t => fail(format!(
                    "a query must give an instant vector or a scalar, not {t:?}"
                )),
            }
        };
        for legend in &q.legends {
            for l in legend_labels(legend) {
                if !labels.contains(&l) {
                    fail(format!(
                        "legend {{{{{l}}}}}: the result has no label {l} (it has {labels:?})"
                    ));
                }
            }
        }
        promql::metrics_of(&parsed, &mut used);
    }
    // Every family is on the dashboard somewhere, or listed as left out.
    let unused: Vec<_> = metrics
        .keys()
        .filter(|m| !used.contains(*m) && !NOT_ON_DASHBOARD.contains(&m.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "metrics on no panel (add one, or list them in NOT_ON_DASHBOARD): {unused:?}"
    );
}

#[test]
fn units_fit_what_the_queries_measure() {
    let d = dashboard();
    let metrics = catalog();
    let vars = variables(&d);
    for p in all_panels(&d) {
        // A table's columns have units of their own (overrides).
        if is_row(p) || p["type"] == "table" {
            continue;
        }
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let expr = substitute(t["expr"].as_str().unwrap(), &vars).unwrap();
            let ty = promql::check(&promql::parse(&expr).unwrap(), &metrics).unwrap();
            if let Type::Vector(_, q) = ty {
                assert!(
                    q.units().contains(&unit),
                    "panel {}: unit {unit}, but {expr} gives {q:?} ({:?})",
                    p["title"],
                    q.units()
                );
            }
        }
    }
}

/// Prometheus's own parser accepts every query (as recording rules:
/// `promtool check rules`).
#[test]
fn promtool_parses_every_query() {
    let d = dashboard();
    let vars = variables(&d);
    let rules: Vec<Value> = queries(&d)
        .iter()
        .enumerate()
        .map(|(i, q)| {
            serde_json::json!({
                "record": format!("dnlb_dashboard:query_{i}"),
                "expr": substitute(&q.expr, &vars).unwrap(),
            })
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dnlb_dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: promtool reads it as a rules file.
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, file.to_string()).unwrap();
    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The checker itself catches the mistakes it is there for.
#[test]
fn checker_refuses_wrong_queries() {
    let metrics = catalog();
    let check = |q: &str| promql::parse(q).and_then(|e| promql::check(&e, &metrics));
    for ok in [
        "sum by (listener) (rate(dnlb_listener_packets_total{listener=~\"x\"}[5m]))",
        "sum by (instance) (dnlb_flow_table_entries) / sum by (instance) (dnlb_flow_table_capacity)",
        "sum(increase(dnlb_reloads_total{result=\"rejected\"}[5m]))",
        "count(dnlb_bird_up == 0) or vector(0)",
    ] {
        check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, why) in [
        ("rate(dnlb_listener_sent_packets_total[5m])", "not a metric dnlb exports"),
        ("dnlb_listener_packets_total", "without rate()"),
        ("sum(dnlb_backend_bytes_total)", "without rate()"),
        ("rate(dnlb_flow_table_entries[5m])", "of gauge"),
        ("max_over_time(dnlb_reloads_total[5m])", "of counter"),
        ("sum by (lcore) (rate(dnlb_listener_packets_total[5m]))", "no label lcore"),
        ("rate(dnlb_backend_packets_total{worker=\"1\"}[5m])", "no label worker"),
        ("rate(dnlb_dropped_packets_total{reason=\"no_such\"}[5m])", "never writes"),
        ("rate(dnlb_dropped_packets_total{reason=~\"acl_denied|nope\"}[5m])", "never writes"),
        (
            "sum by (listener) (rate(dnlb_listener_packets_total[5m])) / sum(rate(dnlb_listener_packets_total[5m]))",
            "one to one",
        ),
        (
            "sum by (zone) (sum by (backend) (dnlb_backend_healthy))",
            "no label zone",
        ),
        ("histogram_quantile(0.9, dnlb_uptime_seconds)", "not supported"),
    ] {
        match check(bad) {
            Ok(t) => panic!("{bad} passed as {t:?}"),
            Err(e) => assert!(e.contains(why), "{bad}: {e}"),
        }
    }
    let legend = legend_labels("{{instance}} lcore {{ lcore }}");
    assert_eq!(legend, ["instance", "lcore"]);
}
