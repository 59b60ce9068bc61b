//! Checks of single fields shared by the sections' validators: one of a
//! set of names, a number in a range, an address, a MAC, a key that only
//! some kinds take.

use std::ops::Range;

use toml::Spanned;

use super::opt;

use crate::error::Collector;

pub(super) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

pub(super) fn choice<T: Copy>(
    c: &mut Collector<'_>,
    v: &Option<Spanned<String>>,
    key: &str,
    options: &[(&str, T)],
    default: T,
) -> T {
    let Some(s) = v else { return default };
    match options.iter().find(|(n, _)| *n == s.get_ref()) {
        Some((_, t)) => *t,
        None => {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
            c.push(
                Some(s.span()),
                key,
                format!("{:?} is not one of {}", s.get_ref(), names.join(", ")),
            );
            default
        }
    }
}

pub(super) fn in_range<T: Copy + PartialOrd + std::fmt::Display>(
    c: &mut Collector<'_>,
    v: &Option<Spanned<T>>,
    key: &str,
    lo: T,
    hi: T,
    default: T,
) -> T {
    match v {
        Some(s) if *s.get_ref() < lo || *s.get_ref() > hi => {
            c.push(
                Some(s.span()),
                key,
                format!("must be between {lo} and {hi}"),
            );
            default
        }
        _ => opt(v, default),
    }
}

pub(super) fn addr<T: std::str::FromStr>(
    c: &mut Collector<'_>,
    s: &Spanned<String>,
    key: String,
    what: &str,
) -> Option<T> {
    match s.get_ref().parse::<T>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.push(
                Some(s.span()),
                key,
                format!("{:?} is not {what}", s.get_ref()),
            );
            None
        }
    }
}

/// Reports `key` (given at `span`) when `setting` is `actual` rather than one
/// of `allowed`: a parameter that only some kinds take.
pub(super) fn only_for(
    c: &mut Collector<'_>,
    span: Option<Range<usize>>,
    key: String,
    setting: &str,
    allowed: &[&str],
    actual: &str,
) {
    if let Some(span) = span {
        if !allowed.contains(&actual) {
            let names: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            c.push(
                Some(span),
                key,
                format!(
                    "only for {setting} = {}, not {actual:?}",
                    names.join(" or ")
                ),
            );
        }
    }
}
