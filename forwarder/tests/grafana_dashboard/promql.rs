//! A small PromQL parser and checker for the dashboard's queries: enough of
//! the language for what a dashboard over dnlb's metrics needs (selectors,
//! range selectors, functions, aggregations with `by`/`without`, binary
//! operators with `on`/`ignoring`/`group_left`/`group_right`), and an error
//! for anything else, so a query the checker cannot follow fails the test
//! instead of passing unchecked. The syntax itself is also checked by
//! Prometheus's own parser (`promtool check rules`, in `main.rs`); this one is
//! here to follow metric names, kinds and labels through an expression.

use std::collections::{BTreeMap, BTreeSet};

/// What the checker knows of one exported metric.
#[derive(Debug, Default)]
pub struct Metric {
    /// Whether it is a counter (else a gauge).
    pub counter: bool,
    /// The labels its samples carry.
    pub labels: BTreeSet<String>,
    /// The values seen per label (in the rendered fixture).
    pub values: BTreeMap<String, BTreeSet<String>>,
}

/// Labels Prometheus adds to every scraped series.
pub const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// Labels whose values come from a fixed set in dnlb (drop reasons, reload
/// results, host classes, limit scopes, ACL actions): a matcher on them
/// must name values dnlb writes.
const ENUMERATED: [&str; 5] = ["reason", "result", "class", "scope", "action"];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// A number or a duration (`5m`, `1.5`, `1e3`).
    Num(String),
    Punct(&'static str),
}

