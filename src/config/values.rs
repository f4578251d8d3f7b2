//! The two setting values with rules of their own: `--listen`'s address, and the
//! listen token, a secret that never shows in `status`, logs or `Debug` output.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `--listen`'s address: an IP address and port, or `localhost:PORT`, which is
/// 127.0.0.1 (the loopback address itself, never what a resolver says the name is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr(addr));
        }
        let refused = || {
            format!(
                "{s:?} is not ADDR:PORT: give an IP address (127.0.0.1:8080, [::1]:8080) or localhost:PORT"
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(refused)?;
        let port: u16 = port.parse().map_err(|_| refused())?;
        match host.eq_ignore_ascii_case("localhost") {
            true => Ok(ListenAddr(SocketAddr::from(([127, 0, 0, 1], port)))),
            false => Err(refused()),
        }
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A setting that is a secret (the HTTP bearer token): it never shows in `--help`,
/// `claude-coded config`, `status`, the state file or a log line, only to the code that
/// compares it ([`Secret::expose`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one comparison (and handing it on to `start`'s daemon).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a secret that was given serialises to.
pub(super) const SECRET_SET: &str = "(set)";

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SECRET_SET)
    }
}
