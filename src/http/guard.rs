//! Who may use the HTTP listener: the checks every request passes before it is routed
//! (MCP, the plain methods over HTTP and the WebSocket upgrade, `/healthz` alike).
//!
//! - An `Origin` that is not a loopback origin (`http://127.0.0.1:*`,
//!   `http://localhost:*`, `http://[::1]:*`, or https) is refused with 403: the MCP
//!   specification's rule against DNS rebinding, where a web page that had its name
//!   pointed at 127.0.0.1 would otherwise reach the agent from the user's browser.
//!   Browsers send `Origin` on every cross-site request, every POST and every WebSocket
//!   upgrade; other clients (SDKs, curl) send none and pass.
//! - On a loopback address, a `Host` that is not a loopback name is refused with 403 too:
//!   a rebound page's same-origin GET carries no `Origin`, but its `Host` is the page's name.
//! - When there is a token (by default always, see [`super::token`]), a request without
//!   `Authorization: Bearer <token>` is refused with 401.
//! - Headers are read strictly first (400 otherwise): exactly one `Host` and at most one
//!   `Origin`, each a plain authority with no userinfo and a port that is a port. A
//!   lenient reading let `Host: evil.com@127.0.0.1:PORT` pass as loopback, and a second
//!   `Origin` after a loopback one go unchecked.

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, Uri};

use super::HttpError;
use crate::config::Secret;

/// What a request must satisfy.
#[derive(Clone)]
pub(crate) struct Policy {
    /// Bound to a loopback address: `Host` must name this machine's loopback.
    pub(crate) loopback: bool,
    /// Required as a bearer token, when set.
    pub(crate) token: Option<Secret>,
}

impl Policy {
    /// Checks one request's headers; the error says why it is refused.
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HttpError> {
        if let Some(origin) = single(headers, ORIGIN)?
            && !is_loopback_origin(&origin)
        {
            return Err(HttpError::ForeignOrigin(origin));
        }
        let host = single(headers, HOST)?.or_else(|| uri.authority().map(ToString::to_string));
        if let Some(host) = &host
            && strict_authority(host).is_none()
        {
            return Err(HttpError::BadHeader(format!(
                "Host {host:?} is not a host[:port]"
            )));
        }
        if self.loopback
            && let Some(host) = host
            && !authority_is_loopback(&host)
        {
            return Err(HttpError::ForeignHost(host));
        }
        match &self.token {
            Some(token) if !bearer_matches(headers, token) => Err(HttpError::Unauthorized),
            _ => Ok(()),
        }
    }
}

/// The one value of `name`, as text; `None` when absent; an error when it comes twice
/// (only the first would have been checked) or is not text.
fn single(headers: &HeaderMap, name: HeaderName) -> Result<Option<String>, HttpError> {
    let mut values = headers.get_all(&name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HttpError::BadHeader(format!("more than one {name} header")));
    }
    match first.to_str() {
        Ok(text) => Ok(Some(text.to_string())),
        Err(_) => Err(HttpError::BadHeader(format!("{name} is not text"))),
    }
}

/// `authority` as `host[:port]` and nothing more: no userinfo (`evil.com@127.0.0.1`
/// names 127.0.0.1 to a parser, evil.com to a reader), a port in 1..=65535.
fn strict_authority(authority: &str) -> Option<Authority> {
    if authority.contains(['@', '/', '?', '#']) {
        return None;
    }
    let parsed = authority.parse::<Authority>().ok()?;
    // `Authority` takes any digits as a port; a port is 1..=65535.
    let bracketed = parsed.host().ends_with(']');
    let has_port = match bracketed {
        true => authority.contains("]:"),
        false => authority.contains(':'),
    };
    match (has_port, parsed.port_u16()) {
        (true, Some(0) | None) => None,
        _ => Some(parsed),
    }
}

