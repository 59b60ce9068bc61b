//! `[routing]`.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::error::Collector;
use crate::model::Routing;
use crate::raw::RawRouting;

fn path(c: &Collector<'_>, s: &Spanned<String>) -> PathBuf {
    let p = PathBuf::from(s.get_ref());
    if p.is_absolute() {
        p
    } else {
        c.file()
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(p)
    }
}

pub(super) fn routing(c: &mut Collector<'_>, r: &RawRouting, span: Range<usize>) -> Routing {
    for (k, v) in [
        ("bird_socket", Some(&r.bird_socket)),
        ("vips4_file", r.vips4_file.as_ref()),
        ("vips6_file", r.vips6_file.as_ref()),
    ] {
        if let Some(v) = v {
            if v.get_ref().is_empty() {
                c.push(Some(v.span()), format!("routing.{k}"), "give a path");
            }
        }
    }
    if r.vips4_file.is_none() && r.vips6_file.is_none() {
        c.push(
            Some(span),
            "routing",
            "give vips4_file and/or vips6_file: the files BIRD includes in a static protocol",
        );
    }
    if let (Some(a), Some(b)) = (&r.vips4_file, &r.vips6_file) {
        if path(c, a) == path(c, b) {
            c.push(
                Some(b.span()),
                "routing.vips6_file",
                "must differ from vips4_file (each goes into a static protocol of its own family)",
            );
        }
    }
    let delay = match &r.withdraw_delay_ms {
        None => 2000,
        Some(d) if *d.get_ref() > 600_000 => {
            c.push(
                Some(d.span()),
                "routing.withdraw_delay_ms",
                "must be between 0 and 600000",
            );
            2000
        }
        Some(d) => *d.get_ref(),
    };
    Routing {
        bird_socket: path(c, &r.bird_socket),
        vips4_file: r.vips4_file.as_ref().map(|f| path(c, f)),
        vips6_file: r.vips6_file.as_ref().map(|f| path(c, f)),
        withdraw_delay: Duration::from_millis(delay.into()),
    }
}
