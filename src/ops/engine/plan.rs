//! Plan building: every resource of the manifests, every prune and every
//! unmanaged object of the observations, as one `Plan`. Pure: no IO, no clock.

use super::*;

impl Engine {
    /// The plan for `observations`. Pure. Targets that are one server
    /// declared twice are planned as not read: a prune from one name would
    /// drop what the other's manifests manage, and an apply would wait on
    /// its own lock.
    pub fn build_plan(&self, observations: &Observations, created_at: String) -> Plan {
        let twice = self.declared_twice(observations);
        if twice.is_empty() {
            return self.plan_observations(observations, created_at);
        }
        let mut observations = observations.clone();
        observations.extend(
            twice
                .into_iter()
                .map(|(target, message)| (target, Err(ReadFailure::plain(message)))),
        );
        self.plan_observations(&observations, created_at)
    }

    /// Targets whose engine's `sameServer` facts all match another
    /// target's, each with why.
    fn declared_twice(&self, observations: &Observations) -> BTreeMap<String, String> {
        let mut servers: BTreeMap<(String, Vec<String>), Vec<&str>> = BTreeMap::new();
        for (target, observation) in observations {
            let (Ok(observation), Some(endpoint)) = (observation, self.endpoints.get(target))
            else {
                continue;
            };
            let facts: Option<Vec<String>> = endpoint
                .profile
                .same_server
                .iter()
                .map(|fact| {
                    observation
                        .facts
                        .get(fact)
                        .filter(|value| !value.is_null())
                        .map(Value::to_string)
                })
                .collect();
            match facts {
                Some(facts) if !facts.is_empty() => servers
                    .entry((endpoint.engine().to_string(), facts))
                    .or_default()
                    .push(target),
                _ => {}
            }
        }
        let mut twice = BTreeMap::new();
        for ((engine, facts), targets) in
            servers.into_iter().filter(|(_, targets)| targets.len() > 1)
        {
            let profile = self.engines.get(&engine);
            let described: Vec<String> = profile
                .map(|profile| {
                    profile
                        .same_server
                        .iter()
                        .zip(&facts)
                        .map(|(fact, value)| format!("{fact} {value}"))
                        .collect()
                })
                .unwrap_or_default();
            let message = format!(
                "{} are one server ({}): declare it once; nothing is planned on any of them",
                targets.join(" and "),
                described.join(", ")
            );
            for target in targets {
                twice.insert(target.to_string(), message.clone());
            }
        }
        twice
    }

    /// A resource that a check of its module refuses on what its target
    /// holds now, while resources it depends on (directly or not) change that
    /// target first in this plan, is planned: what it names may be what they
    /// create (a new schema and a grant on it). The check runs again at
    /// apply, just before it, and refuses it then if it still does.
    fn check_again_after_dependencies(
        &self,
        changes: &mut [ResourceChange],
        observations: &Observations,
    ) {
        for index in 0..changes.len() {
            let Some(Blocked::Refused(message)) = &changes[index].blocked else {
                continue;
            };
            let target = &self.resources[index].target;
            let mut before = Vec::new();
            let mut seen = BTreeSet::new();
            let mut stack = self.resources[index].dependencies.clone();
            while let Some(dependency) = stack.pop() {
                if !seen.insert(dependency) {
                    continue;
                }
                stack.extend(self.resources[dependency].dependencies.iter().copied());
                if &self.resources[dependency].target == target && changes[dependency].has_changes()
                {
                    before.push(changes[dependency].address.clone());
                }
            }
            if before.is_empty() {
                continue;
            }
            before.sort();
            let note = format!("checked again when applied, after {}", before.join(", "));
            let checks = message
                .lines()
                .map(|line| format!("{line} ({note})"))
                .collect();
            // What it names is not there yet: planned as inside a database
            // that does not exist yet, its statements decided at apply.
            let mut change = self.plan_resource_seeing(&self.resources[index], observations, false);
            if change.blocked.is_some() {
                continue;
            }
            change.checked_at_apply = checks;
            changes[index] = change;
        }
    }

