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
use crate::model::plan::{Action, Plan, ResourceChange, TargetPin};
use crate::ops::engine::{
    DesiredResource, Engine, Observations, ReadFailure, TargetObservation, find_row,
};
use crate::output::Output;

mod converge;
mod ledger;
mod lock;
mod restart;
mod schedule;

use converge::{Converged, converge, verify};
use ledger::{ledger_note, record_outcome};
use lock::{lock_target, pin_mismatch, release_locks};
use restart::restart_waiting;
use schedule::{Job, Next, Scheduler};

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
    /// Skipped without trying: its target stopped answering earlier in the
    /// run (reported once for the target, in `ApplyReport::abandoned`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_attempted: bool,
}

impl ResourceOutcome {
    fn skipped(change: &ResourceChange, message: String) -> ResourceOutcome {
        ResourceOutcome {
            address: change.address.clone(),
            action: change.action,
            outcome: Outcome::Skipped,
            message: Some(message),
            seconds: 0.0,
            not_attempted: false,
        }
    }
}

/// A target given up on in this run: it stopped answering (a timeout, a
/// refused or closed connection after the retries), so its remaining
/// resources are not attempted and their outcomes cannot be recorded there.
#[derive(Clone, Debug, Serialize)]
pub struct Abandoned {
    pub reason: String,
    pub not_attempted: usize,
    /// Outcomes (of this run) its ledger could not be given.
    pub unrecorded: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    pub run_id: String,
    pub outcomes: Vec<ResourceOutcome>,
    /// Ledger rows that could not be written (the target went away).
    pub unrecorded: Vec<String>,
    /// Targets that stopped answering, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub abandoned: BTreeMap<String, Abandoned>,
    /// The signal (SIGINT, SIGTERM) that stopped the run early, and how
    /// many resources it left unattempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Interrupted {
    pub signal: String,
    pub not_attempted: usize,
}

