//! One resource's change: its items diffed against the observed rows,
//! fingerprints for stale-plan checks, deferrals, fixed fields, and a refresh
//! of the ledger's record when only ownership changed. Pure.

use super::*;
use crate::modules::Through;

impl Engine {
    /// What a module's checks and defer rules see for one item: its name,
    /// desired fields, the observed row (even of an object that does not
    /// exist yet; sensitive fields redacted), the server facts, the spec and
    /// the instance.
    pub(crate) fn rule_context(
        &self,
        module: &Module,
        resource: &DesiredResource,
        item: &DesiredItem,
        candidate: Option<&Map<String, Value>>,
        facts: &Map<String, Value>,
    ) -> Value {
        json!({
            "name": item.identity,
            "desired": crate::ops::diff::resolve_latest(module, &item.fields, candidate),
            "observed": candidate.map(|row| redact_row(module, row)),
            "facts": facts,
            "spec": redact_spec(module, &resource.spec),
            "instance": self.instances.get(&resource.target),
        })
    }

    /// The module's checks that refuse the item in `context` (each message
    /// with its detail), and those that could not be evaluated: a broken
    /// check must not pass silently.
    pub(crate) fn refusing_checks(
        &self,
        module: &Module,
        identity: &str,
        context: &Value,
    ) -> (Vec<String>, Vec<String>) {
        let mut refused = Vec::new();
        let mut broken = Vec::new();
        for check in &module.checks {
            match self.templates.evaluate_condition(&check.refuse, context) {
                Ok(false) => {}
                Ok(true) => {
                    let detail = check
                        .detail
                        .as_ref()
                        .and_then(|detail| self.templates.evaluate_text(detail, context).ok())
                        .map(|detail| format!(": {detail}"))
                        .unwrap_or_default();
                    refused.push(format!("{identity} {}{detail}", check.message));
                }
                Err(error) => broken.push(format!(
                    "{identity}: the module's check could not be evaluated: {error:#}"
                )),
            }
        }
        (refused, broken)
    }

    pub fn plan_resource(
        &self,
        resource: &DesiredResource,
        observations: &Observations,
    ) -> ResourceChange {
        self.plan_resource_seeing(resource, observations, true)
    }

