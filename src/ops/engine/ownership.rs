//! Ownership: what fleetform owns on a target (a marker on the object, or
//! the ledger), what left the manifests (orphans rebuilt from the spec the
//! ledger recorded), what a changed definition superseded, and what a prune
//! deletes. Pure: reads observations only.

use super::*;
use crate::model::ResourceAddress;

impl Engine {
    /// Identities the manifests' resources claim on `target`: (kind,
    /// database, identity).
    fn claims(&self, target: &str) -> BTreeSet<(String, Option<String>, String)> {
        self.resources
            .iter()
            .filter(|resource| resource.target == target)
            .flat_map(|resource| {
                resource.items.iter().map(|item| {
                    (
                        resource.kind.clone(),
                        resource.database.clone(),
                        item.identity.clone(),
                    )
                })
            })
            .collect()
    }

    /// (kind, database, identity) of the objects inside databases that the
    /// ledger of `target` says a resource applied (its last entry, unless
    /// a deletion, read with the spec recorded then), with that spec.
    pub(crate) fn recorded(
        &self,
        target: &str,
        ledger: &BTreeMap<String, LedgerEntry>,
    ) -> BTreeMap<(String, Option<String>, String), Value> {
        let mut recorded = BTreeMap::new();
        for entry in ledger.values() {
            let (Some(kind), Some(spec), Some(database)) =
                (&entry.kind, &entry.spec, &entry.database)
            else {
                continue;
            };
            if entry.action == Action::Delete.name() {
                continue;
            }
            let Some(module) = self
                .module(kind, target)
                .filter(|module| module.scope == crate::modules::Scope::Database)
            else {
                continue;
            };
            let Some(address) = ResourceAddress::parse(&entry.resource) else {
                continue;
            };
            let Ok(items) = desired_items(
                module,
                spec,
                &address.name,
                &self.settings,
                &self.templates,
                true,
            ) else {
                continue;
            };
            recorded.extend(items.into_iter().map(|item| {
                (
                    (kind.clone(), Some(database.clone()), item.identity),
                    spec.clone(),
                )
            }));
        }
        recorded
    }

    /// The ledger-owned module of `kind`, if fleetform still owns what a
    /// resource recorded with `spec` applied (`ownership.when`).
    pub(crate) fn ledger_module(&self, kind: &str, target: &str, spec: &Value) -> Option<&Module> {
        let module = self.module(kind, target)?;
        let ownership = module
            .ownership
            .as_ref()
            .filter(|ownership| ownership.ledger)?;
        let owned = ownership.when.as_ref().is_none_or(|condition| {
            self.templates
                .evaluate_condition(condition, &json!({ "spec": spec }))
                .unwrap_or(false)
        });
        owned.then_some(module)
    }

    /// Resources of ledger-owned kinds that the ledger of `target` says were
    /// applied and that are no longer in the manifests, rebuilt from the spec
    /// recorded then, without the items a resource of the manifests now
    /// claims. None with --target: the manifests are only partly loaded.
    pub(crate) fn orphans(
        &self,
        target: &str,
        ledger: &BTreeMap<String, LedgerEntry>,
    ) -> Vec<DesiredResource> {
        if !self.settings.whole_environment() {
            return Vec::new();
        }
        let managed: BTreeSet<&str> = self
            .resources
            .iter()
            .map(|resource| resource.address.as_str())
            .collect();
        let claims = self.claims(target);
        let mut orphans = Vec::new();
        for entry in ledger.values() {
            if entry.action == Action::Delete.name() || managed.contains(entry.resource.as_str()) {
                continue;
            }
            let (Some(kind), Some(spec)) = (&entry.kind, &entry.spec) else {
                continue;
            };
            let Some(module) = self.ledger_module(kind, target, spec) else {
                continue;
            };
            let Some(address) = ResourceAddress::parse(&entry.resource).filter(|address| {
                address.kind == *kind && address.target.as_deref() == Some(target)
            }) else {
                tracing::warn!(
                    resource = %entry.resource,
                    target = %target,
                    "the ledger records a resource whose address is not one of this target; it is not pruned"
                );
                continue;
            };
            match desired_items(
                module,
                spec,
                &address.name,
                &self.settings,
                &self.templates,
                true,
            ) {
                Ok(mut items) => {
                    items.retain(|item| {
                        !claims.contains(&(
                            kind.clone(),
                            entry.database.clone(),
                            item.identity.clone(),
                        ))
                    });
                    if items.is_empty() {
                        continue;
                    }
                    orphans.push(DesiredResource {
                        address: entry.resource.clone(),
                        kind: kind.clone(),
                        name: address.name.clone(),
                        target: target.to_string(),
                        lead: None,
                        database: entry.database.clone(),
                        spec: spec.clone(),
                        items,
                        dependencies: Vec::new(),
                        blocked: None,
                        cause: None,
                    })
                }
                Err(error) => tracing::warn!(
                    resource = %entry.resource,
                    error = %format!("{error:#}"),
                    "cannot rebuild a resource recorded in the ledger; it is not pruned"
                ),
            }
        }
        orphans
    }

