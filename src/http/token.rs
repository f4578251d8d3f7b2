//! The bearer token of the HTTP listener: the one given (`--listen-token`, its variable
//! or the config file), or a token generated into `listen-token` in the state directory
//! (0600, in the 0700 directory), kept across restarts so clients keep working, and
//! never written to a log. Loopback needs one too: every local user can connect to
//! 127.0.0.1, and with the agent they would act as the owner. `--listen-no-token true`
//! is the explicit opt-out for loopback.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::HttpError;
use crate::config::Secret;
use crate::state_dir::{private_file, read_no_follow};

/// The generated token's file in the state directory.
pub(crate) const TOKEN_FILE: &str = "listen-token";
/// A kept token shorter than this is not one this code wrote: a new one replaces it.
const MIN_KEPT: usize = 32;

/// The token requests must carry (none only on loopback with `no_token`), and the file
/// it was generated into.
pub(crate) fn resolve(
    given: Option<&Secret>,
    loopback: bool,
    no_token: bool,
    state_root: Option<&Path>,
) -> Result<(Option<Secret>, Option<PathBuf>), HttpError> {
    if let Some(token) = given {
        return Ok((Some(token.clone()), None));
    }
    if loopback && no_token {
        return Ok((None, None));
    }
    let Some(root) = state_root else {
        return Err(HttpError::Setup(
            "HTTP needs a token, and there is no state directory to generate one into: \
             set --listen-token"
                .into(),
        ));
    };
    let path = root.join(TOKEN_FILE);
    Ok((Some(kept_or_new(&path)?), Some(path)))
}

/// The token in `path` when one is there, else a new one written there.
fn kept_or_new(path: &Path) -> Result<Secret, HttpError> {
    let unusable = |err: std::io::Error| {
        HttpError::Setup(format!(
            "cannot use the token file {}: {err}",
            path.display()
        ))
    };
    match read_no_follow(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if text.len() >= MIN_KEPT && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                // Reopened to hold it to 0600, whoever made it.
                private_file(path, true).map_err(unusable)?;
                return text.parse().map_err(|never| match never {});
            }
            tracing::warn!(path = %path.display(), "the token file holds no usable token; writing a new one");
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(unusable(err)),
    }
    // Two v4 UUIDs: 244 bits from the system's CSPRNG.
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = private_file(path, false).map_err(unusable)?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(unusable)?;
    token.parse().map_err(|never| match never {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn every_listener_gets_a_private_token_that_it_keeps_unless_loopback_opts_out() {
        let root = std::env::temp_dir().join(format!("cc-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let (token, file) = resolve(None, false, false, Some(&root)).unwrap();
        let (token, file) = (token.unwrap(), file.unwrap());
        assert_eq!(token.expose().len(), 64);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, _) = resolve(None, false, false, Some(&root)).unwrap();
        assert_eq!(again.unwrap().expose(), token.expose());
        // Loopback gets the same token, unless the owner opted out; an opt-out does
        // not reach beyond loopback.
        let (looped, _) = resolve(None, true, false, Some(&root)).unwrap();
        assert_eq!(looped.unwrap().expose(), token.expose());
        assert_eq!(resolve(None, true, true, Some(&root)).unwrap().0, None);
        assert!(resolve(None, false, true, Some(&root)).unwrap().0.is_some());
        let given: Secret = "a-given-token-of-enough-length".parse().unwrap();
        assert_eq!(
            resolve(Some(&given), true, false, None).unwrap(),
            (Some(given.clone()), None)
        );
        assert!(resolve(None, false, false, None).is_err());
        assert!(resolve(None, true, false, None).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
