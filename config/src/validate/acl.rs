//! `[listener.acl]`: prefixes parsed and checked into a [`Acl`].

use std::collections::HashMap;
use std::net::IpAddr;

use toml::Spanned;

use crate::error::Collector;
use crate::model::{Acl, AclAction, Cidr};
use crate::raw::RawAcl;

/// Most prefixes one list may have (the hot path indexes rules by `u16`).
pub const MAX_ACL_RULES: usize = dnlb_lb::acl::MAX_RULES;

/// Parses `"A/L"` or a bare address; the address must have no bits set past
/// the prefix (`10.1.2.3/8` is a mistake, not `10.0.0.0/8`).
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.trim().parse().map_err(|_| {
        format!("{s:?} is not an address or prefix, e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"")
    })?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => bits,
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= bits)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {bits}"))?,
    };
    if let IpAddr::V6(v6) = addr {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!(
                "{s:?} is an IPv4-mapped IPv6 prefix: write the IPv4 prefix instead"
            ));
        }
    }
    let value = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let host = u32::from(bits - len);
    let host_bits = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    };
    if value & host_bits != 0 {
        let first = value & !host_bits;
        let first = match addr {
            IpAddr::V4(_) => IpAddr::from((first as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(first.to_be_bytes()),
        };
        return Err(format!(
            "{s:?} has bits set past its /{len}: did you mean \"{first}/{len}\"?"
        ));
    }
    Ok(Cidr { addr, len })
}

pub(super) fn acl(c: &mut Collector<'_>, a: &RawAcl, key: &str) -> Acl {
    let default = match &a.default {
        None => AclAction::Allow,
        Some(d) => match d.get_ref().as_str() {
            "allow" => AclAction::Allow,
            "deny" => AclAction::Deny,
            other => {
                c.push(
                    Some(d.span()),
                    format!("{key}.default"),
                    format!("{other:?} is not one of \"allow\", \"deny\""),
                );
                AclAction::Allow
            }
        },
    };
    let mut rules = Vec::new();
    let mut seen: HashMap<Cidr, &str> = HashMap::new();
    let lists: [(&str, &Vec<Spanned<String>>, AclAction); 2] = [
        ("allow", &a.allow, AclAction::Allow),
        ("deny", &a.deny, AclAction::Deny),
    ];
    for (name, list, action) in lists {
        for (i, p) in list.iter().enumerate() {
            let k = format!("{key}.{name}[{i}]");
            match parse_cidr(p.get_ref()) {
                Ok(cidr) => {
                    if let Some(other) = seen.insert(cidr, name) {
                        c.push(
                            Some(p.span()),
                            k,
                            format!("{cidr} is already in {key}.{other}"),
                        );
                    } else {
                        rules.push((cidr, action));
                    }
                }
                Err(e) => c.push(Some(p.span()), k, e),
            }
        }
    }
    if rules.len() > MAX_ACL_RULES {
        c.push(
            None,
            key.to_string(),
            format!("{} prefixes; at most {MAX_ACL_RULES}", rules.len()),
        );
        rules.truncate(MAX_ACL_RULES);
    }
    Acl { default, rules }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_mistakes_are_named() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(
            parse_cidr("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(parse_cidr("::/0").unwrap().to_string(), "::/0");
        assert_eq!(
            parse_cidr("10.1.2.3/8").unwrap_err(),
            "\"10.1.2.3/8\" has bits set past its /8: did you mean \"10.0.0.0/8\"?"
        );
        assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(parse_cidr("::ffff:10.0.0.0/104")
            .unwrap_err()
            .contains("IPv4-mapped"));
        assert!(parse_cidr("example.com/8")
            .unwrap_err()
            .contains("not an address"));
    }
}