    /// What the manifests' resources of ledger-owned kinds superseded on
    /// `target`: for kinds with items, the items the recorded spec has and
    /// the manifests dropped (reset with --prune, owned until then); for the
    /// others, the previous definition when it managed something else (its
    /// `ownership.key`, database or identities differ), undone by the update.
    /// Items another resource of the manifests claims are left to it.
    pub(crate) fn superseded(
        &self,
        target: &str,
        ledger: &BTreeMap<String, LedgerEntry>,
    ) -> Vec<Superseded> {
        let claims = self.claims(target);
        let mut superseded = Vec::new();
        for resource in self
            .resources
            .iter()
            .filter(|resource| resource.target == target && resource.blocked.is_none())
        {
            let Some(entry) = ledger.get(&resource.address) else {
                continue;
            };
            let Some(recorded) = entry.spec.as_ref() else {
                continue;
            };
            let Some(module) = self.ledger_module(&resource.kind, target, recorded) else {
                continue;
            };
            let claimed = |identity: &str| {
                claims.contains(&(
                    resource.kind.clone(),
                    entry.database.clone(),
                    identity.to_string(),
                ))
            };
            let name = resource.name.as_str();
            let (spec, needs_prune) = match &module.items {
                Some(items_field) => {
                    let dropped: Map<String, Value> = recorded
                        .get(items_field)
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .filter(|(key, _)| {
                            let source = module.item_sources.first();
                            let identity = source
                                .and_then(|source| {
                                    entry_identity(source, recorded, key, &self.templates).ok()
                                })
                                .unwrap_or_else(|| key.to_string());
                            !claimed(&identity)
                        })
                        .map(|(identity, value)| (identity.clone(), value.clone()))
                        .collect();
                    if dropped.is_empty() {
                        continue;
                    }
                    let mut spec = recorded.clone();
                    spec[items_field.as_str()] = Value::Object(dropped);
                    (spec, true)
                }
                None => {
                    let key = |spec: &Value| {
                        // Identities only: a recorded spec holds no secrets.
                        let identities = desired_items(
                            module,
                            spec,
                            name,
                            &self.settings,
                            &self.templates,
                            true,
                        )
                        .map(|items| {
                            items
                                .into_iter()
                                .map(|item| item.identity)
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                        let declared = module
                            .ownership
                            .as_ref()
                            .and_then(|ownership| ownership.key.as_ref())
                            .and_then(|key| {
                                self.templates
                                    .evaluate_text(key, &json!({ "spec": spec }))
                                    .ok()
                            });
                        (spec.get("database").cloned(), identities, declared)
                    };
                    if key(recorded) == key(&recorded_spec(module, &resource.spec)) {
                        continue;
                    }
                    (recorded.clone(), false)
                }
            };
            let Ok(mut items) =
                desired_items(module, &spec, name, &self.settings, &self.templates, true)
            else {
                continue;
            };
            let current: BTreeSet<&str> = resource
                .items
                .iter()
                .map(|item| item.identity.as_str())
                .collect();
            items.retain(|item| {
                needs_prune || !claimed(&item.identity) || current.contains(item.identity.as_str())
            });
            for item in &mut items {
                // The same name as the current item: told apart in discovery and the plan.
                if current.contains(item.identity.as_str()) {
                    item.identity = format!("{} (before)", item.identity);
                }
            }
            if items.is_empty() {
                continue;
            }
            superseded.push(Superseded {
                of: resource.address.clone(),
                resource: DesiredResource {
                    address: format!("{}#before", resource.address),
                    kind: resource.kind.clone(),
                    name: resource.name.clone(),
                    target: target.to_string(),
                    lead: resource.lead.clone(),
                    database: entry.database.clone(),
                    spec,
                    items,
                    dependencies: Vec::new(),
                    blocked: None,
                    cause: None,
                },
                needs_prune,
            });
        }
        superseded
    }

    /// The items of a resource being pruned that still hold something to
    /// delete: their object exists and, for ledger-owned kinds, their delete
    /// template renders something to do.
    pub fn prune_remaining<'a>(
        &self,
        module: &Module,
        resource: &'a DesiredResource,
        rows: &[Row],
        facts: &Map<String, Value>,
    ) -> Vec<&'a DesiredItem> {
        let ledger_owned = module
            .ownership
            .as_ref()
            .is_some_and(|ownership| ownership.ledger);
        let delete = ItemDiff {
            action: Some(Action::Delete),
            ..ItemDiff::default()
        };
        resource
            .items
            .iter()
            .filter(|item| {
                let Some(row) = find_row(rows, &item.identity).filter(|row| module.row_exists(row))
                else {
                    return false;
                };
                !ledger_owned
                    || self
                        .render_item(
                            module,
                            resource,
                            item,
                            Some(row),
                            &delete,
                            facts,
                            RenderMode::Display,
                        )
                        .map(|steps| steps.iter().any(|step| !step.script.trim().is_empty()))
                        // A template that fails still has something to say: show it.
                        .unwrap_or(true)
            })
            .collect()
    }

