//! Wall-clock timestamps as RFC 3339 UTC strings, without a date-time dependency.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as `2026-11-27T01:02:03.456Z`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Formats a point in time as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    thread_local! {
        /// The last second formatted on this thread, and its text up to the seconds:
        /// every event is stamped, and a busy turn records thousands a second.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(at, prefix)| {
        if *at != secs {
            *at = secs;
            *prefix = up_to_seconds(secs);
        }
        let millis = since.subsec_millis();
        let mut text = String::with_capacity(prefix.len() + 5);
        text.push_str(prefix);
        text.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            text.push(char::from(b'0' + digit as u8));
        }
        text.push('Z');
        text
    })
}

/// `2026-11-27T01:02:03`: the date and time of `secs` since the epoch, to the second.
fn up_to_seconds(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_741_323_456);
        assert_eq!(rfc3339(t), "2026-11-27T01:02:03.456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
        // The same second again (its text is reused), then another millisecond of it.
        assert_eq!(
            rfc3339(leap + Duration::from_millis(7)),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(rfc3339(t), "2026-11-27T01:02:03.456Z");
    }
}