/// `http://` or `https://` and a loopback authority, nothing else (an origin has no path).
fn is_loopback_origin(origin: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(authority_is_loopback)
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port, strictly read.
fn authority_is_loopback(authority: &str) -> bool {
    let Some(authority) = strict_authority(authority) else {
        return false;
    };
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant
/// time so the comparison does not tell how much of a guess was right.
fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    let given = value[scheme.len()..].trim_ascii();
    let expected = token.expose().as_bytes();
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn policy(loopback: bool, token: Option<&str>) -> Policy {
        Policy {
            loopback,
            token: token.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn loopback_origins_pass_and_every_other_origin_is_refused() {
        let uri = Uri::from_static("/mcp");
        let open = policy(true, None);
        for origin in [
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:9",
            "https://127.0.0.2:443",
        ] {
            let h = headers(&[("origin", origin), ("host", "127.0.0.1:1")]);
            assert_eq!(open.check(&uri, &h), Ok(()), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "http://localhost.evil.example:80",
            "null",
            "file://",
            "http://127.0.0.1.nip.io",
            "http://user@localhost",
            "ws://localhost:1",
            "http://10.0.0.1:80",
        ] {
            let h = headers(&[("origin", origin), ("host", "127.0.0.1:1")]);
            assert!(
                matches!(open.check(&uri, &h), Err(HttpError::ForeignOrigin(_))),
                "{origin}"
            );
        }
    }

    #[test]
    fn hosts_and_origins_are_read_strictly() {
        let uri = Uri::from_static("/rpc");
        let open = policy(true, None);
        let bad = |h: &HeaderMap| matches!(open.check(&uri, h), Err(HttpError::BadHeader(_)));
        // Userinfo names 127.0.0.1 to a parser and evil.com to a reader.
        assert!(bad(&headers(&[("host", "evil.com@127.0.0.1:8080")])));
        for host in [
            "127.0.0.1:99999",
            "127.0.0.1:0",
            "127.0.0.1:80/x",
            "[::1]:70000",
        ] {
            assert!(bad(&headers(&[("host", host)])), "{host}");
        }
        assert_eq!(
            open.check(&uri, &headers(&[("host", "[::1]:8080")])),
            Ok(())
        );
        assert_eq!(open.check(&uri, &headers(&[("host", "localhost")])), Ok(()));
        let origin = |o: &str| headers(&[("origin", o), ("host", "127.0.0.1:1")]);
        for o in ["http://127.0.0.1:99999", "http://evil.com@127.0.0.1:1"] {
            assert!(
                matches!(
                    open.check(&uri, &origin(o)),
                    Err(HttpError::ForeignOrigin(_))
                ),
                "{o}"
            );
        }
        // A second Host or Origin, where only the first used to be checked.
        let mut two = headers(&[("host", "127.0.0.1:1"), ("origin", "http://127.0.0.1:1")]);
        two.append("origin", HeaderValue::from_static("http://evil.example"));
        assert!(bad(&two));
        let mut hosts = headers(&[("host", "127.0.0.1:1")]);
        hosts.append("host", HeaderValue::from_static("evil.example"));
        assert!(bad(&hosts));
        // Beyond loopback any Host passes, but it must still be a host.
        let anywhere = policy(false, None);
        let weird = headers(&[("host", "a@b:1")]);
        assert!(matches!(
            anywhere.check(&uri, &weird),
            Err(HttpError::BadHeader(_))
        ));
    }

    #[test]
    fn on_loopback_a_foreign_host_is_refused_and_elsewhere_any_host_passes() {
        let uri = Uri::from_static("/healthz");
        let rebound = headers(&[("host", "attacker.example:8080")]);
        assert!(matches!(
            policy(true, None).check(&uri, &rebound),
            Err(HttpError::ForeignHost(_))
        ));
        let token = "0123456789abcdef0123";
        let with_token = headers(&[
            ("host", "build-box.lan:8080"),
            ("authorization", "Bearer 0123456789abcdef0123"),
        ]);
        assert_eq!(policy(false, Some(token)).check(&uri, &with_token), Ok(()));
        assert_eq!(
            policy(true, None).check(&uri, &headers(&[("host", "[::1]:80")])),
            Ok(())
        );
    }

    #[test]
    fn a_token_must_come_as_the_exact_bearer_credential() {
        let uri = Uri::from_static("/rpc");
        let guarded = policy(false, Some("0123456789abcdef0123"));
        for (value, ok) in [
            ("Bearer 0123456789abcdef0123", true),
            ("bearer 0123456789abcdef0123", true),
            ("Bearer 0123456789abcdef012", false),
            ("Bearer 0123456789abcdef01234", false),
            ("Basic 0123456789abcdef0123", false),
            ("0123456789abcdef0123", false),
        ] {
            let result = guarded.check(&uri, &headers(&[("authorization", value)]));
            assert_eq!(result.is_ok(), ok, "{value}");
        }
        assert_eq!(
            guarded.check(&uri, &HeaderMap::new()),
            Err(HttpError::Unauthorized)
        );
    }
}