    /// The resource a prune in a plan deletes: the ledger's orphan of that
    /// address, or a stand-in named after the marked live object.
    pub fn prune_subject(
        &self,
        change: &ResourceChange,
        observations: &Observations,
    ) -> Option<DesiredResource> {
        let module = self.module(&change.kind, &change.target)?;
        let ownership = module.ownership.as_ref()?;
        if ownership.ledger {
            let Some(Ok(observation)) = observations.get(&change.target) else {
                return None;
            };
            return observation
                .orphans
                .iter()
                .find(|orphan| orphan.address == change.address)
                .cloned();
        }
        let identity = change.items.first()?.identity.clone();
        let Some(Ok(observation)) = observations.get(&change.target) else {
            return None;
        };
        let recorded = self.recorded(&change.target, &observation.ledger);
        Some(self.marked_prune_resource(
            module,
            &change.target,
            change.database.as_deref(),
            &identity,
            &recorded,
        ))
    }

    /// The stand-in of a marked object being pruned, with what the spec
    /// last applied (`recorded`) says of the module's `destroyWith` field.
    pub(crate) fn marked_prune_resource(
        &self,
        module: &Module,
        target: &str,
        database: Option<&str>,
        identity: &str,
        recorded: &BTreeMap<(String, Option<String>, String), Value>,
    ) -> DesiredResource {
        let mut resource = prune_resource(module, target, database, identity);
        if let Some(field) = module
            .ownership
            .as_ref()
            .and_then(|ownership| ownership.destroy_with.as_ref())
            && let Some(value) = recorded
                .get(&(
                    module.kind.clone(),
                    database.map(str::to_string),
                    identity.to_string(),
                ))
                .and_then(|spec| spec.get(field))
        {
            resource.spec[field.as_str()] = value.clone();
        }
        resource
    }