const PUNCT: [&str; 23] = [
    "=~", "!~", "!=", "==", "<=", ">=", "(", ")", "{", "}", "[", "]", ",", ":", "=", "<", ">", "+",
    "-", "*", "/", "%", "^",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    'next: while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let mut v = String::new();
            let mut j = i + 1;
            while j < b.len() && b[j] as char != c {
                if b[j] == b'\\' && c != '`' {
                    j += 1;
                }
                if j < b.len() {
                    v.push(b[j] as char);
                }
                j += 1;
            }
            if j >= b.len() {
                return Err(format!("unterminated string at {i}"));
            }
            out.push(Tok::Str(v));
            i = j + 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let j = (i..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'.'))
                .unwrap_or(b.len());
            out.push(Tok::Num(s[i..j].to_string()));
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let j = (i..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b':'))
                .unwrap_or(b.len());
            out.push(Tok::Ident(s[i..j].to_string()));
            i = j;
            continue;
        }
        for p in PUNCT {
            if s[i..].starts_with(p) {
                out.push(Tok::Punct(p));
                i += p.len();
                continue 'next;
            }
        }
        return Err(format!("unexpected {c:?} at {i}"));
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug)]
pub enum Expr {
    Num,
    Str(String),
    Selector {
        metric: String,
        matchers: Vec<(String, &'static str, String)>,
        range: bool,
    },
    Call {
        func: String,
        args: Vec<Expr>,
    },
    Agg {
        op: String,
        /// `(without, labels)`.
        grouping: Option<(bool, Vec<String>)>,
        param: Option<Box<Expr>>,
        arg: Box<Expr>,
    },
    Binary {
        op: &'static str,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        matching: Option<Matching>,
    },
    Neg(Box<Expr>),
}

/// `on (..)` / `ignoring (..)` and `group_left (..)` / `group_right (..)`.
#[derive(Debug)]
pub struct Matching {
    on: bool,
    labels: Vec<String>,
    group: Option<(bool, Vec<String>)>,
}

const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Binary operators with their precedence (higher binds tighter).
const BINARY: [(&str, u8); 15] = [
    ("or", 1),
    ("and", 2),
    ("unless", 2),
    ("==", 3),
    ("!=", 3),
    ("<=", 3),
    ("<", 3),
    (">=", 3),
    (">", 3),
    ("+", 4),
    ("-", 4),
    ("*", 5),
    ("/", 5),
    ("%", 5),
    ("^", 6),
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let t = self.toks.get(self.pos).cloned().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(t)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_ident(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(q)) if q == w)
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        match self.next()? {
            Tok::Punct(q) if q == p => Ok(()),
            t => Err(format!("expected {p:?}, found {t:?}")),
        }
    }

    /// `( a, b, ... )`: label names.
    fn labels(&mut self) -> Result<Vec<String>, String> {
        self.expect("(")?;
        let mut out = Vec::new();
        while !self.is(")") {
            match self.next()? {
                Tok::Ident(l) => out.push(l),
                t => return Err(format!("expected a label name, found {t:?}")),
            }
            if !self.is(")") {
                self.expect(",")?;
            }
        }
        self.expect(")")?;
        Ok(out)
    }

    fn binary_op(&self) -> Option<(&'static str, u8)> {
        let t = self.peek()?;
        BINARY.iter().copied().find(|(op, _)| match t {
            Tok::Punct(p) => p == op,
            Tok::Ident(w) => w == op,
            _ => false,
        })
    }

    fn expr(&mut self, min: u8) -> Result<Expr, String> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binary_op() {
            if prec < min {
                break;
            }
            self.pos += 1;
            if self.is_ident("bool") {
                self.pos += 1;
            }
            let mut matching = None;
            if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.pos += 1;
                let labels = self.labels()?;
                let mut group = None;
                if self.is_ident("group_left") || self.is_ident("group_right") {
                    let left = self.is_ident("group_left");
                    self.pos += 1;
                    let extra = if self.is("(") {
                        self.labels()?
                    } else {
                        Vec::new()
                    };
                    group = Some((left, extra));
                }
                matching = Some(Matching { on, labels, group });
            }
            // `^` is right-associative, the others left.
            let rhs = self.expr(if op == "^" { prec } else { prec + 1 })?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.is("-") || self.is("+") {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        let e = self.primary()?;
        if self.is_ident("offset") || self.is("@") {
            return Err("offset and @ are not supported by this checker".into());
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next()? {
            Tok::Num(_) => Ok(Expr::Num),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Punct("(") => {
                let e = self.expr(0)?;
                self.expect(")")?;
                if self.is("[") {
                    return Err("subqueries are not supported by this checker".into());
                }
                Ok(e)
            }
            Tok::Ident(w) if AGGREGATIONS.contains(&w.as_str()) => self.aggregation(w),
            Tok::Ident(w) if self.is("(") => {
                self.pos += 1;
                let mut args = Vec::new();
                while !self.is(")") {
                    args.push(self.expr(0)?);
                    if !self.is(")") {
                        self.expect(",")?;
                    }
                }
                self.expect(")")?;
                Ok(Expr::Call { func: w, args })
            }
            Tok::Ident(metric) => self.selector(metric),
            t => Err(format!("unexpected {t:?}")),
        }
    }

    fn aggregation(&mut self, op: String) -> Result<Expr, String> {
        let mut grouping = self.grouping()?;
        self.expect("(")?;
        let first = self.expr(0)?;
        let (param, arg) = if self.is(",") {
            self.pos += 1;
            (Some(Box::new(first)), self.expr(0)?)
        } else {
            (None, first)
        };
        self.expect(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(Expr::Agg {
            op,
            grouping,
            param,
            arg: Box::new(arg),
        })
    }

    fn grouping(&mut self) -> Result<Option<(bool, Vec<String>)>, String> {
        if self.is_ident("by") || self.is_ident("without") {
            let without = self.is_ident("without");
            self.pos += 1;
            return Ok(Some((without, self.labels()?)));
        }
        Ok(None)
    }

    fn selector(&mut self, metric: String) -> Result<Expr, String> {
        let mut matchers = Vec::new();
        if self.is("{") {
            self.pos += 1;
            while !self.is("}") {
                let label = match self.next()? {
                    Tok::Ident(l) => l,
                    t => {
                        return Err(format!(
                            "expected a label name in {metric}{{}}, found {t:?}"
                        ))
                    }
                };
                let op = match self.next()? {
                    Tok::Punct(p @ ("=" | "!=" | "=~" | "!~")) => p,
                    t => return Err(format!("expected a matcher after {label}, found {t:?}")),
                };
                let value = match self.next()? {
                    Tok::Str(v) => v,
                    t => return Err(format!("expected a string after {label}{op}, found {t:?}")),
                };
                matchers.push((label, op, value));
                if !self.is("}") {
                    self.expect(",")?;
                }
            }
            self.expect("}")?;
        }
        let mut range = false;
        if self.is("[") {
            self.pos += 1;
            match self.next()? {
                Tok::Num(_) => {}
                t => return Err(format!("expected a duration in {metric}[], found {t:?}")),
            }
            if self.is(":") {
                return Err("subqueries are not supported by this checker".into());
            }
            self.expect("]")?;
            range = true;
        }
        Ok(Expr::Selector {
            metric,
            matchers,
            range,
        })
    }
}

/// Parses one PromQL expression (Grafana's variables already replaced).
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let e = p.expr(0)?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(format!("unexpected {t:?} after the expression")),
    }
}

