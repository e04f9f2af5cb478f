//! `fleetform apply [PLAN]`: apply a saved plan, or plan, show, ask and apply.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::run::{PlanArgs, RunArgs, discover_and_plan, prepare, runtime};
use crate::model::plan::{PLAN_FORMAT_VERSION, Plan};
use crate::ops::apply;
use crate::output::Output;
use crate::report;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan written by `fleetform plan --out`: only its changes are applied, and
    /// resources whose live state changed since are refused.
    #[arg(value_name = "PLAN")]
    pub plan_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Apply without asking (for CI). Not needed with a plan file.
    #[arg(long)]
    pub auto_approve: bool,
}

/// Exit 0 when everything converged, 1 otherwise.
pub fn run(mut arguments: ApplyArgs, output: &mut Output) -> Result<u8> {
    let saved = match &arguments.plan_file {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    if let Some(saved) = &saved {
        if saved.environment != arguments.run.source.environment {
            bail!(
                "the plan is for environment {}, not {}",
                saved.environment,
                arguments.run.source.environment
            );
        }
        if arguments.plan.prune
            || !arguments.plan.replace.is_empty()
            || !arguments.plan.destroy.is_empty()
            || arguments.run.base.is_some()
        {
            bail!(
                "--prune, --replace, --destroy and --base are part of the plan: give them to `fleetform plan`, not to `apply PLAN`"
            );
        }
        arguments.plan.prune = saved.prune;
        arguments.plan.replace = saved.replace.clone();
        arguments.plan.destroy = saved.destroy.clone();
        arguments.plan.secret_salt = Some(saved.secret_salt.clone());
    }
    let Some(engine) = prepare(&arguments.run, &arguments.plan, output)? else {
        return Ok(1);
    };
    let runtime = runtime()?;
    let approved = match saved {
        Some(saved) => saved,
        None => {
            let plan = runtime.block_on(async { discover_and_plan(&engine).await });
            output.result(&report::plan_human(&plan, output.style(), false));
            // What cannot be planned is not applied, nor what depends on
            // it; the rest is, and every outcome is recorded.
            match (plan.has_changes(), plan.has_errors()) {
                (false, false) => {
                    output.status("nothing to apply");
                    return Ok(0);
                }
                (false, true) => {
                    output.status("the plan has errors and no change that could run: nothing applied");
                    return Ok(1);
                }
                (true, true) => output.status(
                    "the plan has errors: those resources, and what depends on them, are not applied",
                ),
                (true, false) => {}
            }
            if !arguments.auto_approve && !confirm(output)? {
                output.status("apply cancelled");
                return Ok(1);
            }
            plan
        }
    };
    let report = runtime.block_on(apply::apply(engine, &approved, output))?;
    output.status(&report::apply_human(&report, output.style()));
    Ok(if report.is_success() { 0 } else { 1 })
}

fn read_plan(path: &std::path::Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan {}", path.display()))?;
    let version: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON plan", path.display()))?;
    let found = version
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(PLAN_FORMAT_VERSION)) {
        bail!(
            "{} has plan format_version {}, this fleetform reads {PLAN_FORMAT_VERSION}: plan again",
            path.display(),
            found.map_or("(none)".to_string(), |found| found.to_string())
        );
    }
    serde_json::from_value(version)
        .with_context(|| format!("{} is not a fleetform plan", path.display()))
}

fn confirm(output: &mut Output) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "apply asks before changing anything, and standard input is not a terminal: pass --auto-approve, or apply a saved plan file"
        );
    }
    output.status("Apply these changes? Only 'yes' applies them:");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(answer.trim() == "yes")
}