    /// Whether the prune of `resource` drops what its object holds with it:
    /// named with `--destroy`, or its spec (for a prune, the one last
    /// applied) sets the module's `ownership.destroyWith` field.
    pub(crate) fn destroys(&self, module: &Module, resource: &DesiredResource) -> bool {
        self.settings.destroy.contains(&resource.address)
            || module
                .ownership
                .as_ref()
                .and_then(|ownership| ownership.destroy_with.as_ref())
                .and_then(|field| resource.spec.get(field))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// What dropping the object of `row` would destroy that no module
    /// manages, one line per holder: its own `holds` and, for a database,
    /// what every database-scoped kind holds in it (or that fleetform could
    /// not look inside it).
    fn held(
        &self,
        module: &Module,
        target: &str,
        identity: &str,
        row: &Row,
        observation: &TargetObservation,
    ) -> Vec<String> {
        let holds = |module: &Module, row: &Row, holder: &str| -> Option<String> {
            let field = module.ownership.as_ref()?.holds.as_ref()?;
            let held = row.get(field)?;
            let count = held.get("count").and_then(Value::as_u64).unwrap_or(0);
            let first: Vec<&str> = held
                .get("first")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            (count > 0).then(|| {
                let more = count.saturating_sub(first.len() as u64);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{holder} holds {}{more}", first.join(", "))
            })
        };
        let mut held: Vec<String> = holds(module, row, &format!("{} {identity}", module.kind))
            .into_iter()
            .collect();
        if module
            .ownership
            .as_ref()
            .is_some_and(|ownership| ownership.is_database)
        {
            let mut looked_inside = false;
            for ((kind, database), rows) in &observation.rows {
                if database.as_deref() != Some(identity) {
                    continue;
                }
                let Some(inner) = self
                    .module(kind, target)
                    .filter(|inner| inner.ownership.as_ref().is_some_and(|o| o.holds.is_some()))
                else {
                    continue;
                };
                looked_inside = true;
                for row in rows {
                    let holder = format!("{} {identity}/{}", inner.kind, row_identity(row));
                    held.extend(holds(inner, row, &holder));
                }
            }
            if !looked_inside {
                held.push(format!(
                    "{} {identity}: fleetform could not look inside it (it does not accept connections, or nothing was read there)",
                    module.kind
                ));
            }
        }
        held
    }

    /// The deletion of `resource` (an owned object that left the manifests),
    /// each item against its row in `rows`.
    pub(crate) fn plan_prune(
        &self,
        module: &Module,
        resource: &DesiredResource,
        rows: &[Row],
        observation: &TargetObservation,
    ) -> ResourceChange {
        let item_diff = ItemDiff {
            action: Some(Action::Delete),
            ..ItemDiff::default()
        };
        let mut items = Vec::new();
        let mut observed = BTreeMap::new();
        let mut holdings = Vec::new();
        let mut blockers = Vec::new();
        for item in self.prune_remaining(module, resource, rows, &observation.facts) {
            let Some(row) = find_row(rows, &item.identity) else {
                continue;
            };
            blockers.extend(module.delete_blockers(row));
            let held = self.held(module, &resource.target, &item.identity, row, observation);
            // What it holds is part of what was read: a table added since
            // the plan makes a saved plan stale.
            observed.insert(
                item.identity.clone(),
                json!({"fields": observed_fields(module, None, Some(row)), "holds": held}),
            );
            holdings.extend(held);
            items.push(self.plan_item(
                module,
                resource,
                item,
                Some(row),
                &item_diff,
                &observation.facts,
            ));
        }
        let blocked = if blockers.is_empty() {
            None
        } else {
            Some(Blocked::Refused(format!(
                "cannot be dropped now: {}",
                blockers.join("; ")
            )))
        };
        let blocked = blocked.or_else(|| (!holdings.is_empty() && !self.destroys(module, resource))
            .then(|| {
                let declared = module
                    .ownership
                    .as_ref()
                    .and_then(|ownership| ownership.destroy_with.as_ref())
                    .map(|field| format!(", or set {field}: true on it and apply that before removing it"))
                    .unwrap_or_default();
                Blocked::CannotChange(format!(
                    "dropping it would destroy what fleetform did not create:\n{}\nhint: to drop that too, plan with --destroy {}{declared}",
                    holdings.join("\n"),
                    resource.address
                ))
            }));
        ResourceChange {
            address: resource.address.clone(),
            kind: module.kind.clone(),
            target: resource.target.clone(),
            database: resource.database.clone(),
            action: Action::Delete,
            items,
            observed_fingerprint: diff::fingerprint(&json!(observed)),
            observed_items: BTreeMap::new(),
            desired_fingerprint: diff::fingerprint(&Value::Null),
            secrets_fingerprint: None,
            drift: DriftStatus::Pending,
            blocked,
            cause: None,
            checked_at_apply: Vec::new(),
            after_script: String::new(),
            after_through_host: false,
            restart_script: String::new(),
            prune: true,
            record: None,
        }
    }
}

/// A stand-in desired resource for an owned object that left the manifests;
/// its address is `Kind[live name]@target`.
pub fn prune_resource(
    module: &Module,
    target: &str,
    database: Option<&str>,
    identity: &str,
) -> DesiredResource {
    let live_name = match database {
        Some(database) => format!("{database}/{identity}"),
        None => identity.to_string(),
    };
    DesiredResource {
        // Brackets: a live object's own name, never a manifest handle, so a
        // prune can never be mistaken for a resource of the manifests.
        address: format!("{}[{}]@{}", module.kind, live_name, target),
        kind: module.kind.clone(),
        name: live_name.clone(),
        target: target.to_string(),
        lead: None,
        database: database.map(str::to_string),
        spec: json!({ "database": database }),
        items: vec![DesiredItem {
            identity: identity.to_string(),
            fields: Map::new(),
            secrets: BTreeMap::new(),
        }],
        dependencies: Vec::new(),
        blocked: None,
        cause: None,
    }
}

/// Rows of `resource` (a kind owned by a marker) that carry no marker at
/// all, while the ledger says this owner's apply created the resource
/// (`created`): still fleetform's. Marked as owned, so that the plan
/// counts them as such and the comment written next puts the marker back.
pub fn claim_created(
    module: &crate::modules::Module,
    resource: &DesiredResource,
    rows: &mut [Row],
) {
    let Some(ownership) = module.ownership.as_ref() else {
        return;
    };
    let (Some(field), Some(by)) = (&ownership.field, &ownership.by) else {
        return;
    };
    for item in &resource.items {
        let Some(row) = rows
            .iter_mut()
            .find(|row| row_identity(row) == item.identity)
        else {
            continue;
        };
        if row.get(by).is_none_or(Value::is_null) && row.get(field) == Some(&Value::Bool(false)) {
            row.insert(field.clone(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::engine::tests::{PG_A, engine_of};

    fn settings(name: &str, parameters: &str) -> String {
        format!(
            "---\napiVersion: fleetform/v1\nkind: PostgresSettings\nmetadata: {{name: {name}}}\nspec: {{on: {{instances: [pg-a]}}, parameters: {{{parameters}}}}}\n"
        )
    }

    /// The ledger's latest entry of a PostgresSettings resource on pg-a.
    fn entry(name: &str, action: &str, spec: Value) -> (String, LedgerEntry) {
        let resource = format!("PostgresSettings/{name}@pg-a");
        let entry = LedgerEntry {
            resource: resource.clone(),
            action: action.into(),
            result: None,
            created: false,
            desired_fingerprint: "f".into(),
            observed_fingerprint: None,
            observed_items: None,
            commit: None,
            actor: None,
            recorded_at: None,
            kind: Some("PostgresSettings".into()),
            database: None,
            spec: Some(spec),
        };
        (resource, entry)
    }

    fn identities(resource: &DesiredResource) -> Vec<&str> {
        resource
            .items
            .iter()
            .map(|item| item.identity.as_str())
            .collect()
    }

    /// A resource the ledger says was applied and that left the manifests is
    /// rebuilt from the recorded spec, without the items another resource of
    /// the manifests now claims; a deleted one is not; with --target
    /// (manifests partly loaded) nothing is an orphan.
    #[test]
    fn orphans_are_rebuilt_from_the_ledger_without_claimed_items() {
        let engine = engine_of(
            &(PG_A.to_string() + &settings("tuning", "work_mem: 8MB")),
            false,
            &[],
        );
        let ledger = BTreeMap::from([
            entry(
                "old",
                "update",
                json!({"parameters": {"work_mem": "4MB", "temp_buffers": "16MB"}}),
            ),
            entry("gone", "delete", json!({"parameters": {"jit": "off"}})),
            entry(
                "tuning",
                "create",
                json!({"parameters": {"work_mem": "8MB"}}),
            ),
        ]);
        let orphans = engine.orphans("pg-a", &ledger);
        assert_eq!(orphans.len(), 1, "{orphans:?}");
        assert_eq!(orphans[0].address, "PostgresSettings/old@pg-a");
        assert_eq!(orphans[0].target, "pg-a");
        assert_eq!(identities(&orphans[0]), vec!["temp_buffers"]);

        let partly = engine_of(
            &(PG_A.to_string() + &settings("tuning", "work_mem: 8MB")),
            false,
            &["PostgresSettings/tuning"],
        );
        assert!(partly.orphans("pg-a", &ledger).is_empty());
    }

    /// Items the recorded spec has and the manifests dropped are superseded
    /// (reset with --prune only); items moved to another resource are that
    /// resource's; a spec that did not change supersedes nothing.
    #[test]
    fn dropped_items_are_superseded_unless_another_resource_claims_them() {
        let engine = engine_of(
            &(PG_A.to_string()
                + &settings("tuning", "work_mem: 8MB")
                + &settings("logging", "log_min_duration_statement: 250ms")),
            false,
            &[],
        );
        let ledger = BTreeMap::from([entry(
            "tuning",
            "update",
            json!({"parameters": {"work_mem": "8MB", "temp_buffers": "16MB", "log_min_duration_statement": "1s"}}),
        )]);
        let superseded = engine.superseded("pg-a", &ledger);
        assert_eq!(superseded.len(), 1, "{superseded:?}");
        assert_eq!(superseded[0].of, "PostgresSettings/tuning@pg-a");
        assert!(superseded[0].needs_prune);
        assert_eq!(identities(&superseded[0].resource), vec!["temp_buffers"]);

        let unchanged = BTreeMap::from([entry(
            "tuning",
            "update",
            json!({"parameters": {"work_mem": "8MB"}}),
        )]);
        assert!(engine.superseded("pg-a", &unchanged).is_empty());
    }
}
