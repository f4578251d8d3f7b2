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
//! - When there is a token (always on a non-loopback address, see [`super::token`]),
//!   a request without `Authorization: Bearer <token>` is refused with 401.

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Uri};

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
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !is_loopback_origin(&origin) {
                return Err(HttpError::ForeignOrigin(origin.into_owned()));
            }
        }
        if self.loopback {
            let host = headers
                .get(HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
                .or_else(|| uri.authority().map(ToString::to_string));
            if let Some(host) = host
                && !authority_is_loopback(&host)
            {
                return Err(HttpError::ForeignHost(host));
            }
        }
        match &self.token {
            Some(token) if !bearer_matches(headers, token) => Err(HttpError::Unauthorized),
            _ => Ok(()),
        }
    }
}

/// `http://` or `https://` and a loopback authority, nothing else (an origin has no path).
fn is_loopback_origin(origin: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| !a.contains(['/', '@']) && authority_is_loopback(a))
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn authority_is_loopback(authority: &str) -> bool {
    let Ok(authority) = authority.parse::<Authority>() else {
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