    /// Plan `resource`; with `see_rows` false, as if what it names did not
    /// exist yet (as inside a database that does not exist yet): its
    /// actions are then decided by apply when it reaches the resource.
    pub(super) fn plan_resource_seeing(
        &self,
        resource: &DesiredResource,
        observations: &Observations,
        see_rows: bool,
    ) -> ResourceChange {
        let mut change = ResourceChange {
            address: resource.address.clone(),
            kind: resource.kind.clone(),
            target: resource.target.clone(),
            database: resource.database.clone(),
            action: Action::NoOp,
            items: Vec::new(),
            observed_fingerprint: String::new(),
            observed_items: BTreeMap::new(),
            desired_fingerprint: desired_fingerprint(resource),
            secrets_fingerprint: self.secrets_fingerprint(resource),
            drift: DriftStatus::InSync,
            blocked: resource.blocked.clone(),
            cause: resource.cause.clone(),
            checked_at_apply: Vec::new(),
            after_script: String::new(),
            after_through_host: false,
            restart_script: String::new(),
            prune: false,
            record: None,
        };
        if change.blocked.is_some() {
            return change;
        }
        let Some(module) = self.module(&resource.kind, &resource.target) else {
            return change;
        };
        let observation = match observations.get(&resource.target) {
            Some(Ok(observation)) => observation,
            Some(Err(failure)) => {
                change.blocked = Some(Blocked::DiscoveryFailed(failure.message.clone()));
                change.cause = Some(failure.cause.clone());
                return change;
            }
            None => {
                change.blocked = Some(Blocked::DiscoveryFailed(format!(
                    "{} was not discovered",
                    resource.target
                )));
                return change;
            }
        };
        let scope = (resource.kind.clone(), resource.database.clone());
        // Unknown when the database does not exist yet: then nothing can be
        // missing from the server, only not created yet.
        let rows_known = see_rows && observation.rows.contains_key(&scope);
        let rows = observation
            .rows
            .get(&scope)
            .filter(|_| see_rows)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut cannot_change = Vec::new();
        let mut unknown = Vec::new();
        // An action through a host that cannot be reached would fail after
        // the others ran: nothing of the resource runs.
        if module.runs_through_host()
            && let Err(error) = self.host_endpoint(&resource.target)
        {
            unknown.push(format!(
                "{} runs actions on the host of {}: {error:#}",
                resource.address, resource.target
            ));
        }
        let mut deferred = Vec::new();
        let mut refused = Vec::new();
        let mut observed_items = BTreeMap::new();
        for item in &resource.items {
            let candidate = find_row(rows, &item.identity);
            let context = self.rule_context(module, resource, item, candidate, &observation.facts);
            let (refusing, broken) = self.refusing_checks(module, &item.identity, &context);
            refused.extend(refusing);
            unknown.extend(broken);
            for rule in &module.defer {
                let defer = match self.templates.evaluate_condition(&rule.when, &context) {
                    Ok(defer) => defer,
                    Err(error) => {
                        unknown.push(format!(
                            "{}: the module's defer rule could not be evaluated: {error:#}",
                            item.identity
                        ));
                        false
                    }
                };
                if defer {
                    let message = self
                        .templates
                        .evaluate_text(&rule.message, &context)
                        .unwrap_or_else(|error| format!("{error:#}"));
                    deferred.push(format!("{} {message}", item.identity));
                }
            }
            let observed = candidate.filter(|row| module.row_exists(row));
            observed_items.insert(
                item.identity.clone(),
                diff::fingerprint(&observed_fields(module, Some(item), observed)),
            );
            if candidate.is_none()
                && rows_known
                && let Some(rule) = &module.missing
                && self
                    .templates
                    .evaluate_condition(&rule.refuse, &json!({"name": item.identity}))
                    .unwrap_or(false)
            {
                unknown.push(format!("{} {}", item.identity, rule.message));
            }
            let replace_requested = self.settings.replace.contains(&resource.address);
            let mut item_diff = diff::diff_item(module, item, observed, replace_requested);
            if module.reapply_when_changed && item_diff.action == Some(Action::NoOp) {
                let now = &observed_items[&item.identity];
                let recorded = observation
                    .ledger
                    .get(&resource.address)
                    .and_then(|entry| entry.observed_items.as_ref())
                    .and_then(|items| items.get(&item.identity));
                if recorded.is_some_and(|then| then != now) {
                    item_diff.action = Some(Action::Update);
                    item_diff.changes.push(crate::model::plan::FieldChange {
                        field: "state".into(),
                        before: json!("(as it was after the last apply)"),
                        after: observed
                            .and_then(|row| row.get("state"))
                            .cloned()
                            .unwrap_or(Value::Null),
                        added: Vec::new(),
                        removed: Vec::new(),
                        text_diff: None,
                        forces_replace: None,
                    });
                }
            }
            cannot_change.extend(item_diff.cannot_change.iter().cloned());
            if item_diff.action == Some(Action::Replace)
                && let Some(row) = observed
            {
                let blockers = module.delete_blockers(row);
                if !blockers.is_empty() {
                    refused.push(format!(
                        "{} cannot be dropped to be created again now: {}",
                        item.identity,
                        blockers.join("; ")
                    ));
                }
            }
            let planned = self.plan_item(
                module,
                resource,
                item,
                observed,
                &item_diff,
                &observation.facts,
            );
            change.action = change.action.combine(planned.action);
            change.items.push(planned);
        }
        // What the previous definition applied and this one does not manage:
        // undone by this update (dropped items of kinds with items: with --prune).
        if let Some(removed) = observation
            .superseded
            .iter()
            .find(|superseded| superseded.of == resource.address)
            .filter(|superseded| !superseded.needs_prune || self.settings.prune)
            .map(|superseded| &superseded.resource)
        {
            let delete = ItemDiff {
                action: Some(Action::Delete),
                ..ItemDiff::default()
            };
            for item in self.prune_remaining(module, removed, rows, &observation.facts) {
                let row = find_row(rows, &item.identity);
                change.items.push(self.plan_item(
                    module,
                    removed,
                    item,
                    row,
                    &delete,
                    &observation.facts,
                ));
                change.action = change.action.combine(Action::Update);
            }
        }
        // Nothing to change live, but the ledger (the ownership of kinds
        // without a marker) records another spec: record this one, so that a
        // later prune acts on what the manifests say now.
        if change.action == Action::NoOp
            && let Some(recorded) = observation
                .ledger
                .get(&resource.address)
                .and_then(|entry| entry.spec.as_ref())
        {
            let current = recorded_spec(module, &resource.spec);
            // A marker-owned kind's `destroyWith` field (a schema's
            // dropCascade) is read from the ledger at prune: recorded too.
            let destroy_with_changed = module
                .ownership
                .as_ref()
                .and_then(|ownership| ownership.destroy_with.as_ref())
                .is_some_and(|field| current.get(field) != recorded.get(field));
            let owned = destroy_with_changed
                || self
                    .ledger_module(&resource.kind, &resource.target, &current)
                    .is_some()
                || self
                    .ledger_module(&resource.kind, &resource.target, recorded)
                    .is_some();
            let mut recorded = recorded.clone();
            // Dropped items still owned are carried in the recorded spec.
            if let Some(field) = &module.items
                && let (Some(Value::Object(kept)), Some(Value::Object(now))) =
                    (recorded.get_mut(field), current.get(field))
            {
                kept.retain(|name, _| now.contains_key(name));
            }
            if owned && recorded != current {
                change.action = Action::Update;
                change.items.push(ItemChange {
                    identity: "(ledger)".into(),
                    action: Action::Update,
                    changes: vec![crate::model::plan::FieldChange {
                        field: "spec".into(),
                        before: json!("as recorded at the last apply"),
                        after: json!("as the manifests say now (nothing changes on the server)"),
                        added: Vec::new(),
                        removed: Vec::new(),
                        text_diff: None,
                        forces_replace: None,
                    }],
                    risks: Vec::new(),
                    script: String::new(),
                    host_script: String::new(),
                });
            }
        }
        change.observed_fingerprint = diff::fingerprint(&json!(observed_items));
        change.observed_items = observed_items;
        if change.action != Action::NoOp {
            change.after_script = match self.render_after(module, resource, &observation.facts) {
                Ok(step) => {
                    change.after_through_host = step
                        .as_ref()
                        .is_some_and(|step| step.through == Through::Host);
                    step.map(|step| step.script).unwrap_or_default()
                }
                Err(error) => format!("-- cannot render: {error:#}\n"),
            };
        }
        let waits_for_restart = change
            .risks()
            .any(|risk| risk.mark == crate::modules::RiskMark::Restart);
        if waits_for_restart && self.restart_allowed(module, resource) {
            change.restart_script = match self.render_restart(&resource.target, &observation.facts)
            {
                Ok((script, _)) => script,
                Err(error) => format!("# cannot restart: {error:#}\n"),
            };
        }
        if !deferred.is_empty() {
            change.blocked = Some(Blocked::Deferred(deferred.join("\n")));
            change.action = Action::NoOp;
            change.items.clear();
            return change;
        } else if !unknown.is_empty() {
            unknown.extend(refused);
            change.blocked = Some(Blocked::Unresolvable(unknown.join("\n")));
        } else if !refused.is_empty() {
            change.blocked = Some(Blocked::Refused(refused.join("\n")));
        } else if !cannot_change.is_empty() {
            change.blocked = Some(Blocked::CannotChange(format!(
                "{}\nhint: to drop and recreate it (losing what it holds), run with --replace {}",
                cannot_change.join("\n"),
                resource.address
            )));
        }
        if change.action != Action::NoOp {
            // Drift: an item applied before no longer reads as it read then.
            let drifted = observation
                .ledger
                .get(&resource.address)
                .and_then(|entry| entry.observed_items.as_ref())
                .is_some_and(|recorded| {
                    change.observed_items.iter().any(|(identity, now)| {
                        recorded.get(identity).is_some_and(|then| then != now)
                    })
                });
            change.drift = if drifted {
                DriftStatus::Drifted
            } else {
                DriftStatus::Pending
            };
        } else if change.blocked.is_none()
            && let Some(started) = observation.interrupted.get(&resource.address)
        {
            // What an interrupted apply converged: recorded now, or a later
            // change by hand would read as pending, not drift.
            change.record = Some(format!(
                "an apply{} was interrupted while converging it, before it recorded the outcome; the server holds what the manifests ask: apply records it in the ledger",
                started
                    .recorded_at
                    .as_deref()
                    .map(|at| format!(" started at {at}"))
                    .unwrap_or_default()
            ));
        }
        change
    }

