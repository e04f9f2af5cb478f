//! The ledger side of an apply: every outcome recorded on its target
//! (through the engine profile's `ledger/record` script), and the rows that
//! change nothing live but say what is no longer fleetform's.

use super::*;

/// A ledger row that changes nothing live: `resource` (or, with `dropped`,
/// some of its items) is no longer fleetform's.
pub(super) fn ledger_note(
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
                host_script: String::new(),
            })
            .collect(),
        observed_fingerprint: String::new(),
        observed_items: BTreeMap::new(),
        desired_fingerprint: String::new(),
        secrets_fingerprint: None,
        drift: crate::model::plan::DriftStatus::InSync,
        blocked: None,
        cause: None,
        checked_at_apply: Vec::new(),
        after_script: String::new(),
        after_through_host: false,
        restart_script: String::new(),
        prune,
        record: None,
    };
    (change, message)
}

/// Write one outcome to the target's ledger; a failure to write is reported.
pub(super) async fn record_outcome(
    engine: &Engine,
    change: &ResourceChange,
    outcome: &ResourceOutcome,
    observed: Option<(String, BTreeMap<String, String>)>,
    run_id: &str,
    report: &mut ApplyReport,
) {
    let target = &change.target;
    // A target that stopped answering cannot take the row: counted for the
    // target (said once), instead of each row waiting out a timeout.
    if let Some(abandoned) = report.abandoned.get_mut(target) {
        abandoned.unrecorded += 1;
        return;
    }
    let row = LedgerRow {
        result: outcome.outcome.name(),
        message: outcome.message.clone(),
        observed,
    };
    if let Err(error) = write_row(engine, change, row, run_id).await {
        report
            .unrecorded
            .push(format!("{}: {error:#}", change.address));
    }
}

/// What a resource's row in the ledger says about this run.
struct LedgerRow {
    result: &'static str,
    message: Option<String>,
    observed: Option<(String, BTreeMap<String, String>)>,
}

/// Record, before the first action of `change`, that this run starts
/// converging it. Without this row nothing runs.
pub(super) async fn record_intent(
    engine: &Engine,
    change: &ResourceChange,
    run_id: &str,
) -> Result<()> {
    let row = LedgerRow {
        result: crate::ops::engine::LEDGER_STARTED,
        message: Some(
            "started; the outcome follows in a later row (none: the apply was interrupted)".into(),
        ),
        observed: None,
    };
    write_row(engine, change, row, run_id)
        .await
        .context("cannot record in the ledger that the apply starts converging it, so it does not")
}

async fn write_row(
    engine: &Engine,
    change: &ResourceChange,
    row: LedgerRow,
    run_id: &str,
) -> Result<()> {
    let target = &change.target;
    let LedgerRow {
        result,
        message,
        observed,
    } = row;
    // Its items the plan deletes are gone (no longer carried as owned).
    let converged = result == Outcome::Converged.name();
    // What ran, as shown in the plan: on the target, then through the host.
    let mut script: String = change
        .items
        .iter()
        .map(|item| item.script.as_str())
        .collect();
    let through_host: String = change
        .items
        .iter()
        .map(|item| item.host_script.as_str())
        .collect();
    if !through_host.is_empty() {
        script = format!("{script}\n[through the host]\n{through_host}");
    }
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
        .filter(|item| item.action == Action::Delete && converged)
        .map(|item| item.identity.as_str())
        .collect();
    context.insert("carry_items".into(), json!(carry_items));
    context.insert("dropped_items".into(), json!(dropped_items));
    context.insert("action".into(), json!(change.action.name()));
    context.insert("result".into(), json!(result));
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
    context.insert("message".into(), json!(message));
    context.insert("script".into(), json!(script));
    // The whole entry as one JSON object, for stores that keep entries as
    // documents (a host's files), and a file name for its resource.
    let entry = json!({
        "run_id": run_id,
        "environment": engine.owner,
        "commit": engine.settings.commit,
        "actor": engine.settings.actor,
        "resource": change.address,
        "action": change.action.name(),
        "result": result,
        "desired_fingerprint": change.desired_fingerprint,
        "observed_fingerprint": observed_fingerprint,
        "observed_items": observed_items_value,
        "message": message,
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
    let endpoint = engine.endpoints.get(target).context("no endpoint")?;
    let rendered = engine
        .templates
        .render(&endpoint.script("ledger/record"), &Value::Object(context))?;
    let mut session = endpoint
        .connect(endpoint.profile.ledger_database.as_deref())
        .await?;
    session.execute(&rendered, true).await
}
