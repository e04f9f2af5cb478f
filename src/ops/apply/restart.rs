//! Restarts: an instance whose manifests allow it and that waits for one is
//! restarted through its host after everything else on it converged, then
//! each resource is verified again in a session on its own database.

use super::*;

/// How long a restart may take, and how long the server then has to accept
/// connections again.
pub(super) const RESTART_TIMEOUT: Duration = Duration::from_secs(180);

pub(super) const RECONNECT_ATTEMPTS: u32 = 60;

/// Restart `target` through its host, wait until it accepts connections,
/// and check that nothing waits for a restart any more.
pub(super) async fn restart(
    engine: &Engine,
    target: &str,
    facts: &serde_json::Map<String, Value>,
    works: &[Work],
) -> Result<()> {
    let (script, host) = engine.render_restart(target, facts)?;
    let mut shell = host.connect(None).await?;
    tokio::time::timeout(RESTART_TIMEOUT, shell.execute(&script, false))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the restart did not finish within {} s",
                RESTART_TIMEOUT.as_secs()
            )
        })??;
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
pub(super) async fn connect_after_restart(
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

/// Restart `target` for `works` (which wait for it) and record the restart
/// in its ledger as an update of the instance itself.
pub(super) async fn restart_waiting(
    engine: &Engine,
    target: &str,
    works: &[Work],
    observations: &Observations,
    run_id: &str,
    report: &mut ApplyReport,
    output: &mut Output,
) {
    let started = Instant::now();
    let facts = observations
        .get(target)
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
    let script = engine
        .render_restart(target, &facts)
        .map(|(script, _)| script)
        .unwrap_or_default();
    let result = restart(engine, target, &facts, works).await;
    // Recorded as an update of the instance itself.
    let instance_kind = engine
        .endpoints
        .get(target)
        .and_then(|endpoint| endpoint.profile.instance_kind.clone())
        .unwrap_or_default();
    let change = ResourceChange {
        address: format!("{instance_kind}/{target}"),
        kind: instance_kind.clone(),
        target: target.to_string(),
        database: None,
        action: Action::Update,
        items: vec![crate::model::plan::ItemChange {
            identity: target.to_string(),
            action: Action::Update,
            changes: Vec::new(),
            risks: Vec::new(),
            script,
            host_script: String::new(),
        }],
        observed_fingerprint: String::new(),
        observed_items: BTreeMap::new(),
        desired_fingerprint: String::new(),
        secrets_fingerprint: None,
        drift: crate::model::plan::DriftStatus::Pending,
        blocked: None,
        cause: None,
        checked_at_apply: Vec::new(),
        after_script: String::new(),
        after_through_host: false,
        restart_script: String::new(),
        prune: false,
        record: None,
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
        not_attempted: false,
    };
    record_outcome(engine, &change, &outcome, None, run_id, report).await;
    print_outcome(output, &outcome);
    report.outcomes.push(outcome);
}
