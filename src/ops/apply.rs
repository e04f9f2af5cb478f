//! Apply: execute an approved plan. Per target: take the apply lock, make
//! sure the ledger exists, re-read the live state and refuse what changed
//! since the plan; then converge resources in dependency order (independent
//! ones in parallel), verify each by re-discovery, and record every outcome
//! in the target's ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde_json::{Value, json};

use crate::connector::Session;
use crate::model::plan::{Action, Plan, ResourceChange};
use crate::ops::engine::{DesiredResource, Engine, Observations, TargetObservation, find_row};
use crate::output::Output;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Converged,
    /// Nothing to do any more: someone converged it since the plan.
    AlreadyConverged,
    Failed,
    /// The action ran but re-discovery still finds a difference.
    NotConverged,
    /// A dependency failed, or its target could not be locked.
    Skipped,
    /// The live state or the manifests changed since the plan.
    Refused,
}

impl Outcome {
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Converged | Outcome::AlreadyConverged)
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::AlreadyConverged => "already-converged",
            Outcome::Failed => "failed",
            Outcome::NotConverged => "not-converged",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ResourceOutcome {
    pub address: String,
    pub action: Action,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub seconds: f64,
}

impl ResourceOutcome {
    fn skipped(change: &ResourceChange, message: String) -> ResourceOutcome {
        ResourceOutcome {
            address: change.address.clone(),
            action: change.action,
            outcome: Outcome::Skipped,
            message: Some(message),
            seconds: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    pub run_id: String,
    pub outcomes: Vec<ResourceOutcome>,
    /// Ledger rows that could not be written (the target went away).
    pub unrecorded: Vec<String>,
}

impl ApplyReport {
    pub fn is_success(&self) -> bool {
        self.outcomes
            .iter()
            .all(|outcome| outcome.outcome.is_success())
            && self.unrecorded.is_empty()
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.outcomes
            .iter()
            .filter(|entry| entry.outcome == outcome)
            .count()
    }
}

/// A resource to converge, with its approved and fresh plans.
#[derive(Clone)]
struct Work {
    approved: ResourceChange,
    resource: DesiredResource,
    /// Items fleetform applied that the manifests dropped, which the
    /// approved plan resets (`--prune`), as a stand-in resource.
    removed: Option<DesiredResource>,
    dependencies: Vec<String>,
}

impl Work {
    /// What discovery must cover beyond the manifests for this work.
    fn discovery_extra(&self, engine: &Engine) -> Vec<DesiredResource> {
        engine
            .discovery_extra(&self.resource)
            .iter()
            .chain(&self.removed)
            .cloned()
            .collect()
    }
}

/// Verification re-reads at most this many times (a reload takes effect
/// asynchronously), pausing a little longer each time.
const VERIFY_ATTEMPTS: u32 = 6;
const VERIFY_PAUSE: Duration = Duration::from_millis(150);

/// Converge `approved` (a plan the user saw). Prints progress as it goes.
pub async fn apply(
    engine: Arc<Engine>,
    approved: &Plan,
    output: &mut Output,
) -> Result<ApplyReport> {
    let run_id = run_identifier();
    let mut report = ApplyReport {
        run_id: run_id.clone(),
        ..ApplyReport::default()
    };
    let wanted: Vec<&ResourceChange> = approved
        .resource_changes
        .iter()
        .filter(|change| change.has_changes())
        .collect();
    let targets: BTreeSet<String> = wanted.iter().map(|change| change.target.clone()).collect();

    // 1. Lock every target and make sure its ledger exists.
    let mut locks: BTreeMap<String, Session> = BTreeMap::new();
    let mut unavailable: BTreeMap<String, String> = BTreeMap::new();
    for target in &targets {
        match lock_target(&engine, target, output).await {
            Ok(session) => {
                locks.insert(target.clone(), session);
            }
            Err(error) => {
                unavailable.insert(target.clone(), format!("{error:#}"));
            }
        }
    }

    // 2. Re-read the locked targets and re-plan: the plan may be stale.
    let mut observations = Observations::new();
    for target in locks.keys() {
        let observation = engine
            .discover_target(target)
            .await
            .map_err(|error| format!("{error:#}"));
        observations.insert(target.clone(), observation);
    }
    let fresh = engine.build_plan(&observations, approved.created_at.clone());
    let fresh_by_address: BTreeMap<&str, &ResourceChange> = fresh
        .resource_changes
        .iter()
        .map(|change| (change.address.as_str(), change))
        .collect();

    // 3. Decide what runs.
    let position: BTreeMap<&str, usize> = engine
        .resources
        .iter()
        .enumerate()
        .map(|(index, resource)| (resource.address.as_str(), index))
        .collect();
    let mut queue: Vec<Work> = Vec::new();
    for change in &wanted {
        let started = Instant::now();
        let settle = |outcome: Outcome, message: String| ResourceOutcome {
            address: change.address.clone(),
            action: change.action,
            outcome,
            message: Some(message),
            seconds: started.elapsed().as_secs_f64(),
        };
        if let Some(reason) = unavailable.get(&change.target) {
            report.outcomes.push(settle(
                Outcome::Skipped,
                format!("target {} unavailable: {reason}", change.target),
            ));
            continue;
        }
        let Some(current) = fresh_by_address.get(change.address.as_str()) else {
            report.outcomes.push(settle(
                Outcome::Refused,
                "no longer in the manifests or not discovered again".into(),
            ));
            continue;
        };
        if let Some(blocked) = &current.blocked {
            report
                .outcomes
                .push(settle(Outcome::Failed, blocked.message().to_string()));
            continue;
        }
        if current.desired_fingerprint != change.desired_fingerprint {
            report.outcomes.push(settle(
                Outcome::Refused,
                "the manifests changed since the plan was made: plan again".into(),
            ));
            continue;
        }
        if current.observed_fingerprint != change.observed_fingerprint {
            if current.action == Action::NoOp {
                report.outcomes.push(settle(
                    Outcome::AlreadyConverged,
                    "converged by someone else since the plan".into(),
                ));
            } else {
                report.outcomes.push(settle(
                    Outcome::Refused,
                    "its live state changed since the plan was made: plan again".into(),
                ));
            }
            continue;
        }
        let module = engine.module(&change.kind, &change.target);
        let subject = match (change.prune, module, position.get(change.address.as_str())) {
            (true, Some(_), _) => engine.prune_subject(current, &observations),
            (false, Some(_), Some(index)) => Some(engine.resources[*index].clone()),
            _ => None,
        };
        let resource = match subject {
            Some(resource) => resource,
            None => {
                report.outcomes.push(settle(
                    Outcome::Refused,
                    "not a resource of these manifests".into(),
                ));
                continue;
            }
        };
        let dependencies = resource
            .dependencies
            .iter()
            .map(|index| engine.resources[*index].address.clone())
            .collect();
        let removed = match observations.get(&change.target) {
            Some(Ok(observation))
                if current
                    .items
                    .iter()
                    .any(|item| item.action == Action::Delete) =>
            {
                observation
                    .superseded
                    .iter()
                    .find(|superseded| superseded.of == change.address && !change.prune)
                    .map(|superseded| superseded.resource.clone())
            }
            _ => None,
        };
        queue.push(Work {
            approved: (*current).clone(),
            resource,
            removed,
            dependencies,
        });
    }
    // What was settled before running anything is recorded too (refused,
    // already converged, blocked), except on targets that could not be locked.
    let settled = report.outcomes.clone();
    for outcome in &settled {
        print_outcome(output, outcome);
        let Some(change) = wanted
            .iter()
            .find(|change| change.address == outcome.address)
        else {
            continue;
        };
        if !unavailable.contains_key(&change.target) {
            record_outcome(&engine, change, outcome, None, &run_id, &mut report).await;
        }
    }

    // Ledger bookkeeping on the targets this apply read again: what the
    // ledger says fleetform applied but nothing of which is left (dropped or
    // reset by someone else) is no longer fleetform's; recorded so, a later
    // object of the same name is never taken for fleetform's.
    for (target, observation) in &observations {
        let Ok(observation) = observation else {
            continue;
        };
        let gone = |resource: &DesiredResource| {
            let module = engine.module(&resource.kind, &resource.target)?;
            let rows = observation
                .rows
                .get(&(resource.kind.clone(), resource.database.clone()))?;
            let remaining = engine.prune_remaining(module, resource, rows, &observation.facts);
            let gone: Vec<String> = resource
                .items
                .iter()
                .filter(|item| !remaining.iter().any(|left| left.identity == item.identity))
                .map(|item| item.identity.clone())
                .collect();
            Some(gone)
        };
        let mut bookkeeping = Vec::new();
        // An orphan is gone when none of its objects exists any more (an
        // orphan whose objects another resource covers stays fleetform's).
        for orphan in &observation.orphans {
            let Some(module) = engine.module(&orphan.kind, &orphan.target) else {
                continue;
            };
            let rows = observation
                .rows
                .get(&(orphan.kind.clone(), orphan.database.clone()));
            let exists = rows.is_none_or(|rows| {
                orphan.items.iter().any(|item| {
                    find_row(rows, &item.identity).is_some_and(|row| module.row_exists(row))
                })
            });
            if !exists {
                bookkeeping.push(ledger_note(orphan, Action::Delete, Vec::new(), true));
            }
        }
        for superseded in observation
            .superseded
            .iter()
            .filter(|superseded| superseded.needs_prune)
        {
            let Some(gone) = gone(&superseded.resource).filter(|gone| !gone.is_empty()) else {
                continue;
            };
            let Some(index) = position.get(superseded.of.as_str()) else {
                continue;
            };
            bookkeeping.push(ledger_note(
                &engine.resources[*index],
                Action::NoOp,
                gone,
                false,
            ));
        }
        for (mut change, message) in bookkeeping {
            // A row of a resource of the manifests keeps its fingerprints:
            // drift is still told from pending against it.
            let observed = fresh_by_address.get(change.address.as_str()).map(|fresh| {
                change.desired_fingerprint = fresh.desired_fingerprint.clone();
                (
                    fresh.observed_fingerprint.clone(),
                    fresh.observed_items.clone(),
                )
            });
            let outcome = ResourceOutcome {
                address: change.address.clone(),
                action: change.action,
                outcome: Outcome::Converged,
                message: Some(message),
                seconds: 0.0,
            };
            tracing::info!(resource = %change.address, target = %target, "ledger: no longer fleetform's");
            record_outcome(&engine, &change, &outcome, observed, &run_id, &mut report).await;
        }
    }

    // 4. Converge: dependency order, independent resources in parallel,
    // prune deletions last (in the order the plan lists them).
    let mut finished: BTreeMap<String, Outcome> = report
        .outcomes
        .iter()
        .map(|outcome| (outcome.address.clone(), outcome.outcome))
        .collect();
    // A resource that cannot be planned (a secret that cannot be read, a fixed
    // field) counts as failed: what depends on it is skipped. Only on the
    // targets this apply read again: the others have nothing to do here and
    // were not discovered.
    for change in &fresh.resource_changes {
        if observations.contains_key(&change.target)
            && change
                .blocked
                .as_ref()
                .is_some_and(|blocked| blocked.is_error())
        {
            finished
                .entry(change.address.clone())
                .or_insert(Outcome::Failed);
        }
    }
    let pending_addresses: BTreeSet<String> = queue
        .iter()
        .map(|work| work.approved.address.clone())
        .collect();
    let (mut deletions, mut remaining): (Vec<Work>, Vec<Work>) =
        queue.into_iter().partition(|work| work.approved.prune);
    let limit = engine.settings.parallelism.max(1);
    let mut restarts: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    let mut tasks: BTreeMap<tokio::task::Id, Work> = BTreeMap::new();
    let mut running = tokio::task::JoinSet::new();
    let mut in_flight = 0usize;
    loop {
        // Start everything whose dependencies are settled.
        let mut index = 0;
        while index < remaining.len() && in_flight < limit {
            let work = &remaining[index];
            let waiting = work.dependencies.iter().any(|dependency| {
                pending_addresses.contains(dependency) && !finished.contains_key(dependency)
            });
            let serial_busy = engine
                .module(&work.resource.kind, &work.resource.target)
                .is_some_and(|module| module.serial)
                && tasks.values().any(|running| {
                    running.resource.kind == work.resource.kind
                        && running.resource.target == work.resource.target
                });
            if waiting || serial_busy {
                index += 1;
                continue;
            }
            let work = remaining.remove(index);
            let failed_dependency = work.dependencies.iter().find(|dependency| {
                finished
                    .get(*dependency)
                    .is_some_and(|outcome| !outcome.is_success())
            });
            if let Some(dependency) = failed_dependency {
                let message = format!("depends on {dependency}, which did not converge");
                let outcome = ResourceOutcome::skipped(&work.approved, message);
                settle(
                    &engine,
                    &work.approved,
                    outcome,
                    None,
                    &run_id,
                    &mut report,
                    output,
                    &mut finished,
                )
                .await;
                continue;
            }
            let engine = Arc::clone(&engine);
            let facts = observations
                .get(&work.approved.target)
                .and_then(|observation| observation.as_ref().ok())
                .map(|observation| observation.facts.clone())
                .unwrap_or_default();
            in_flight += 1;
            let task_work = work.clone();
            let handle = running.spawn(async move {
                let started = Instant::now();
                let result = converge(&engine, &task_work, &facts).await;
                (result, started.elapsed().as_secs_f64())
            });
            tasks.insert(handle.id(), work);
        }
        if in_flight == 0 {
            if remaining.is_empty() {
                if deletions.is_empty() {
                    break;
                }
                // Deletions run one at a time, after everything else.
                remaining.push(deletions.remove(0));
                continue;
            }
            // Only blocked work is left: its dependencies can never finish.
            let work = remaining.remove(0);
            let outcome =
                ResourceOutcome::skipped(&work.approved, "its dependencies never converged".into());
            settle(
                &engine,
                &work.approved,
                outcome,
                None,
                &run_id,
                &mut report,
                output,
                &mut finished,
            )
            .await;
            continue;
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        in_flight -= 1;
        // A task that panicked is a failed resource, recorded like any other.
        let (task, result, seconds) = match joined {
            Ok((task, (result, seconds))) => (task, result, seconds),
            Err(error) => (
                error.id(),
                Err(anyhow!("the apply task panicked: {error}")),
                0.0,
            ),
        };
        let Some(work) = tasks.remove(&task) else {
            continue;
        };
        let waits_for_restart = matches!(&result, Ok(converged) if converged.waits_for_restart && converged.remaining_difference.is_none());
        let (outcome, message, observed) = match result {
            Ok(converged) => {
                let outcome = match &converged.remaining_difference {
                    None => (Outcome::Converged, None),
                    Some(difference) => (
                        Outcome::NotConverged,
                        Some(format!(
                            "after the action, re-discovery still differs: {difference}"
                        )),
                    ),
                };
                (
                    outcome.0,
                    outcome.1,
                    Some((converged.observed_fingerprint, converged.observed_items)),
                )
            }
            Err(error) => (Outcome::Failed, Some(format!("{error:#}")), None),
        };
        let outcome = ResourceOutcome {
            address: work.approved.address.clone(),
            action: work.approved.action,
            outcome,
            message,
            seconds,
        };
        settle(
            &engine,
            &work.approved,
            outcome,
            observed,
            &run_id,
            &mut report,
            output,
            &mut finished,
        )
        .await;
        if waits_for_restart {
            restarts
                .entry(work.approved.target.clone())
                .or_default()
                .push(work);
        }
    }

    // 5. Restart the instances whose manifests allow it and that wait for it,
    // after everything else on them is done.
    for (target, works) in restarts {
        let started = Instant::now();
        let facts = observations
            .get(&target)
            .and_then(|observation| observation.as_ref().ok())
            .map(|observation| observation.facts.clone())
            .unwrap_or_default();
        output.status(&format!(
            "restarting {target}: {} waits for it",
            works
                .iter()
                .map(|work| work.approved.address.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let script = engine.render_restart(&target, &facts).unwrap_or_default();
        let result = restart(&engine, &target, &facts, &works).await;
        // Recorded as an update of the instance itself.
        let instance_kind = engine
            .endpoints
            .get(&target)
            .and_then(|endpoint| endpoint.profile.instance_kind.clone())
            .unwrap_or_default();
        let change = ResourceChange {
            address: format!("{instance_kind}/{target}"),
            kind: instance_kind.clone(),
            target: target.clone(),
            database: None,
            action: Action::Update,
            items: vec![crate::model::plan::ItemChange {
                identity: target.clone(),
                action: Action::Update,
                changes: Vec::new(),
                risks: Vec::new(),
                script,
            }],
            observed_fingerprint: String::new(),
            observed_items: BTreeMap::new(),
            desired_fingerprint: String::new(),
            drift: crate::model::plan::DriftStatus::Pending,
            blocked: None,
            after_script: String::new(),
            restart_script: String::new(),
            prune: false,
        };
        let outcome = ResourceOutcome {
            address: format!("{instance_kind}/{target} (restart)"),
            action: Action::Update,
            outcome: if result.is_ok() {
                Outcome::Converged
            } else {
                Outcome::Failed
            },
            message: result.err().map(|error| format!("restart: {error:#}")),
            seconds: started.elapsed().as_secs_f64(),
        };
        record_outcome(&engine, &change, &outcome, None, &run_id, &mut report).await;
        print_outcome(output, &outcome);
        report.outcomes.push(outcome);
    }

    // 6. Release the locks (closing the sessions would too).
    for (target, session) in locks {
        let context = Value::Object(engine.base_context(&target, &Default::default()));
        if let Ok(script) = engine
            .templates
            .render(&script_of(&engine, &target, "lock_release"), &context)
        {
            let _ = session.query_json(&script).await;
        }
    }
    Ok(report)
}

struct Converged {
    observed_fingerprint: String,
    observed_items: BTreeMap<String, String>,
    /// The fields still differing after the action, if any.
    remaining_difference: Option<String>,
    /// Converged, but a parameter waits for a restart the manifest allows.
    waits_for_restart: bool,
}

/// Run one resource's scripts, then re-discover until the diff is empty
/// (bounded), returning the observed fingerprint for the ledger.
async fn converge(
    engine: &Engine,
    work: &Work,
    facts: &serde_json::Map<String, Value>,
) -> Result<Converged> {
    let module = engine
        .module(&work.resource.kind, &work.resource.target)
        .context("no module")?;
    let endpoint = engine
        .endpoints
        .get(&work.resource.target)
        .context("no endpoint")?;
    let mut session = endpoint.connect(work.resource.database.as_deref()).await?;
    let rows = engine
        .discover_module(
            &session,
            module,
            &work.resource.target,
            work.resource.database.as_deref(),
            facts,
            &work.discovery_extra(engine),
        )
        .await?;
    let to_prune: BTreeSet<&str> = if work.approved.prune {
        engine
            .prune_remaining(module, &work.resource, &rows, facts)
            .into_iter()
            .map(|item| item.identity.as_str())
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut changed_any = false;
    for item in &work.resource.items {
        let observed = find_row(&rows, &item.identity).filter(|row| module.row_exists(row));
        let item_diff = if work.approved.prune {
            // Nothing of it left to delete (gone since the plan, or by hand).
            if !to_prune.contains(item.identity.as_str()) {
                continue;
            }
            crate::ops::diff::ItemDiff {
                action: Some(Action::Delete),
                ..Default::default()
            }
        } else {
            let replace = engine.settings.replace.contains(&work.resource.address);
            let mut fresh = crate::ops::diff::diff_item(module, item, observed, replace);
            // Re-applied because its state changed since the last apply: the
            // manifest-level diff is empty, the approved plan says update.
            let approved = work
                .approved
                .items
                .iter()
                .find(|approved| approved.identity == item.identity);
            let refresh = approved.is_some_and(|approved| {
                approved
                    .changes
                    .iter()
                    .any(|change| change.field == "refresh")
            });
            if (module.reapply_when_changed || refresh)
                && fresh.action == Some(Action::NoOp)
                && let Some(approved) = approved.filter(|approved| approved.action != Action::NoOp)
            {
                fresh.action = Some(approved.action);
                fresh.changes = approved.changes.clone();
            }
            fresh
        };
        if item_diff.action == Some(Action::NoOp) {
            continue;
        }
        changed_any = true;
        run_item(
            engine,
            &mut session,
            module,
            &work.resource,
            item,
            observed,
            &item_diff,
            facts,
        )
        .await?;
    }
    // Items the manifests dropped, reset as the approved plan says.
    if let Some(removed) = &work.removed {
        let approved_deletions: BTreeSet<&str> = work
            .approved
            .items
            .iter()
            .filter(|item| item.action == Action::Delete)
            .map(|item| item.identity.as_str())
            .collect();
        let delete = crate::ops::diff::ItemDiff {
            action: Some(Action::Delete),
            ..Default::default()
        };
        for item in engine.prune_remaining(module, removed, &rows, facts) {
            if !approved_deletions.contains(item.identity.as_str()) {
                continue;
            }
            changed_any = true;
            let observed = find_row(&rows, &item.identity);
            run_item(
                engine,
                &mut session,
                module,
                removed,
                item,
                observed,
                &delete,
                facts,
            )
            .await?;
        }
    }
    if changed_any
        && let Some((script, transaction)) = engine.render_after(module, &work.resource, facts)?
    {
        session
            .execute(&script, transaction)
            .await
            .context("the module's after step")?;
    }
    verify(engine, &session, work, module, facts, false).await
}

/// A ledger row that changes nothing live: `resource` (or, with `dropped`,
/// some of its items) is no longer fleetform's.
fn ledger_note(
    resource: &DesiredResource,
    action: Action,
    dropped: Vec<String>,
    prune: bool,
) -> (ResourceChange, String) {
    let message = if dropped.is_empty() {
        "nothing of it is left on the server: no longer fleetform's".to_string()
    } else {
        format!(
            "{} no longer set: no longer fleetform's",
            dropped.join(", ")
        )
    };
    let change = ResourceChange {
        address: resource.address.clone(),
        kind: resource.kind.clone(),
        target: resource.target.clone(),
        database: resource.database.clone(),
        action,
        items: dropped
            .into_iter()
            .map(|identity| crate::model::plan::ItemChange {
                identity,
                action: Action::Delete,
                changes: Vec::new(),
                risks: Vec::new(),
                script: String::new(),
            })
            .collect(),
        observed_fingerprint: String::new(),
        observed_items: BTreeMap::new(),
        desired_fingerprint: String::new(),
        drift: crate::model::plan::DriftStatus::InSync,
        blocked: None,
        after_script: String::new(),
        restart_script: String::new(),
        prune,
    };
    (change, message)
}

/// Render one item's action for the server and run it.
#[allow(clippy::too_many_arguments)]
async fn run_item(
    engine: &Engine,
    session: &mut Session,
    module: &crate::modules::Module,
    resource: &DesiredResource,
    item: &crate::ops::diff::DesiredItem,
    observed: Option<&serde_json::Map<String, Value>>,
    item_diff: &crate::ops::diff::ItemDiff,
    facts: &serde_json::Map<String, Value>,
) -> Result<()> {
    let action = item_diff.action.unwrap_or(Action::NoOp);
    tracing::info!(
        resource = %resource.address,
        item = %item.identity,
        action = action.name(),
        "converging"
    );
    let scripts = engine.render_item(
        module,
        resource,
        item,
        observed,
        item_diff,
        facts,
        crate::ops::engine::RenderMode::Execute,
    )?;
    for (script, transaction) in scripts {
        session
            .execute(&script, transaction)
            .await
            .with_context(|| format!("{} of {}", action.name(), item.identity))?;
    }
    Ok(())
}

/// Re-discover the resource until its diff is empty, at most
/// `VERIFY_ATTEMPTS` times; also tells whether it waits for a restart that
/// the module may perform (`restarted`: the check after that restart).
async fn verify(
    engine: &Engine,
    session: &Session,
    work: &Work,
    module: &crate::modules::Module,
    facts: &serde_json::Map<String, Value>,
    restarted: bool,
) -> Result<Converged> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let rows = engine
            .discover_module(
                session,
                module,
                &work.resource.target,
                work.resource.database.as_deref(),
                facts,
                &work.discovery_extra(engine),
            )
            .await?;
        let waits_for_restart = !work.approved.prune
            && engine.restart_allowed(module, &work.resource)
            && work.resource.items.iter().any(|item| {
                let action = if restarted {
                    Action::NoOp
                } else {
                    work.approved
                        .items
                        .iter()
                        .find(|approved| approved.identity == item.identity)
                        .map_or(Action::NoOp, |approved| approved.action)
                };
                find_row(&rows, &item.identity)
                    .is_some_and(|row| engine.restart_needed(module, row, action))
            });
        let (fingerprint, items, difference) = if work.approved.prune {
            let remaining: Vec<&str> = engine
                .prune_remaining(module, &work.resource, &rows, facts)
                .into_iter()
                .map(|item| item.identity.as_str())
                .collect();
            (
                String::new(),
                BTreeMap::new(),
                (!remaining.is_empty()).then(|| format!("{} still exists", remaining.join(", "))),
            )
        } else {
            let mut observation = TargetObservation {
                facts: facts.clone(),
                ..Default::default()
            };
            observation
                .rows
                .insert((module.kind.clone(), work.resource.database.clone()), rows);
            let observations: Observations =
                BTreeMap::from([(work.resource.target.clone(), Ok(observation))]);
            let rows = match observations.get(&work.resource.target) {
                Some(Ok(observation)) => observation
                    .rows
                    .get(&(module.kind.clone(), work.resource.database.clone()))
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let replanned = engine.plan_resource(&work.resource, &observations);
            let mut differences = Vec::new();
            if replanned.action != Action::NoOp {
                differences.push(replanned.changed_fields().join(", "));
            }
            // Dropped items this apply reset must be gone.
            if let Some(removed) = &work.removed {
                let still_set: Vec<&str> = engine
                    .prune_remaining(module, removed, &rows, facts)
                    .into_iter()
                    .filter(|item| {
                        work.approved.items.iter().any(|approved| {
                            approved.identity == item.identity && approved.action == Action::Delete
                        })
                    })
                    .map(|item| item.identity.as_str())
                    .collect();
                if !still_set.is_empty() {
                    differences.push(format!("{} still set", still_set.join(", ")));
                }
            }
            let difference = (!differences.is_empty()).then(|| differences.join("; "));
            (
                replanned.observed_fingerprint,
                replanned.observed_items,
                difference,
            )
        };
        if difference.is_none() || attempt >= VERIFY_ATTEMPTS {
            return Ok(Converged {
                observed_fingerprint: fingerprint,
                observed_items: items,
                remaining_difference: difference,
                waits_for_restart,
            });
        }
        tokio::time::sleep(VERIFY_PAUSE * attempt).await;
    }
}

/// How long a restart may take, and how long the server then has to accept
/// connections again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(180);
const RECONNECT_ATTEMPTS: u32 = 60;

/// Restart `target` through its host, wait until it accepts connections,
/// and check that nothing waits for a restart any more.
async fn restart(
    engine: &Engine,
    target: &str,
    facts: &serde_json::Map<String, Value>,
    works: &[Work],
) -> Result<()> {
    let script = engine.render_restart(target, facts)?;
    crate::connector::shell::run_local(&script, RESTART_TIMEOUT).await?;
    let endpoint = engine.endpoints.get(target).context("no endpoint")?;
    // Each resource is read back where it lives: a database-scoped one in a
    // session on its database, as discovery reads it.
    let mut sessions: BTreeMap<Option<String>, Session> = BTreeMap::new();
    for work in works {
        let database = work.resource.database.clone();
        if !sessions.contains_key(&database) {
            let session = connect_after_restart(endpoint, database.as_deref()).await?;
            sessions.insert(database.clone(), session);
        }
        let module = engine
            .module(&work.resource.kind, &work.resource.target)
            .context("no module")?;
        let verified = verify(engine, &sessions[&database], work, module, facts, true).await?;
        if verified.waits_for_restart || verified.remaining_difference.is_some() {
            anyhow::bail!(
                "after the restart, {} still waits for one or differs",
                work.approved.address
            );
        }
    }
    Ok(())
}

/// A session on `database` (none: the maintenance database) of an instance
/// that was just restarted: tried once a second while it starts, a bounded
/// number of times.
async fn connect_after_restart(
    endpoint: &crate::connector::Endpoint,
    database: Option<&str>,
) -> Result<Session> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match endpoint.connect(database).await {
            Ok(session) => return Ok(session),
            Err(error) if attempt >= RECONNECT_ATTEMPTS => {
                return Err(error)
                    .context("the instance does not accept connections after the restart");
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

fn script_of(engine: &Engine, target: &str, name: &str) -> String {
    engine
        .endpoints
        .get(target)
        .map_or(format!("templates/postgres/{name}.sql"), |endpoint| {
            endpoint.script(name)
        })
}

/// Take the apply lock of `target` (waiting at most the lock timeout) and
/// prepare its ledger; the returned session holds the lock.
async fn lock_target(engine: &Engine, target: &str, output: &mut Output) -> Result<Session> {
    if let Some(path) = engine.snapshots.get(target) {
        anyhow::bail!(
            "{target} is read from the snapshot {} (spec.snapshot): plan and drift only; remove spec.snapshot to apply",
            path.display()
        );
    }
    let endpoint = engine
        .endpoints
        .get(target)
        .with_context(|| format!("no instance {target}"))?;
    let mut session = endpoint.connect(None).await?;
    let context = Value::Object(engine.base_context(target, &Default::default()));
    let tried = session
        .query_json(
            &engine
                .templates
                .render(&endpoint.script("lock_try"), &context)?,
        )
        .await?;
    if tried.get("acquired").and_then(Value::as_bool) != Some(true) {
        output.status(&format!(
            "waiting for the apply lock on {target}: another apply is converging it (at most {} s)",
            engine.settings.lock_timeout.as_secs()
        ));
        let timeout_ms = engine.settings.lock_timeout.as_millis() as u64;
        let set = engine.templates.render(
            &endpoint.script("session"),
            &json!({"statement_timeout_ms": timeout_ms + 5_000, "lock_timeout_ms": timeout_ms}),
        )?;
        session.execute(&set, false).await?;
        let mut wait_context = context.clone();
        wait_context["lock_timeout_ms"] = json!(timeout_ms);
        let waited = session
            .query_json_within(
                &engine
                    .templates
                    .render(&endpoint.script("lock_wait"), &wait_context)?,
                engine.settings.lock_timeout + Duration::from_secs(5),
            )
            .await
            .with_context(|| {
                format!(
                    "the apply lock on {target} was not released within {} s",
                    engine.settings.lock_timeout.as_secs()
                )
            })?;
        if waited.get("acquired").and_then(Value::as_bool) != Some(true) {
            anyhow::bail!(
                "the apply lock on {target} was not released within {} s (another apply still converges it)",
                engine.settings.lock_timeout.as_secs()
            );
        }
    }
    session
        .execute(
            &engine
                .templates
                .render(&endpoint.script("ledger/prepare"), &context)?,
            true,
        )
        .await
        .with_context(|| {
            format!(
                "cannot create the ledger (schema fleetform) on {target}\nhint: {}",
                endpoint.ledger_hint()
            )
        })?;
    Ok(session)
}

/// Settle one resource: ledger, progress line, bookkeeping.
#[allow(clippy::too_many_arguments)]
async fn settle(
    engine: &Engine,
    change: &ResourceChange,
    outcome: ResourceOutcome,
    observed: Option<(String, BTreeMap<String, String>)>,
    run_id: &str,
    report: &mut ApplyReport,
    output: &mut Output,
    finished: &mut BTreeMap<String, Outcome>,
) {
    record_outcome(engine, change, &outcome, observed, run_id, report).await;
    tracing::info!(
        resource = %outcome.address,
        outcome = outcome.outcome.name(),
        seconds = outcome.seconds,
        "resource settled"
    );
    print_outcome(output, &outcome);
    finished.insert(outcome.address.clone(), outcome.outcome);
    report.outcomes.push(outcome);
}

/// Write one outcome to the target's ledger; a failure to write is reported.
async fn record_outcome(
    engine: &Engine,
    change: &ResourceChange,
    outcome: &ResourceOutcome,
    observed: Option<(String, BTreeMap<String, String>)>,
    run_id: &str,
    report: &mut ApplyReport,
) {
    let target = &change.target;
    let script: String = change
        .items
        .iter()
        .map(|item| item.script.as_str())
        .collect();
    let mut context = engine.base_context(target, &Default::default());
    context.insert("run_id".into(), json!(run_id));
    context.insert("commit".into(), json!(engine.settings.commit));
    context.insert("actor".into(), json!(engine.settings.actor));
    context.insert("resource".into(), json!(change.address));
    context.insert("kind".into(), json!(change.kind));
    context.insert("database".into(), json!(change.database));
    // The spec applied, so that a later run can prune what the manifests
    // dropped (ledger-owned kinds); sensitive fields only as `(sensitive)`.
    let spec = engine
        .resources
        .iter()
        .find(|resource| resource.address == change.address && !change.prune)
        .zip(engine.module(&change.kind, &change.target))
        .map(|(resource, module)| crate::ops::engine::recorded_spec(module, &resource.spec));
    let spec_value = json!(spec);
    context.insert("spec".into(), json!(spec.map(|spec| spec.to_string())));
    // Kinds with items keep owning the items they applied and the manifests
    // dropped, until a prune resets them (`dropped_items`).
    let carry_items = engine
        .module(&change.kind, &change.target)
        .filter(|module| {
            module
                .ownership
                .as_ref()
                .is_some_and(|ownership| ownership.ledger)
        })
        .and_then(|module| module.items.clone())
        .filter(|_| !change.prune);
    let dropped_items: Vec<&str> = change
        .items
        .iter()
        .filter(|item| item.action == Action::Delete && outcome.outcome == Outcome::Converged)
        .map(|item| item.identity.as_str())
        .collect();
    context.insert("carry_items".into(), json!(carry_items));
    context.insert("dropped_items".into(), json!(dropped_items));
    context.insert("action".into(), json!(change.action.name()));
    context.insert("result".into(), json!(outcome.outcome.name()));
    context.insert(
        "desired_fingerprint".into(),
        json!(change.desired_fingerprint),
    );
    let observed_items_value = json!(observed.as_ref().map(|(_, items)| items));
    let (observed_fingerprint, observed_items) = match observed {
        Some((fingerprint, items)) => (Some(fingerprint), Some(json!(items).to_string())),
        None => (None, None),
    };
    let observed_fingerprint = json!(observed_fingerprint);
    context.insert("observed_fingerprint".into(), observed_fingerprint.clone());
    context.insert("observed_items".into(), json!(observed_items));
    context.insert("message".into(), json!(outcome.message));
    context.insert("script".into(), json!(script));
    // The whole entry as one JSON object, for stores that keep entries as
    // documents (a host's files), and a file name for its resource.
    let entry = json!({
        "run_id": run_id,
        "environment": engine.environment,
        "commit": engine.settings.commit,
        "actor": engine.settings.actor,
        "resource": change.address,
        "action": change.action.name(),
        "result": outcome.outcome.name(),
        "desired_fingerprint": change.desired_fingerprint,
        "observed_fingerprint": observed_fingerprint,
        "observed_items": observed_items_value,
        "message": outcome.message,
        "script": script,
        "kind": change.kind,
        "database": change.database,
        "spec": spec_value,
        "recorded_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    context.insert("entry".into(), entry);
    context.insert(
        "entry_file".into(),
        json!(crate::ops::diff::fingerprint(&json!(change.address))),
    );
    let attempt = async {
        let endpoint = engine.endpoints.get(target).context("no endpoint")?;
        let rendered = engine
            .templates
            .render(&endpoint.script("ledger/record"), &Value::Object(context))?;
        let mut session = endpoint.connect(None).await?;
        session.execute(&rendered, true).await
    };
    if let Err(error) = attempt.await {
        report
            .unrecorded
            .push(format!("{}: {error:#}", change.address));
    }
}

fn print_outcome(output: &mut Output, outcome: &ResourceOutcome) {
    let mark = if outcome.outcome.is_success() {
        "ok"
    } else {
        "!!"
    };
    let mut line = format!(
        "{mark} {} {}: {}",
        outcome.action.symbol(),
        outcome.address,
        outcome.outcome.name()
    );
    if let Some(message) = &outcome.message {
        line.push_str(&format!(" ({})", message.replace('\n', "; ")));
    }
    output.status(&line);
}

fn run_identifier() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}-{:x}", now.as_millis(), std::process::id())
}
