//! The local shell connector: runs a rendered POSIX shell script on the
//! machine fleetform runs on, bounded in time, with its output kept for the
//! error message. The SSH connector will run the same scripts remotely.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Run `script` with `sh -c`, waiting at most `timeout`.
pub async fn run_local(script: &str, timeout: Duration) -> Result<String> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| anyhow::anyhow!("the script did not finish within {} s", timeout.as_secs()))?
        .context("cannot start sh")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("the script failed ({}): {}", output.status, text.trim());
    }
    Ok(text)
}