/// The metrics `e` reads.
pub fn metrics_of(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Num | Expr::Str(_) => {}
        Expr::Selector { metric, .. } => {
            out.insert(metric.clone());
        }
        Expr::Call { args, .. } => args.iter().for_each(|a| metrics_of(a, out)),
        Expr::Agg { param, arg, .. } => {
            param.iter().for_each(|p| metrics_of(p, out));
            metrics_of(arg, out);
        }
        Expr::Binary { lhs, rhs, .. } => {
            metrics_of(lhs, out);
            metrics_of(rhs, out);
        }
        Expr::Neg(e) => metrics_of(e, out),
    }
}

/// What an expression evaluates to, as far as the checks need it.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Scalar,
    String,
    /// An instant vector whose series carry (at most) these labels, and
    /// what its values measure.
    Vector(BTreeSet<String>, Quantity),
    /// A range vector of `metric`.
    Matrix(BTreeSet<String>, String),
}

/// What a value measures, to check a panel's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Bytes per second (`rate` of a `_bytes_total` counter).
    BytesPerSec,
    /// Packets per second (`rate` of a `_packets_total` counter).
    PacketsPerSec,
    /// Events per second (`rate` of another counter: flows, messages).
    EventsPerSec,
    /// A share of time (`rate` of a `_seconds_total` counter) or a ratio of
    /// two like quantities.
    Ratio,
    /// A duration in seconds (a `_seconds` gauge).
    Seconds,
    /// A count: a gauge, a `count()`, an `increase()`.
    Count,
}

impl Quantity {
    /// The Grafana units that fit.
    pub fn units(self) -> &'static [&'static str] {
        match self {
            Quantity::BytesPerSec => &["Bps", "binBps"],
            Quantity::PacketsPerSec => &["pps"],
            Quantity::EventsPerSec => &["pps", "cps", "ops"],
            Quantity::Ratio => &["percentunit"],
            Quantity::Seconds => &["s", "dtdurations"],
            Quantity::Count => &["none", "short", "cps"],
        }
    }
}

