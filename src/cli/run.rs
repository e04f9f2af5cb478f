//! Flags and set-up shared by the commands that talk to servers (plan,
//! apply, drift): validate the environment, resolve settings once, build
//! the engine.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::SourceArgs;
use crate::ops::engine::{Engine, RunSettings};
use crate::output::Output;
use crate::progress::{Phase, Progress, ProgressMode};
use crate::schemas::SchemaCatalog;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only these resources and what they depend on: a full address (`PostgresRole/app@pg-1`),
    /// an object (`PostgresRole/app`) or a kind (`PostgresRole`). Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// How many targets are read (and resources converged) at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallelism: u16,
    /// How long apply waits for another apply's lock on an instance, in seconds.
    #[arg(long = "lock-timeout", value_name = "SECONDS", default_value_t = 300)]
    pub lock_timeout: u64,
    /// Plan only what changed since this git revision (the pull request's
    /// base, e.g. `origin/main`): the objects added, edited or newly selected,
    /// what depends on them, and only the targets they live on.
    #[arg(long = "base", value_name = "REV")]
    pub base: Option<String>,
    /// Progress on stderr: live lines on a terminal and plain lines otherwise
    /// (auto; JSON lines with --log-format json), plain, json, or off.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// Plan-shaping flags, shared by plan and apply.
#[derive(Debug, Default, Args)]
pub struct PlanArgs {
    /// Also delete objects fleetform created that are no longer in the manifests.
    #[arg(long)]
    pub prune: bool,
    /// Allow dropping and recreating this resource when a field fixed at creation
    /// (a database's encoding or locale) differs. Destroys what it holds. Repeatable.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Allow the prune of this resource to drop what it holds that fleetform did
    /// not create (a schema's tables, a database's schemas). Destroys them. Repeatable.
    #[arg(long = "destroy", value_name = "ADDRESS")]
    pub destroy: Vec<String>,
    /// The salt of a saved plan's secret hashes (`apply PLAN`).
    #[arg(skip)]
    pub secret_salt: Option<String>,
}

/// Validate the environment and build the engine; `None` (after printing
/// the diagnostics) when the manifests are invalid.
pub fn prepare(
    arguments: &RunArgs,
    plan: &PlanArgs,
    output: &mut Output,
) -> Result<Option<Arc<Engine>>> {
    if plan.prune && !arguments.targets.is_empty() {
        anyhow::bail!(
            "--prune looks for what left the whole environment's manifests; it cannot be combined with --target"
        );
    }
    if arguments.base.is_some() && !arguments.targets.is_empty() {
        anyhow::bail!(
            "--base plans what changed since a revision and --target names what to plan: give one of them"
        );
    }
    let source_settings = arguments.source.settings()?;
    let catalog = SchemaCatalog::embedded()?;
    let Some(fleet) = super::valid_fleet(&source_settings, &catalog, output) else {
        return Ok(None);
    };
    let scope = match &arguments.base {
        Some(base) => Some(base_scope(arguments, base, &fleet, &catalog, plan.prune)?),
        None => None,
    };
    let settings = RunSettings {
        parallelism: usize::from(arguments.parallelism),
        prune: plan.prune,
        replace: plan.replace.iter().cloned().collect::<BTreeSet<_>>(),
        destroy: plan.destroy.iter().cloned().collect::<BTreeSet<_>>(),
        only: arguments.targets.clone(),
        lock_timeout: Duration::from_secs(arguments.lock_timeout),
        actor: actor(),
        commit: source_settings.source.commit(),
        repository_root: source_settings.source.root_directory(),
        secret_salt: plan.secret_salt.clone(),
        scope,
    };
    let mut engine = Engine::prepare(&fleet, &catalog, settings)
        .with_context(|| format!("environment {}", source_settings.environment))?;
    engine.progress = Arc::new(Progress::new(arguments.progress, super::json_logs()));
    Ok(Some(Arc::new(engine)))
}

/// What changed between the manifests at `base` and those planned.
/// Manifests at `base` that are not valid cannot be compared: then the
/// whole environment is planned, and the scope says why.
fn base_scope(
    arguments: &RunArgs,
    base: &str,
    fleet: &crate::model::ValidatedFleet,
    catalog: &SchemaCatalog,
    prune: bool,
) -> Result<crate::ops::changes::Scope> {
    let settings = crate::settings::SourceSettings::resolve(
        &arguments.source.environment,
        arguments.source.repository.as_deref(),
        Some(base),
    )
    .with_context(|| format!("--base {base}"))?;
    let commit = settings.source.commit();
    let check = crate::ops::check_environment(&settings.source, &settings.environment, catalog);
    Ok(match check.fleet {
        Some(before) => crate::ops::changes::compare(&before, fleet, base, commit, prune),
        None => crate::ops::changes::Scope {
            base: base.to_string(),
            base_commit: commit,
            everything: Some(format!(
                "the manifests at {base} are not valid ({} errors), so nothing can be compared with them",
                check.diagnostics.iter().filter(|d| d.is_error()).count()
            )),
            ..Default::default()
        },
    })
}

/// Who runs fleetform, for the ledger: FLEETFORM_ACTOR, else the CI's
/// actor, else the login name, with the host.
fn actor() -> String {
    let person = [
        "FLEETFORM_ACTOR",
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "USER",
        "LOGNAME",
        "USERNAME",
    ]
    .iter()
    .find_map(|variable| {
        std::env::var(variable)
            .ok()
            .filter(|value| !value.is_empty())
    })
    .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_string())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|host| !host.is_empty());
    match host {
        Some(host) if !person.contains('@') => format!("{person}@{host}"),
        _ => person,
    }
}

/// Read every target and plan, with progress for both phases.
pub async fn discover_and_plan(engine: &Arc<Engine>) -> crate::model::plan::Plan {
    let observations = engine.discover().await;
    let progress = engine
        .progress
        .phase(Phase::Planning, engine.resources.len());
    let plan = engine.build_plan(&observations, now());
    let summary = &plan.summary;
    progress.finish(None, "planned", engine.resources.len(), None);
    progress.end(&format!(
        "{} to change, {} unchanged, {} blocked",
        summary.create + summary.update + summary.replace + summary.delete,
        summary.no_op,
        summary.blocked
    ));
    plan
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The time now, as an RFC 3339 string in UTC.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
