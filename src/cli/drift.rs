//! `fleetform drift`: read-only; compares the live state with the manifests
//! and with what the ledger says was applied.

use anyhow::Result;
use clap::Args;

use super::run::{PlanArgs, RunArgs, discover_and_plan, prepare, runtime};
use crate::output::Output;
use crate::report::{self, DriftFormat};

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DriftFormat::Human)]
    pub format: DriftFormat,
}

/// Exit 0 in sync, 2 pending changes only, 3 drift, 1 error.
pub fn run(arguments: DriftArgs, output: &mut Output) -> Result<u8> {
    let plan_arguments = PlanArgs::default();
    let Some(engine) = prepare(&arguments.run, &plan_arguments, output)? else {
        return Ok(1);
    };
    let plan = runtime()?.block_on(async { discover_and_plan(&engine).await });
    output.result(&report::drift_render(
        &plan,
        arguments.format,
        output.style(),
    ));
    Ok(report::drift_exit_code(&plan))
}