impl ApplyReport {
    pub fn is_success(&self) -> bool {
        self.outcomes
            .iter()
            .all(|outcome| outcome.outcome.is_success())
            && self.unrecorded.is_empty()
            && self.abandoned.is_empty()
            && self.interrupted.is_none()
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
    /// The ledger says this owner's apply created its object (a marker
    /// removed by hand is put back: `claim_created`).
    created: bool,
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
    let mut stop = StopSignal::listen();
    // What the plan changes, and what it could not plan: failed, recorded on
    // the targets this apply changes anyway, and what depends on it skipped.
    let wanted: Vec<&ResourceChange> = approved
        .resource_changes
        .iter()
        .filter(|change| change.has_changes() || blocked_error(change).is_some())
        .collect();
    let targets: BTreeSet<String> = wanted
        .iter()
        .filter(|change| change.has_changes())
        .map(|change| change.target.clone())
        .collect();

    // 1. Lock every target that is still the server the plan was made
    // against, and make sure its ledger exists.
    let mut locks: BTreeMap<String, Session> = BTreeMap::new();
    let mut unavailable: BTreeMap<String, String> = BTreeMap::new();
    let mut elsewhere: BTreeMap<String, String> = BTreeMap::new();
    for target in &targets {
        if let Some(pin) = approved.targets.get(target) {
            match pin_mismatch(&engine, target, pin).await {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    elsewhere.insert(target.clone(), reason);
                    continue;
                }
                Err(error) => {
                    unavailable.insert(target.clone(), format!("{error:#}"));
                    continue;
                }
            }
        }
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
            .map_err(|error| ReadFailure::of(&error));
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
            not_attempted: false,
        };
        if let Some(blocked) = blocked_error(change) {
            report.outcomes.push(settle(
                Outcome::Failed,
                format!("not planned: {}", blocked.message()),
            ));
            continue;
        }
        if let Some(reason) = unavailable.get(&change.target) {
            report.outcomes.push(settle(
                Outcome::Skipped,
                format!("target {} unavailable: {reason}", change.target),
            ));
            continue;
        }
        if let Some(reason) = elsewhere.get(&change.target) {
            report
                .outcomes
                .push(settle(Outcome::Refused, reason.clone()));
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
        if current.secrets_fingerprint != change.secrets_fingerprint {
            report.outcomes.push(settle(
                Outcome::Refused,
                "a secret it uses changed since the plan was made: plan again".into(),
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
        let created = observations
            .get(&change.target)
            .and_then(|observation| observation.as_ref().ok())
            .and_then(|observation| observation.ledger.get(&change.address))
            .is_some_and(|entry| entry.created);
        queue.push(Work {
            approved: (*current).clone(),
            resource,
            removed,
            dependencies,
            created,
        });
    }
    // What was settled before running anything is recorded too (refused,
    // already converged, blocked), on the targets this apply locked (not
    // where it could not, nor on a server other than the plan's, nor where
    // it has nothing to change).
    let settled = report.outcomes.clone();
    for outcome in &settled {
        print_outcome(output, outcome);
        let Some(change) = wanted
            .iter()
            .find(|change| change.address == outcome.address)
        else {
            continue;
        };
        if locks.contains_key(&change.target) {
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
                not_attempted: false,
            };
            tracing::info!(resource = %change.address, target = %target, "ledger: no longer fleetform's");
            record_outcome(&engine, &change, &outcome, observed, &run_id, &mut report).await;
        }
    }

    // 4. Converge: dependency order, independent resources in parallel,
    // prune deletions last (in the order the plan lists them). Each outcome
    // is printed as it settles; progress marks the phase.
    let progress = engine
        .progress
        .phase(crate::progress::Phase::Applying, queue.len());
    let settled_before = report.outcomes.len();
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
        if observations.contains_key(&change.target) && blocked_error(change).is_some() {
            finished
                .entry(change.address.clone())
                .or_insert(Outcome::Failed);
        }
    }
    // A prune deletion waits for the deletions the plan lists before it on
    // the same target, and is skipped when one of them did not converge:
    // what runs later may hold or own what could not be dropped (a
    // database after its schema, a role after what it owns).
    let mut earlier_deletions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut deletions_before: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for change in wanted.iter().filter(|change| change.prune) {
        let earlier = earlier_deletions.entry(change.target.as_str()).or_default();
        deletions_before.insert(change.address.clone(), earlier.clone());
        earlier.push(change.address.clone());
    }
    let jobs = queue
        .into_iter()
        .map(|work| Job {
            address: work.approved.address.clone(),
            dependencies: work
                .dependencies
                .iter()
                .chain(
                    deletions_before
                        .get(&work.approved.address)
                        .into_iter()
                        .flatten(),
                )
                .cloned()
                .collect(),
            serial_key: engine
                .module(&work.resource.kind, &work.resource.target)
                .filter(|module| module.serial)
                .map(|_| (work.resource.kind.clone(), work.resource.target.clone())),
            deletion: work.approved.prune,
            work,
        })
        .collect();
    let settled = finished
        .iter()
        .map(|(address, outcome)| (address.clone(), outcome.is_success()))
        .collect();
    let mut scheduler = Scheduler::new(jobs, engine.settings.parallelism, settled);
    let mut restarts: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    let mut tasks: BTreeMap<tokio::task::Id, Work> = BTreeMap::new();
    let mut running: tokio::task::JoinSet<(Result<Converged>, f64)> = tokio::task::JoinSet::new();
    loop {
        let work = match scheduler.next() {
            Next::Done => break,
            Next::Start(work) => {
                let target = &work.approved.target;
                match not_attempted(target, &mut stop, &mut report, output, running.len()) {
                    None => work,
                    Some(reason) => {
                        let mut outcome = ResourceOutcome::skipped(&work.approved, reason);
                        outcome.not_attempted = true;
                        settle(
                            &engine,
                            &work.approved,
                            outcome,
                            None,
                            &run_id,
                            &mut report,
                            output,
                        )
                        .await;
                        scheduler.finish(&work.approved.address, false);
                        continue;
                    }
                }
            }
            Next::Skip(work, reason) => {
                let outcome = ResourceOutcome::skipped(&work.approved, reason);
                settle(
                    &engine,
                    &work.approved,
                    outcome,
                    None,
                    &run_id,
                    &mut report,
                    output,
                )
                .await;
                continue;
            }
            Next::Wait => {
                let joined = tokio::select! {
                    joined = running.join_next_with_id() => joined,
                    signal = stop.first() => {
                        announce_stop(output, signal, running.len());
                        continue;
                    }
                };
                let Some(joined) = joined else {
                    break;
                };
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
                if let Err(error) = &result {
                    abandon_if_not_answering(&work, error, &mut report, output);
                }
                let waits_for_restart = matches!(&result, Ok(converged) if converged.waits_for_restart && converged.remaining_difference.is_none());
                let (outcome, observed) = outcome_of(&work, result, seconds);
                let converged = outcome.outcome.is_success();
                settle(
                    &engine,
                    &work.approved,
                    outcome,
                    observed,
                    &run_id,
                    &mut report,
                    output,
                )
                .await;
                scheduler.finish(&work.approved.address, converged);
                if waits_for_restart {
                    restarts
                        .entry(work.approved.target.clone())
                        .or_default()
                        .push(work);
                }
                continue;
            }
        };
        let engine = Arc::clone(&engine);
        let facts = observations
            .get(&work.approved.target)
            .and_then(|observation| observation.as_ref().ok())
            .map(|observation| observation.facts.clone())
            .unwrap_or_default();
        let task_work = work.clone();
        let task_run = run_id.clone();
        let handle = running.spawn(async move {
            let started = Instant::now();
            let result = converge(&engine, &task_work, &facts, &task_run).await;
            (result, started.elapsed().as_secs_f64())
        });
        tasks.insert(handle.id(), work);
    }

    // 5. Restart the instances whose manifests allow it and that wait for it,
    // after everything else on them is done.
    for (target, works) in restarts {
        if report.abandoned.contains_key(&target) {
            continue;
        }
        if let Some(signal) = stop.received() {
            output.status(&format!(
                "!! {target}: not restarted, the apply was stopped ({signal}); its parameters wait for the next restart"
            ));
            continue;
        }
        restart_waiting(
            &engine,
            &target,
            &works,
            &observations,
            &run_id,
            &mut report,
            output,
        )
        .await;
    }

    let converged = report.outcomes[settled_before..]
        .iter()
        .filter(|outcome| outcome.outcome.is_success())
        .count();
    progress.finish(
        None,
        "settled",
        report.outcomes.len() - settled_before,
        None,
    );
    progress.end(&format!(
        "{converged} converged, {} not",
        report.outcomes.len() - settled_before - converged
    ));

    // 6. Release the locks (closing the sessions would too); a target that
    // stopped answering would only make the release wait out its timeout.
    locks.retain(|target, _| !report.abandoned.contains_key(target));
    release_locks(&engine, locks).await;
    if let Some(signal) = stop.received()
        && report.interrupted.is_none()
    {
        report.interrupted = Some(Interrupted {
            signal: signal.to_string(),
            not_attempted: 0,
        });
    }
    Ok(report)
}

/// Why work on `target` is not attempted, counted where the summary says it
/// once: the apply was stopped by a signal, or the target stopped answering.
fn not_attempted(
    target: &str,
    stop: &mut StopSignal,
    report: &mut ApplyReport,
    output: &mut Output,
    in_flight: usize,
) -> Option<String> {
    if let Some(signal) = stop.received() {
        if !stop.announced {
            stop.announced = true;
            announce_stop(output, signal, in_flight);
        }
        let interrupted = report.interrupted.get_or_insert_with(|| Interrupted {
            signal: signal.to_string(),
            not_attempted: 0,
        });
        interrupted.not_attempted += 1;
        return Some(format!("not attempted: the apply was stopped ({signal})"));
    }
    let abandoned = report.abandoned.get_mut(target)?;
    abandoned.not_attempted += 1;
    Some(format!(
        "not attempted: {target} stopped answering earlier in this run"
    ))
}

/// Say, once, what a stop signal does to the run.
fn announce_stop(output: &mut Output, signal: &str, in_flight: usize) {
    output.status(&format!(
        "!! {signal}: finishing the {in_flight} resources in flight and recording them; the rest are not attempted (a second signal stops at once)"
    ));
}

/// SIGINT and SIGTERM during an apply: the first stops new work (what is in
/// flight finishes and is recorded, the rest is recorded as not attempted);
/// a second ends the process at once, leaving the `started` rows of what was
/// in flight for the next plan to find.
struct StopSignal {
    received: tokio::sync::watch::Receiver<Option<&'static str>>,
    announced: bool,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl StopSignal {
    fn listen() -> StopSignal {
        use tokio::signal::unix::{SignalKind, signal};
        let (sender, received) = tokio::sync::watch::channel(None);
        let listener = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => Some(tokio::spawn(async move {
                let name = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                };
                tracing::warn!(signal = name, "stopping: no new work is started");
                let _ = sender.send(Some(name));
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                tracing::error!(
                    "second signal: stopping at once; what was in flight keeps its `started` row in the ledger, which the next plan reports"
                );
                std::process::exit(130);
            })),
            // Without handlers the signals keep their default (the process
            // ends); the `started` rows still say what was in flight.
            _ => None,
        };
        StopSignal {
            received,
            announced: false,
            listener,
        }
    }

