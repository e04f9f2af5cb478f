//! Converge one resource: run its items' scripts through a session on its
//! database (in one transaction unless the module says otherwise), then
//! re-discover it until the diff is empty (bounded), and say what is left.

use super::*;
use crate::modules::Through;
use crate::ops::engine::Step;

/// Verification re-reads at most this many times (a reload takes effect
/// asynchronously), pausing a little longer each time.
pub(super) const VERIFY_ATTEMPTS: u32 = 6;

pub(super) const VERIFY_PAUSE: Duration = Duration::from_millis(150);

pub(super) struct Converged {
    pub observed_fingerprint: String,
    pub observed_items: BTreeMap<String, String>,
    /// The fields still differing after the action, if any.
    pub remaining_difference: Option<String>,
    /// Converged, but a parameter waits for a restart the manifest allows.
    pub waits_for_restart: bool,
}

/// Run one resource's scripts, then re-discover until the diff is empty
/// (bounded), returning the observed fingerprint for the ledger.
pub(super) async fn converge(
    engine: &Engine,
    work: &Work,
    facts: &serde_json::Map<String, Value>,
    run_id: &str,
) -> Result<Converged> {
    let module = engine
        .module(&work.resource.kind, &work.resource.target)
        .context("no module")?;
    let endpoint = engine
        .endpoints
        .get(&work.resource.target)
        .context("no endpoint")?;
    let mut sessions = Sessions {
        target: endpoint.connect(work.resource.database.as_deref()).await?,
        host: None,
        intent: Some((&work.approved, run_id)),
    };
    let mut rows = engine
        .discover_module(
            &sessions.target,
            module,
            &work.resource.target,
            work.resource.database.as_deref(),
            facts,
            &work.discovery_extra(engine),
        )
        .await?;
    if work.created {
        crate::ops::engine::claim_created(module, &work.resource, &mut rows);
    }
    // The module's checks, again on what the target holds now: resources
    // that ran before this one may have created what it names.
    if !work.approved.prune {
        let mut refused = Vec::new();
        for item in &work.resource.items {
            let candidate = find_row(&rows, &item.identity);
            let context = engine.rule_context(module, &work.resource, item, candidate, facts);
            let (refusing, broken) = engine.refusing_checks(module, &item.identity, &context);
            refused.extend(refusing);
            refused.extend(broken);
        }
        if !refused.is_empty() {
            anyhow::bail!("refused before it ran: {}", refused.join("; "));
        }
    }
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
            &mut sessions,
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
                &mut sessions,
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
    if changed_any && let Some(step) = engine.render_after(module, &work.resource, facts)? {
        sessions
            .run(engine, &work.resource.target, &step)
            .await
            .context("the module's after step")?;
    }
    verify(engine, &sessions.target, work, module, facts, false).await
}

/// The sessions one resource's actions run through: its target's, and the
/// host's once an action runs `through: host`.
pub(super) struct Sessions<'a> {
    pub target: Session,
    pub host: Option<Session>,
    /// The change and run whose `started` row the ledger gets before the
    /// first action (none: written already, or not wanted).
    pub intent: Option<(&'a ResourceChange, &'a str)>,
}

impl Sessions<'_> {
    /// Run `step` through the connector it names; the first step of a
    /// resource is preceded by its `started` row in the ledger.
    async fn run(&mut self, engine: &Engine, target: &str, step: &Step) -> Result<()> {
        if let Some((change, run_id)) = self.intent.take() {
            super::ledger::record_intent(engine, change, run_id).await?;
        }
        let session = match step.through {
            Through::Target => &mut self.target,
            Through::Host => match &mut self.host {
                Some(host) => host,
                host => {
                    let endpoint = engine.host_endpoint(target)?;
                    host.insert(endpoint.connect(None).await?)
                }
            },
        };
        session.execute(&step.script, step.transaction).await
    }
}

/// Render one item's action for the server and run it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_item(
    engine: &Engine,
    sessions: &mut Sessions<'_>,
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
    for step in scripts {
        sessions
            .run(engine, &resource.target, &step)
            .await
            .with_context(|| format!("{} of {}", action.name(), item.identity))?;
    }
    Ok(())
}

/// Re-discover the resource until its diff is empty, at most
/// `VERIFY_ATTEMPTS` times; also tells whether it waits for a restart that
/// the module may perform (`restarted`: the check after that restart).
pub(super) async fn verify(
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
                differences.push(replanned.differences().join(", "));
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