    /// The module's `refreshWhen`: resource `index`, unchanged itself, is
    /// updated with `refresh` when one of its dependencies changes that way.
    pub(crate) fn plan_refresh(
        &self,
        index: usize,
        changes: &mut [ResourceChange],
        observations: &Observations,
    ) {
        let resource = &self.resources[index];
        let Some(module) = self.module(&resource.kind, &resource.target) else {
            return;
        };
        let Some(condition) = &module.refresh_when else {
            return;
        };
        if changes[index].action != Action::NoOp || changes[index].blocked.is_some() {
            return;
        }
        let Some(Ok(observation)) = observations.get(&resource.target) else {
            return;
        };
        let rows = observation
            .rows
            .get(&(resource.kind.clone(), resource.database.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let causes: Vec<String> = resource
            .dependencies
            .iter()
            .map(|&dependency| &changes[dependency])
            .filter(|dependency| dependency.action != Action::NoOp && dependency.blocked.is_none())
            .filter(|dependency| {
                resource.items.iter().any(|item| {
                    let context = json!({
                        "dependency": {
                            "kind": dependency.kind,
                            "address": dependency.address,
                            "action": dependency.action.name(),
                            "changed": dependency
                                .items
                                .iter()
                                .flat_map(|item| item.changes.iter().map(|change| change.field.as_str()))
                                .collect::<BTreeSet<_>>(),
                        },
                        "desired": item.fields,
                    });
                    self.templates
                        .evaluate_condition(condition, &context)
                        .unwrap_or(false)
                })
            })
            .map(|dependency| dependency.address.clone())
            .collect();
        if causes.is_empty() {
            return;
        }
        let item_diff = ItemDiff {
            action: Some(Action::Update),
            changes: vec![crate::model::plan::FieldChange {
                field: "refresh".into(),
                before: Value::Null,
                after: json!(format!("after {}", causes.join(", "))),
                added: Vec::new(),
                removed: Vec::new(),
                text_diff: None,
                forces_replace: None,
            }],
            cannot_change: Vec::new(),
            unreadable: Vec::new(),
        };
        let change = &mut changes[index];
        change.items = resource
            .items
            .iter()
            .map(|item| {
                let observed = find_row(rows, &item.identity).filter(|row| module.row_exists(row));
                self.plan_item(
                    module,
                    resource,
                    item,
                    observed,
                    &item_diff,
                    &observation.facts,
                )
            })
            .collect();
        change.action = Action::Update;
        change.drift = DriftStatus::Pending;
    }

    pub(crate) fn plan_item(
        &self,
        module: &Module,
        resource: &DesiredResource,
        item: &DesiredItem,
        observed: Option<&Map<String, Value>>,
        item_diff: &ItemDiff,
        facts: &Map<String, Value>,
    ) -> ItemChange {
        let action = item_diff.action.unwrap_or(Action::NoOp);
        let changed = item_diff.changed_fields();
        let risk_context = json!({
            "spec": redact_spec(module, &resource.spec),
            "action": action.name(),
            "desired": item.fields,
            "observed": observed.map(|row| redact_row(module, row)),
            "changed": changed,
            "name": item.identity,
            "facts": facts,
            "instance": self.instances.get(&resource.target),
            "destroy": self.destroys(module, resource),
        });
        let mut risks: Vec<Risk> = item_diff
            .unreadable
            .iter()
            .map(|field| Risk {
                mark: crate::modules::RiskMark::Unverified,
                message: format!(
                    "{field} is not in the snapshot (a snapshot never holds secrets): not compared"
                ),
            })
            .collect();
        for rule in &module.risks {
            match self.templates.evaluate_condition(&rule.when, &risk_context) {
                Ok(true) => {
                    let detail = rule
                        .detail
                        .as_ref()
                        .and_then(|detail| self.templates.evaluate_text(detail, &risk_context).ok())
                        .map(|detail| format!(": {detail}"))
                        .unwrap_or_default();
                    risks.push(Risk {
                        mark: rule.mark,
                        message: format!("{}{detail}", rule.message),
                    })
                }
                Ok(false) => {}
                Err(error) => risks.push(Risk {
                    mark: rule.mark,
                    message: format!(
                        "{} (the module's condition failed: {error:#})",
                        rule.message
                    ),
                }),
            }
        }
        let (mut script, mut host_script) = (String::new(), String::new());
        if action != Action::NoOp && item_diff.cannot_change.is_empty() {
            match self.render_item(
                module,
                resource,
                item,
                observed,
                item_diff,
                facts,
                RenderMode::Display,
            ) {
                Ok(steps) => {
                    for step in steps {
                        match step.through {
                            Through::Target => script.push_str(&step.script),
                            Through::Host => host_script.push_str(&step.script),
                        }
                    }
                }
                Err(error) => script = format!("-- cannot render: {error:#}\n"),
            }
        }
        ItemChange {
            identity: item.identity.clone(),
            action,
            changes: item_diff.changes.clone(),
            risks,
            script,
            host_script,
        }
    }
}

/// Observed values of every compared field of the module, in a stable
/// order (what fingerprints cover). A sensitive value enters only as its
/// hash; a plain secret read back from the server (a subscription's
/// password) only as whether it matches the manifest's, since a hash of a
/// plain password in a plan file would let anyone test guesses offline.
pub(crate) fn observed_fields(
    module: &Module,
    item: Option<&DesiredItem>,
    observed: Option<&Map<String, Value>>,
) -> Value {
    let Some(observed) = observed else {
        return Value::Null;
    };
    let fields: BTreeMap<&str, Value> = module
        .fields
        .iter()
        .filter(|(_, rule)| rule.compare != Compare::Never)
        .map(|(field, rule)| {
            let value = observed.get(field).cloned().unwrap_or(Value::Null);
            let value = match (rule.sensitive, rule.compare, &value) {
                (_, _, Value::Null) | (false, _, _) => value,
                (true, Compare::Secret, Value::String(text)) => {
                    let secret = item.and_then(|item| item.secrets.get(field));
                    json!({ "matches": secret.map(|secret| secret == text) })
                }
                (true, Compare::BinarySecret, Value::String(text)) => {
                    let secret = item.and_then(|item| item.secrets.get(field));
                    json!({ "matches": secret.map(|secret| secret.trim().eq_ignore_ascii_case(text)) })
                }
                (true, _, _) => Value::String(diff::fingerprint(&value)),
            };
            (field.as_str(), value)
        })
        .collect();
    json!(fields)
}

impl Engine {
    /// The fingerprint of the secret values `resource` uses (None: it uses
    /// none), from their keyed hashes: never the values themselves.
    fn secrets_fingerprint(&self, resource: &DesiredResource) -> Option<String> {
        let hashes: BTreeMap<&str, BTreeMap<&str, String>> = resource
            .items
            .iter()
            .filter(|item| !item.secrets.is_empty())
            .map(|item| {
                let fields = item
                    .secrets
                    .iter()
                    .map(|(field, value)| (field.as_str(), self.secret_hasher.hash(value)))
                    .collect();
                (item.identity.as_str(), fields)
            })
            .collect();
        (!hashes.is_empty()).then(|| diff::fingerprint(&json!(hashes)))
    }
}

/// The desired state's fingerprint. A secret enters only as its reference
/// (`{fromEnv: APP_PASSWORD}`), never its value: a fingerprint in a plan file
/// or a ledger must not allow guessing the secret. A secret rotated in its
/// store shows as a pending change (the server's verifier no longer matches,
/// but the live state is still what was applied).
fn desired_fingerprint(resource: &DesiredResource) -> String {
    let items: BTreeMap<String, Value> = resource
        .items
        .iter()
        .map(|item| {
            let mut fields: BTreeMap<String, Value> = item
                .fields
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            for field in item.secrets.keys() {
                let reference = resource.spec.get(field).cloned().unwrap_or(Value::Null);
                fields.insert(field.clone(), json!({"secret": reference}));
            }
            (item.identity.clone(), json!(fields))
        })
        .collect();
    diff::fingerprint(&json!(items))
}