    /// The signal received, if any.
    fn received(&self) -> Option<&'static str> {
        *self.received.borrow()
    }

    /// Resolves once, with the first signal; pending forever after that
    /// (or when none comes).
    async fn first(&mut self) -> &'static str {
        if !self.announced
            && let Ok(signal) = self.received.wait_for(Option::is_some).await
            && let Some(name) = *signal
        {
            self.announced = true;
            return name;
        }
        std::future::pending().await
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// Give up on `target` for the rest of the run when `error` says it stopped
/// answering: said once, here, with what the rest of its resources become.
fn abandon_if_not_answering(
    work: &Work,
    error: &anyhow::Error,
    report: &mut ApplyReport,
    output: &mut Output,
) {
    let target = work.approved.target.as_str();
    if !crate::connector::NotAnswering::is_cause_of(error) || report.abandoned.contains_key(target)
    {
        return;
    }
    // Like the resource's own failure message: without its secrets.
    let reason = without_secrets(&work.resource, format!("{error:#}")).replace('\n', "; ");
    output.status(&format!(
        "!! {target} stopped answering ({reason}): its remaining resources are not attempted in this run"
    ));
    tracing::warn!(target = %target, "target stopped answering: abandoned for this run");
    report.abandoned.insert(
        target.to_string(),
        Abandoned {
            reason,
            not_attempted: 0,
            unrecorded: 0,
        },
    );
}

