//! `fleetform discover`: read the live state of every target (or those of
//! --target) and write it as a snapshot that plans can be made from offline.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::run::{PlanArgs, RunArgs, now, prepare, runtime};
use crate::ops::snapshot::Snapshot;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The snapshot file to write (JSON). An instance reads it instead of
    /// connecting when its `spec.snapshot` names it.
    #[arg(long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

/// Exit 0 when every target was read, 1 otherwise (the snapshot then holds
/// the targets that could be read).
pub fn run(arguments: DiscoverArgs, output: &mut Output) -> Result<u8> {
    // Read as for --prune: a snapshot records every kind fleetform can own,
    // in every database, so that it serves a plan with --prune too (what a
    // --target or --base run reads is not the whole environment's).
    let plan_arguments = PlanArgs {
        prune: arguments.run.targets.is_empty() && arguments.run.base.is_none(),
        ..PlanArgs::default()
    };
    let Some(engine) = prepare(&arguments.run, &plan_arguments, output)? else {
        return Ok(1);
    };
    let observations = runtime()?.block_on(engine.discover());
    let snapshot = Snapshot::record(&engine.environment, now(), &observations, &engine);
    let text = serde_json::to_string_pretty(&snapshot).context("cannot write the snapshot")?;
    std::fs::write(&arguments.out, text + "\n")
        .with_context(|| format!("cannot write {}", arguments.out.display()))?;
    let mut failed = false;
    for (target, observation) in &observations {
        match observation {
            Ok(observation) => output.status(&format!(
                "{target}: {} objects of {} kinds",
                observation.rows.values().map(Vec::len).sum::<usize>(),
                observation.rows.len()
            )),
            Err(message) => {
                failed = true;
                output.status(&format!("{target}: not recorded: {message}"));
            }
        }
    }
    output.status(&format!(
        "wrote {} ({} targets; secrets are never recorded)",
        arguments.out.display(),
        snapshot.targets.len()
    ));
    Ok(if failed { 1 } else { 0 })
}