/// Checks `e` against dnlb's metrics and returns its type.
pub fn check(e: &Expr, metrics: &BTreeMap<String, Metric>) -> Result<Type, String> {
    match e {
        Expr::Num => Ok(Type::Scalar),
        Expr::Str(_) => Ok(Type::String),
        Expr::Neg(e) => check(e, metrics),
        Expr::Selector { metric, range, .. } => {
            let (m, labels) = selector(e, metrics)?;
            if *range {
                return Ok(Type::Matrix(labels, metric.clone()));
            }
            if m.counter {
                return Err(format!(
                    "counter {metric} used without rate(), irate() or increase()"
                ));
            }
            let q = if metric.ends_with("_seconds") {
                Quantity::Seconds
            } else {
                Quantity::Count
            };
            Ok(Type::Vector(labels, q))
        }
        Expr::Call { func, args } => call(func, args, metrics),
        Expr::Agg {
            op,
            grouping,
            param,
            arg,
        } => {
            if let Some(p) = param {
                check(p, metrics)?;
            }
            let Type::Vector(labels, q) = check(arg, metrics)? else {
                return Err(format!("{op}() of something that is not an instant vector"));
            };
            let q = if op == "count" || op == "count_values" || op == "group" {
                Quantity::Count
            } else {
                q
            };
            let mut out = match grouping {
                None => BTreeSet::new(),
                Some((without, by)) => {
                    for l in by {
                        if !labels.contains(l) {
                            return Err(format!(
                                "{op} {} ({l}): the expression it aggregates has no label {l} (it has {labels:?})",
                                if *without { "without" } else { "by" }
                            ));
                        }
                    }
                    if *without {
                        labels.iter().filter(|l| !by.contains(l)).cloned().collect()
                    } else {
                        by.iter().cloned().collect()
                    }
                }
            };
            if op == "topk" || op == "bottomk" {
                out = labels;
            }
            Ok(Type::Vector(out, q))
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            matching,
        } => binary(op, check(lhs, metrics)?, check(rhs, metrics)?, matching),
    }
}

/// A selector's metric and the labels its series carry; its matchers name
/// labels the metric has, with values dnlb writes for enumerated labels.
fn selector<'m>(
    e: &Expr,
    metrics: &'m BTreeMap<String, Metric>,
) -> Result<(&'m Metric, BTreeSet<String>), String> {
    let Expr::Selector {
        metric, matchers, ..
    } = e
    else {
        return Err("expected a metric selector".into());
    };
    let m = metrics.get(metric).ok_or_else(|| {
        format!("{metric} is not a metric dnlb exports (see control::metrics::families())")
    })?;
    let mut labels = m.labels.clone();
    labels.extend(TARGET_LABELS.iter().map(|l| l.to_string()));
    for (label, op, value) in matchers {
        if !labels.contains(label) {
            return Err(format!("{metric} has no label {label} (it has {labels:?})"));
        }
        if !ENUMERATED.contains(&label.as_str()) || value.contains('$') {
            continue;
        }
        let known = &m.values[label];
        let named: Vec<&str> = if op.ends_with('~') {
            if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|')
            {
                return Err(format!(
                    "{metric}{{{label}{op}\"{value}\"}}: write the values as a|b|c for the check"
                ));
            }
            value.split('|').collect()
        } else {
            vec![value.as_str()]
        };
        for v in named {
            if !known.contains(v) {
                return Err(format!(
                    "{metric}{{{label}{op}\"{value}\"}}: dnlb never writes {label}=\"{v}\" (it writes {known:?})"
                ));
            }
        }
    }
    Ok((m, labels))
}