    fn plan_observations(&self, observations: &Observations, created_at: String) -> Plan {
        let mut resource_changes = Vec::new();
        type Claim = (String, String, Option<String>, String);
        let mut claimed: BTreeSet<Claim> = BTreeSet::new();
        for resource in &self.resources {
            for item in &resource.items {
                claimed.insert((
                    resource.kind.clone(),
                    resource.target.clone(),
                    resource.database.clone(),
                    item.identity.clone(),
                ));
            }
            resource_changes.push(self.plan_resource(resource, observations));
        }
        self.check_again_after_dependencies(&mut resource_changes, observations);
        for index in 0..self.resources.len() {
            self.plan_refresh(index, &mut resource_changes, observations);
        }
        let mut unmanaged = Vec::new();
        let mut prunes = Vec::new();
        // With --target only part of the manifests is loaded: what it does not
        // claim may still be managed, so nothing is listed or pruned.
        let whole_environment = self.settings.whole_environment();
        for (target, observation) in observations.iter().filter(|_| whole_environment) {
            let Ok(observation) = observation else {
                continue;
            };
            let recorded = self.recorded(target, &observation.ledger);
            for ((kind, database), rows) in &observation.rows {
                let Some(module) = self.module(kind, target) else {
                    continue;
                };
                let Some(marker) = module
                    .ownership
                    .as_ref()
                    .and_then(|ownership| ownership.field.as_ref())
                else {
                    continue;
                };
                let prune_order = module.ownership.as_ref().map_or(0, |o| o.prune_order);
                for row in rows.iter().filter(|row| module.row_exists(row)) {
                    let identity = row_identity(row);
                    let claim = (
                        kind.clone(),
                        target.clone(),
                        database.clone(),
                        identity.clone(),
                    );
                    if claimed.contains(&claim) {
                        continue;
                    }
                    let marked = row.get(marker).and_then(Value::as_bool).unwrap_or(false);
                    // Inside a database, a marker alone proves nothing: a
                    // database copied from one fleetform created carries
                    // its markers. The ledger must have recorded it there.
                    let unrecorded = marked
                        && module.scope == crate::modules::Scope::Database
                        && !recorded.contains_key(&(
                            kind.clone(),
                            database.clone(),
                            identity.clone(),
                        ));
                    let owned = marked && !unrecorded;
                    // Marked for another environment: theirs, listed as such.
                    let owned_by = module
                        .ownership
                        .as_ref()
                        .and_then(|ownership| ownership.by.as_ref())
                        .and_then(|by| row.get(by))
                        .and_then(Value::as_str)
                        .filter(|_| !marked)
                        .map(str::to_string);
                    if owned && self.settings.prune {
                        let resource = self.marked_prune_resource(
                            module,
                            target,
                            database.as_deref(),
                            &identity,
                            &recorded,
                        );
                        prunes.push((
                            prune_order,
                            self.plan_prune(
                                module,
                                &resource,
                                std::slice::from_ref(row),
                                observation,
                            ),
                        ));
                    } else {
                        unmanaged.push(UnmanagedObject {
                            kind: kind.clone(),
                            target: target.clone(),
                            identity: match database {
                                Some(database) => format!("{database}/{identity}"),
                                None => identity,
                            },
                            owned,
                            owned_by,
                            unrecorded,
                        });
                    }
                }
            }
        }
        // What the ledger says fleetform applied and the manifests dropped.
        for (target, observation) in observations.iter().filter(|_| whole_environment) {
            let Ok(observation) = observation else {
                continue;
            };
            // Items of the manifests' resources that fleetform applied and
            // the manifests dropped: listed until pruned.
            for removed in observation
                .superseded
                .iter()
                .filter(|superseded| superseded.needs_prune && !self.settings.prune)
                .map(|superseded| &superseded.resource)
            {
                let (Some(module), Some(rows)) = (
                    self.module(&removed.kind, target),
                    observation
                        .rows
                        .get(&(removed.kind.clone(), removed.database.clone())),
                ) else {
                    continue;
                };
                for item in self.prune_remaining(module, removed, rows, &observation.facts) {
                    unmanaged.push(UnmanagedObject {
                        kind: removed.kind.clone(),
                        target: target.clone(),
                        identity: item.identity.clone(),
                        owned: true,
                        owned_by: None,
                        unrecorded: false,
                    });
                }
            }
            for orphan in &observation.orphans {
                let Some(module) = self.module(&orphan.kind, target) else {
                    continue;
                };
                let Some(ownership) = &module.ownership else {
                    continue;
                };
                let Some(rows) = observation
                    .rows
                    .get(&(orphan.kind.clone(), orphan.database.clone()))
                else {
                    continue;
                };
                // Now managed by another resource of the manifests: theirs.
                let taken_over = orphan.items.iter().any(|item| {
                    claimed.contains(&(
                        orphan.kind.clone(),
                        target.clone(),
                        orphan.database.clone(),
                        item.identity.clone(),
                    ))
                });
                if taken_over
                    || self
                        .prune_remaining(module, orphan, rows, &observation.facts)
                        .is_empty()
                {
                    continue;
                }
                if self.settings.prune {
                    prunes.push((
                        ownership.prune_order,
                        self.plan_prune(module, orphan, rows, observation),
                    ));
                } else {
                    for item in &orphan.items {
                        unmanaged.push(UnmanagedObject {
                            kind: orphan.kind.clone(),
                            target: target.clone(),
                            identity: match &orphan.database {
                                Some(database) => format!("{database}/{}", item.identity),
                                None => item.identity.clone(),
                            },
                            owned: true,
                            owned_by: None,
                            unrecorded: false,
                        });
                    }
                }
            }
            for ((kind, database), identities) in &observation.inventory {
                for identity in identities {
                    unmanaged.push(UnmanagedObject {
                        kind: kind.clone(),
                        target: target.clone(),
                        identity: match database {
                            Some(database) => format!("{database}/{identity}"),
                            None => identity.clone(),
                        },
                        owned: false,
                        owned_by: None,
                        unrecorded: false,
                    });
                }
            }
        }
        prunes.sort_by(|left, right| {
            left.0
                .cmp(&right.0)
                .then(left.1.address.cmp(&right.1.address))
        });
        resource_changes.extend(prunes.into_iter().map(|(_, change)| change));
        let mut target_errors: Vec<TargetError> = observations
            .iter()
            .filter_map(|(target, observation)| {
                observation.as_ref().err().map(|failure| TargetError {
                    target: target.clone(),
                    message: failure.message.clone(),
                    cause: Some(failure.cause.clone()),
                })
            })
            .collect();
        for (target, observation) in observations {
            if let Ok(observation) = observation {
                target_errors.extend(self.capability_errors(target, observation));
            }
        }
        let resource_drift = resource_changes
            .iter()
            .filter(|change| change.drift == DriftStatus::Drifted)
            .map(|change| change.address.clone())
            .collect();
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            fleetform_version: env!("CARGO_PKG_VERSION").to_string(),
            environment: self.environment.clone(),
            commit: self.settings.commit.clone(),
            created_at,
            secret_salt: self.secret_hasher.salt_hex(),
            prune: self.settings.prune,
            replace: self.settings.replace.iter().cloned().collect(),
            destroy: self.settings.destroy.iter().cloned().collect(),
            summary: Plan::summarize(&resource_changes),
            resource_drift,
            resource_changes,
            unmanaged,
            target_errors,
            not_planned: self.not_planned.clone(),
            scope: self.settings.scope.clone(),
            targets: observations
                .iter()
                .filter_map(|(target, observation)| {
                    let facts = &observation.as_ref().ok()?.facts;
                    Some((target.clone(), self.pin(target, facts)?))
                })
                .collect(),
        }
    }

    /// What `target` is: its endpoint and the identity facts its engine
    /// names, as `facts` report them.
    pub fn pin(&self, target: &str, facts: &Map<String, Value>) -> Option<TargetPin> {
        let endpoint = self.endpoints.get(target)?;
        let identity = endpoint
            .profile
            .identity
            .iter()
            .map(|fact| {
                (
                    fact.clone(),
                    facts.get(fact).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        Some(TargetPin {
            endpoint: endpoint.describe(),
            identity,
        })
    }

    /// What the manifests ask of `target` that it cannot do, by its
    /// engine's capability rules over the server facts and `instance`.
    fn capability_errors(&self, target: &str, observation: &TargetObservation) -> Vec<TargetError> {
        let Some(endpoint) = self.endpoints.get(target) else {
            return Vec::new();
        };
        let base = json!({
            "facts": observation.facts,
            "instance": self.instances.get(target),
        });
        let mut errors = Vec::new();
        for rule in &endpoint.profile.capabilities {
            let contexts = match &rule.each {
                None => vec![base.clone()],
                Some(each) => match self.templates.evaluate_list(each, &base) {
                    Ok(items) => items
                        .into_iter()
                        .map(|item| {
                            let mut context = base.clone();
                            context["item"] = item;
                            context
                        })
                        .collect(),
                    Err(error) => {
                        errors.push(TargetError {
                            target: target.to_string(),
                            message: format!("a capability rule failed: {error:#}"),
                            cause: None,
                        });
                        continue;
                    }
                },
            };
            for context in contexts {
                match self.templates.evaluate_condition(&rule.refuse, &context) {
                    Ok(false) => {}
                    Ok(true) => errors.push(TargetError {
                        target: target.to_string(),
                        message: self
                            .templates
                            .evaluate_text(&rule.message, &context)
                            .unwrap_or_else(|error| format!("{error:#}")),
                        cause: None,
                    }),
                    Err(error) => errors.push(TargetError {
                        target: target.to_string(),
                        message: format!("a capability rule failed: {error:#}"),
                        cause: None,
                    }),
                }
            }
        }
        errors
    }
}
