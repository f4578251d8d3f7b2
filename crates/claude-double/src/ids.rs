//! The ids and timestamps the lines carry: random UUIDs, `req_double_<12 hex>` request
//! ids, RFC 3339 UTC timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn uuid4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `2026-11-27T00:48:15.576Z`, computed by hand (no chrono here).
pub(crate) fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

pub(crate) fn request_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("req_double_{}", &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && &ts[10..11] == "T", "{ts}");
        assert!(ts.as_str() > "2024-01-01T00:00:00.000Z", "{ts}");
    }
}