/// Checks a function call's arguments; the type of its result.
fn call(func: &str, args: &[Expr], metrics: &BTreeMap<String, Metric>) -> Result<Type, String> {
    let types = args
        .iter()
        .map(|a| check(a, metrics))
        .collect::<Result<Vec<_>, _>>()?;
    let counter = |m: &str| metrics.get(m).is_some_and(|m| m.counter);
    match (func, types.as_slice()) {
        ("rate" | "irate" | "increase", [Type::Matrix(labels, m)]) => {
            if !counter(m) {
                return Err(format!(
                    "{func}() of gauge {m}: rate(), irate() and increase() are for counters"
                ));
            }
            let q = if func == "increase" {
                Quantity::Count
            } else if m.ends_with("_bytes_total") {
                Quantity::BytesPerSec
            } else if m.ends_with("_packets_total") {
                Quantity::PacketsPerSec
            } else if m.ends_with("_seconds_total") {
                Quantity::Ratio
            } else {
                Quantity::EventsPerSec
            };
            Ok(Type::Vector(labels.clone(), q))
        }
        (
            "changes" | "delta" | "idelta" | "deriv" | "avg_over_time" | "min_over_time"
            | "max_over_time" | "last_over_time",
            [Type::Matrix(labels, m)],
        ) => {
            if counter(m) {
                return Err(format!(
                    "{func}() of counter {m}: use rate(), irate() or increase()"
                ));
            }
            let q = if func != "changes" && m.ends_with("_seconds") {
                Quantity::Seconds
            } else {
                Quantity::Count
            };
            Ok(Type::Vector(labels.clone(), q))
        }
        (
            "abs" | "ceil" | "floor" | "round" | "sqrt" | "clamp" | "clamp_min" | "clamp_max"
            | "sort" | "sort_desc",
            [Type::Vector(labels, q), rest @ ..],
        ) if rest.iter().all(|t| *t == Type::Scalar) => Ok(Type::Vector(labels.clone(), *q)),
        ("vector", [Type::Scalar]) => Ok(Type::Vector(BTreeSet::new(), Quantity::Count)),
        ("scalar", [Type::Vector(..)]) | ("time", []) => Ok(Type::Scalar),
        (
            "label_replace",
            [Type::Vector(labels, q), Type::String, Type::String, Type::String, Type::String],
        ) => {
            let (Expr::Str(dst), Expr::Str(src)) = (&args[1], &args[3]) else {
                unreachable!()
            };
            if !src.is_empty() && !labels.contains(src) {
                return Err(format!(
                    "label_replace from {src}: no such label in {labels:?}"
                ));
            }
            let mut labels = labels.clone();
            labels.insert(dst.clone());
            Ok(Type::Vector(labels, *q))
        }
        _ => Err(format!(
            "{func}() with arguments {types:?} is not supported by this checker (or is wrong)"
        )),
    }
}

/// Checks a binary operation's operands and vector matching; its type.
fn binary(op: &str, l: Type, r: Type, m: &Option<Matching>) -> Result<Type, String> {
    let (ll, lq, rl, rq) = match (l, r) {
        (Type::Scalar, Type::Scalar) => return Ok(Type::Scalar),
        (Type::Vector(labels, q), Type::Scalar) | (Type::Scalar, Type::Vector(labels, q)) => {
            if m.is_some() {
                return Err(format!("on/ignoring with a scalar operand of {op}"));
            }
            return Ok(Type::Vector(labels, q));
        }
        (Type::Vector(ll, lq), Type::Vector(rl, rq)) => (ll, lq, rl, rq),
        (l, r) => return Err(format!("{op} between {l:?} and {r:?}")),
    };
    // The quantity: a ratio of like quantities, else the left one.
    let q = if op == "/" && lq == rq {
        Quantity::Ratio
    } else {
        lq
    };
    let Some(m) = m else {
        if matches!(op, "and" | "or" | "unless") {
            let labels = if op == "or" {
                ll.intersection(&rl).cloned().collect()
            } else {
                ll
            };
            return Ok(Type::Vector(labels, q));
        }
        if ll != rl {
            return Err(format!(
                "{op} matches series one to one on all their labels, but the sides carry {ll:?} and {rl:?}: aggregate them alike or use on()/ignoring()"
            ));
        }
        return Ok(Type::Vector(ll, q));
    };
    for l in &m.labels {
        if m.on && !(ll.contains(l) && rl.contains(l)) {
            return Err(format!(
                "on ({l}): both sides of {op} must carry {l} ({ll:?} / {rl:?})"
            ));
        }
    }
    let drop = |s: &BTreeSet<String>| -> BTreeSet<String> {
        s.iter()
            .filter(|l| m.on == m.labels.contains(l))
            .cloned()
            .collect()
    };
    let labels = match &m.group {
        None => {
            if matches!(op, "and" | "or" | "unless") {
                ll
            } else {
                drop(&ll)
            }
        }
        Some((left, extra)) => {
            let (many, one) = if *left { (&ll, &rl) } else { (&rl, &ll) };
            for l in extra {
                if !one.contains(l) {
                    return Err(format!("group_x ({l}): the \"one\" side has no label {l}"));
                }
            }
            many.iter().chain(extra).cloned().collect()
        }
    };
    Ok(Type::Vector(labels, q))
}
