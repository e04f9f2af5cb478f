//! The local shell connector: runs rendered POSIX shell scripts on the
//! machine fleetform runs on, bounded in time, with their output kept for
//! the error message. It reaches a Server whose `connection.method` is
//! `local`: host resources, their ledger and lock, and for the instances
//! on that Server their restarts and module actions `through: host`.
//! Scripts go to `sh` on its standard input, never in its arguments: nothing of them shows in the process list. The SSH connector
//! will run the same scripts remotely.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// What a script printed.
struct Printed {
    stdout: String,
    stderr: String,
}

/// Run `script` with `sh -eu -s` (the script on standard input, stopping
/// at the first command that fails or the first unset variable, whether
/// or not the template says `set -eu`), waiting at most `timeout`; a script
/// that fails is an error with what it printed.
async fn run(script: &str, timeout: Duration) -> Result<Printed> {
    let mut child = tokio::process::Command::new("sh")
        .args(["-e", "-u", "-s"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start sh")?;
    let mut stdin = child.stdin.take().context("no standard input for sh")?;
    let script = script.to_string();
    let work = async move {
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("the script did not finish within {} s", timeout.as_secs()))?
        .context("cannot run sh")?;
    let printed = Printed {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if !output.status.success() {
        bail!(
            "the script failed ({}): {}",
            output.status,
            (printed.stdout.clone() + &printed.stderr).trim()
        );
    }
    Ok(printed)
}

/// A Server reached through the shell of this machine.
#[derive(Clone, Debug)]
pub struct LocalShell {
    /// The Server's name, used in every message.
    pub server: String,
    /// How long one script may run.
    pub timeout: Duration,
}

impl super::Connector for LocalShell {
    fn describe(&self) -> String {
        format!("Server {} (local shell)", self.server)
    }

    fn check_facts(&self, _facts: &serde_json::Map<String, Value>) -> Result<()> {
        Ok(())
    }

    fn connect<'a>(
        &'a self,
        _database: Option<&'a str>,
    ) -> super::Pending<'a, Result<super::Session>> {
        Box::pin(async move { Ok(super::Session::new(self.clone())) })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A shell "session" is the connector itself: every script is its own
/// process, so state that must outlive one (the apply lock) lives in files.
impl super::SessionApi for LocalShell {
    fn query_json<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
    ) -> super::Pending<'a, Result<Value>> {
        Box::pin(async move {
            let printed = run(script, timeout.unwrap_or(self.timeout))
                .await
                .with_context(|| self.server.clone())?;
            serde_json::from_str(printed.stdout.trim()).with_context(|| {
                format!(
                    "{}: the script did not print one JSON value: {}",
                    self.server,
                    printed.stdout.trim()
                )
            })
        })
    }

    /// Run a script. A shell has no transactions: host scripts stop at the
    /// first error (`sh -eu`) and are written to be run again.
    fn execute<'a>(
        &'a mut self,
        script: &'a str,
        _transaction: bool,
    ) -> super::Pending<'a, Result<()>> {
        Box::pin(async move {
            run(script, self.timeout)
                .await
                .with_context(|| self.server.clone())?;
            Ok(())
        })
    }
}
