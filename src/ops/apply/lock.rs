//! The apply lock of a target (the engine profile's `lock_try`,
//! `lock_wait` and `lock_release` scripts), taken before anything is read
//! again, with the ledger made ready.

use super::*;

pub(super) fn script_of(engine: &Engine, target: &str, name: &str) -> String {
    engine
        .endpoints
        .get(target)
        .map_or(format!("templates/postgres/{name}.sql"), |endpoint| {
            endpoint.script(name)
        })
}

/// Why `target` is not the server `pin` recorded at plan time (None: it
/// is): its endpoint as the manifests name it now and, when its engine names
/// identity facts, what the server says of itself. Reads nothing when the
/// endpoint already differs; writes nothing.
pub(super) async fn pin_mismatch(
    engine: &Engine,
    target: &str,
    pin: &TargetPin,
) -> Result<Option<String>> {
    let (Some(endpoint), None) = (engine.endpoints.get(target), engine.snapshots.get(target))
    else {
        return Ok(None);
    };
    let Some(mut now) = engine.pin(target, &Default::default()) else {
        return Ok(None);
    };
    if now.endpoint == pin.endpoint && !pin.identity.is_empty() {
        let session = endpoint.connect(None).await?;
        let facts = engine.server_facts(endpoint, &session).await?;
        now.identity = engine
            .pin(target, &facts)
            .map(|pin| pin.identity)
            .unwrap_or_default();
    }
    Ok(pin.differs(target, &now))
}

/// Take the apply lock of `target` (waiting at most the lock timeout) and
/// prepare its ledger; the returned session holds the lock.
pub(super) async fn lock_target(
    engine: &Engine,
    target: &str,
    output: &mut Output,
) -> Result<Session> {
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
    // The session's limits, contended or not: the ledger's preparation
    // waits for locks no longer than the apply lock does.
    let timeout_ms = engine.settings.lock_timeout.as_millis() as u64;
    let set = engine.templates.render(
        &endpoint.script("session"),
        &json!({"statement_timeout_ms": timeout_ms + 5_000, "lock_timeout_ms": timeout_ms}),
    )?;
    session.execute(&set, false).await?;
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

/// Release the apply locks this run holds.
pub(super) async fn release_locks(engine: &Engine, locks: BTreeMap<String, Session>) {
    for (target, session) in locks {
        let context = Value::Object(engine.base_context(&target, &Default::default()));
        if let Ok(script) = engine
            .templates
            .render(&script_of(engine, &target, "lock_release"), &context)
        {
            let _ = session.query_json(&script).await;
        }
    }
}