/// What re-discovery observed after an action: the fingerprint and items
/// recorded in the ledger.
type Observed = Option<(String, BTreeMap<String, String>)>;

/// Why the plan could not plan `change`, when that is an error.
fn blocked_error(change: &ResourceChange) -> Option<&crate::model::plan::Blocked> {
    change.blocked.as_ref().filter(|blocked| blocked.is_error())
}

/// The outcome of converged work, and what its re-discovery observed.
fn outcome_of(work: &Work, result: Result<Converged>, seconds: f64) -> (ResourceOutcome, Observed) {
    let (outcome, message, observed) = match result {
        Ok(converged) => match &converged.remaining_difference {
            None => (
                Outcome::Converged,
                (work.approved.action == Action::NoOp && work.approved.record.is_some())
                    .then(|| "recorded: an interrupted apply had converged it".to_string()),
                Some((converged.observed_fingerprint, converged.observed_items)),
            ),
            Some(difference) => (
                Outcome::NotConverged,
                Some(format!(
                    "after the action, re-discovery still differs: {difference}"
                )),
                Some((converged.observed_fingerprint, converged.observed_items)),
            ),
        },
        Err(error) => (
            Outcome::Failed,
            Some(without_secrets(&work.resource, format!("{error:#}"))),
            None,
        ),
    };
    (
        ResourceOutcome {
            address: work.approved.address.clone(),
            action: work.approved.action,
            outcome,
            message,
            seconds,
            not_attempted: false,
        },
        observed,
    )
}

/// `message` with every secret value `resource` uses as `(sensitive)`: what
/// a failed script or server printed may echo one (a shell's `not found`
/// names its command), and the message goes to the report and the ledger.
fn without_secrets(resource: &DesiredResource, mut message: String) -> String {
    for secret in resource
        .items
        .iter()
        .flat_map(|item| item.secrets.values())
        .filter(|secret| !secret.is_empty())
    {
        message = message.replace(secret.as_str(), crate::template::SENSITIVE);
    }
    message
}

/// Settle one resource: ledger, progress line, report.
async fn settle(
    engine: &Engine,
    change: &ResourceChange,
    outcome: ResourceOutcome,
    observed: Observed,
    run_id: &str,
    report: &mut ApplyReport,
    output: &mut Output,
) {
    record_outcome(engine, change, &outcome, observed, run_id, report).await;
    tracing::info!(
        resource = %outcome.address,
        outcome = outcome.outcome.name(),
        seconds = outcome.seconds,
        "resource settled"
    );
    print_outcome(output, &outcome);
    report.outcomes.push(outcome);
}

fn print_outcome(output: &mut Output, outcome: &ResourceOutcome) {
    // Said once for its target when the target stopped answering.
    if outcome.not_attempted {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::diff::DesiredItem;

    #[test]
    fn a_failure_message_never_carries_a_secret_the_resource_uses() {
        let resource = DesiredResource {
            address: "PostgresRole/app@pg".into(),
            kind: "PostgresRole".into(),
            name: "app".into(),
            target: "pg".into(),
            lead: None,
            database: None,
            spec: json!({}),
            items: vec![DesiredItem {
                identity: "app".into(),
                fields: Default::default(),
                secrets: BTreeMap::from([("password".to_string(), "hunter2-x".to_string())]),
            }],
            dependencies: Vec::new(),
            blocked: None,
            cause: None,
        };
        let message = without_secrets(
            &resource,
            "the script failed (exit status: 127): sh: 1: hunter2-x: not found".into(),
        );
        assert_eq!(
            message,
            format!(
                "the script failed (exit status: 127): sh: 1: {}: not found",
                crate::template::SENSITIVE
            )
        );
    }
}
