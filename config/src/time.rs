//! TOML offset date-times ⇄ `SystemTime` (proleptic Gregorian calendar,
//! the civil-from-days algorithm of H. Hinnant's date library).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use toml::value::{Date, Datetime, Offset, Time};

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// The instant a TOML date-time names, if it names one: it needs a date, a
/// time and an offset (`Z` or `±hh:mm`), and must not be before 1970.
pub fn to_system_time(dt: &Datetime) -> Option<SystemTime> {
    let (date, time, offset) = (dt.date?, dt.time?, dt.offset?);
    let days = days_from_civil(
        i64::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    );
    let offset_secs = match offset {
        Offset::Z => 0,
        Offset::Custom { minutes } => i64::from(minutes) * 60,
    };
    let secs = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, time.nanosecond))
}

/// `t` as a UTC TOML date-time (whole seconds).
pub fn from_system_time(t: SystemTime) -> Datetime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    Datetime {
        date: Some(Date {
            year: y as u16,
            month: m as u8,
            day: d as u8,
        }),
        time: Some(Time {
            hour: (s / 3600) as u8,
            minute: (s % 3600 / 60) as u8,
            second: (s % 60) as u8,
            nanosecond: 0,
        }),
        offset: Some(Offset::Z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Datetime {
        s.parse().unwrap()
    }

    #[test]
    fn known_instants() {
        let secs = |s: &str| {
            to_system_time(&dt(s))
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(secs("1970-01-01T00:00:00Z"), 0);
        assert_eq!(secs("2000-03-01T00:00:00Z"), 951_868_800);
        assert_eq!(secs("2026-11-24T08:00:00Z"), 1_795_507_200);
        assert_eq!(secs("2026-11-24T09:30:00+01:30"), 1_795_507_200);
        assert_eq!(secs("2024-02-29T23:59:59-00:00"), 1_709_251_199);
    }

    #[test]
    fn needs_a_full_offset_date_time() {
        for s in [
            "2026-11-24",
            "08:00:00",
            "2026-11-24T08:00:00",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(to_system_time(&dt(s)), None, "{s}");
        }
    }

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        for day in (0..146_097 * 2).step_by(13) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 3_723);
            let d = from_system_time(t);
            assert_eq!(to_system_time(&d), Some(t), "{d}");
            assert_eq!(d.to_string().parse::<Datetime>().unwrap(), d);
        }
    }
}
