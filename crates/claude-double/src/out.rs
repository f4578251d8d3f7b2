//! The one stdout writer, and the key order of what it writes.
//!
//! The real CLI's key order matters to tests (e.g. `type` is not first in `result`
//! lines). This crate builds serde_json with `preserve_order` (see its Cargo.toml), so a
//! `json!` object, and a key added to one later, keeps its keys in the order written.

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::note;

/// The only writer of stdout: a line is written and flushed under the lock, so lines never
/// interleave and a line is out before the next step (e.g. an exit) happens.
pub(crate) struct Out {
    stdout: tokio::sync::Mutex<Option<tokio::io::Stdout>>,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out {
            stdout: tokio::sync::Mutex::new(Some(tokio::io::stdout())),
        }
    }

    pub(crate) async fn raw(&self, bytes: &[u8]) {
        let mut guard = self.stdout.lock().await;
        // None: stdout was closed on request (CLOSE_STDOUT); later lines are dropped.
        let Some(out) = guard.as_mut() else { return };
        let res = async {
            out.write_all(bytes).await?;
            out.write_all(b"\n").await?;
            out.flush().await
        }
        .await;
        if let Err(e) = res {
            note(&format!("cannot write stdout ({e}), exiting"));
            std::process::exit(1);
        }
    }

    pub(crate) async fn send(&self, line: &Value) {
        match serde_json::to_vec(line) {
            Ok(bytes) => self.raw(&bytes).await,
            Err(e) => note(&format!("cannot encode an output line: {e}")),
        }
    }

    pub(crate) async fn close(&self) {
        let mut guard = self.stdout.lock().await;
        if let Some(mut out) = guard.take() {
            let _ = out.flush().await;
        }
        // SAFETY: closing fd 1 only affects this process's stdout, which nothing else uses
        // from now on (the writer above is gone).
        unsafe {
            libc::close(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn ordered_objects_keep_key_order() {
        let mut o = json!({ "z": 1u64, "a": { "y": true, "b": null } });
        o["m"] = json!("x");
        let s = serde_json::to_string(&o).unwrap_or_default();
        assert_eq!(s, r#"{"z":1,"a":{"y":true,"b":null},"m":"x"}"#);
    }
}
