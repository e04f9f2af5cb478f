//! `fleetform plan`: flags, then discover and plan.

use anyhow::{Context, Result};
use clap::Args;

use super::run::{PlanArgs, RunArgs, discover_and_plan, prepare, runtime};
use crate::output::Output;
use crate::report::{self, PlanFormat};

#[derive(Debug, Args)]
pub struct PlanCommandArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format: human text, the JSON plan document, or a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Also write the plan to this file, for `fleetform apply FILE`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Also list resources that need nothing.
    #[arg(long)]
    pub show_unchanged: bool,
}

/// Exit 0 nothing to do, 2 changes pending, 1 error.
pub fn run(arguments: PlanCommandArgs, output: &mut Output) -> Result<u8> {
    let Some(engine) = prepare(&arguments.run, &arguments.plan, output)? else {
        return Ok(1);
    };
    let plan = runtime()?.block_on(async { discover_and_plan(&engine).await });
    if let Some(path) = &arguments.out {
        std::fs::write(path, report::plan_json(&plan))
            .with_context(|| format!("cannot write the plan to {}", path.display()))?;
        output.status(&format!("plan written to {}", path.display()));
    }
    match arguments.format {
        PlanFormat::Human => output.result(&report::plan_human(
            &plan,
            output.style(),
            arguments.show_unchanged,
        )),
        PlanFormat::Json => output.result(&report::plan_json(&plan)),
        PlanFormat::Markdown => {
            let comments = report::plan_markdown(&plan);
            let separator = format!("\n{}\n", report::COMMENT_SEPARATOR);
            output.result(&comments.join(&separator));
        }
    }
    Ok(if plan.has_errors() {
        1
    } else if plan.has_changes() {
        2
    } else {
        0
    })
}
