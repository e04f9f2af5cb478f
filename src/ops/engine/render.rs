//! Rendering: the single place where secrets meet scripts. Plans render
//! secrets as `(sensitive)`; apply renders the values the module sends.

use super::*;
use crate::modules::Through;

impl Engine {
    /// The scripts of one item's action, each with the connector it runs
    /// through and whether it runs in a transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn render_item(
        &self,
        module: &Module,
        resource: &DesiredResource,
        item: &DesiredItem,
        observed: Option<&Map<String, Value>>,
        item_diff: &ItemDiff,
        facts: &Map<String, Value>,
        mode: RenderMode,
    ) -> Result<Vec<Step>> {
        let action = item_diff.action.unwrap_or(Action::NoOp);
        let mut desired = diff::resolve_latest(module, &item.fields, observed);
        for (field, secret) in &item.secrets {
            let value = match mode {
                RenderMode::Display => template::SENSITIVE_TOKEN.to_string(),
                RenderMode::Execute => match module.field(field).map(|rule| rule.compare) {
                    Some(Compare::ScramPassword) => diff::scram_verifier(secret),
                    _ => secret.clone(),
                },
            };
            desired.insert(field.clone(), Value::String(value));
        }
        if mode == RenderMode::Display {
            // A secret that was not needed (a snapshot target) shows like any other.
            for (field, rule) in &module.fields {
                if rule.sensitive
                    && desired.get(field).is_some_and(|value| !value.is_null())
                    && !item.secrets.contains_key(field)
                {
                    desired.insert(
                        field.clone(),
                        Value::String(template::SENSITIVE_TOKEN.into()),
                    );
                }
            }
        }
        mark_sql(module, &mut desired);
        let set_changes: Map<String, Value> = item_diff
            .changes
            .iter()
            .map(|change| {
                let mut added = change.added.clone();
                let mut removed = change.removed.clone();
                mark_sql_in_change(module, &change.field, &mut added);
                mark_sql_in_change(module, &change.field, &mut removed);
                (
                    change.field.clone(),
                    json!({"added": added, "removed": removed}),
                )
            })
            .collect();
        let mut context = self.base_context(&resource.target, facts);
        context.insert("database".into(), json!(resource.database));
        context.insert("name".into(), json!(item.identity));
        context.insert("lead".into(), json!(resource.lead));
        context.insert("desired".into(), Value::Object(desired));
        context.insert(
            "observed".into(),
            observed.map_or(Value::Null, |row| Value::Object(redact_row(module, row))),
        );
        context.insert("changed".into(), json!(item_diff.changed_fields()));
        context.insert("set_changes".into(), Value::Object(set_changes));
        context.insert("spec".into(), redact_spec(module, &resource.spec));
        context.insert("action".into(), json!(action.name()));
        if action == Action::Delete {
            // Named with --destroy: drop what it holds with it.
            context.insert("destroy".into(), json!(self.destroys(module, resource)));
            // What the manifests keep in the same place, for deletes of
            // ledger-owned kinds that must leave it alone.
            let others: Vec<Value> = self
                .resources
                .iter()
                .filter(|other| {
                    other.kind == resource.kind
                        && other.target == resource.target
                        && other.database == resource.database
                        && other.address != resource.address
                })
                .map(|other| redact_spec(module, &other.spec))
                .collect();
            context.insert("others".into(), Value::Array(others));
            // Every resource of the manifests on the target, for kinds that
            // another kind may also manage (memberships in a role's memberOf).
            let related: Vec<Value> = self
                .resources
                .iter()
                .filter(|other| other.target == resource.target)
                .filter_map(|other| {
                    let other_module = self.module(&other.kind, &other.target)?;
                    Some(json!({
                        "kind": other.kind,
                        "identities": other.items.iter().map(|item| &item.identity).collect::<Vec<_>>(),
                        "spec": redact_spec(other_module, &other.spec),
                    }))
                })
                .collect();
            context.insert("related".into(), Value::Array(related));
        }
        // Owned before this action: marked, or (ledger-owned kinds) applied
        // by fleetform, which is all a template of theirs is ever asked to change.
        let owned_before = match module.ownership.as_ref() {
            Some(ownership) if ownership.ledger => true,
            Some(ownership) => observed
                .zip(ownership.field.as_ref())
                .and_then(|(row, field)| row.get(field))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            None => false,
        };
        let steps: Vec<(&crate::modules::ActionTemplate, bool)> = match action {
            Action::NoOp => Vec::new(),
            Action::Create => vec![(&module.actions.create, true)],
            Action::Update => vec![(
                module
                    .actions
                    .update
                    .as_ref()
                    .unwrap_or(&module.actions.create),
                owned_before,
            )],
            Action::Replace => {
                let mut steps = Vec::new();
                if let Some(delete) = &module.actions.delete {
                    steps.push((delete, owned_before));
                }
                steps.push((&module.actions.create, true));
                steps
            }
            Action::Delete => module
                .actions
                .delete
                .iter()
                .map(|delete| (delete, owned_before))
                .collect(),
        };
        let mut scripts = Vec::new();
        for (step, owned) in steps {
            context.insert("owned".into(), json!(owned));
            let dialect = self.step_dialect(module, step, &resource.target)?;
            let script = self.templates.render(
                &module.template(step.file()),
                &Value::Object(context.clone()),
            )?;
            let script = match mode {
                RenderMode::Display => template::reveal_placeholders(&script, dialect),
                RenderMode::Execute => script,
            };
            scripts.push(Step {
                script,
                transaction: step.transaction(&resource.spec),
                through: step.through(),
            });
        }
        // A replace whose delete and create both run in a transaction over
        // the same connector runs as one script: a create that fails rolls
        // the delete back, and the object stays as it was (a login).
        if action == Action::Replace
            && let [delete, create] = scripts.as_slice()
            && delete.transaction
            && create.transaction
            && delete.through == create.through
        {
            let script = format!("{}\n{}", delete.script.trim_end(), create.script);
            let through = delete.through;
            scripts = vec![Step {
                script,
                transaction: true,
                through,
            }];
        }
        Ok(scripts)
    }

    /// Whether the module may restart the instance for this resource.
    pub fn restart_allowed(&self, module: &Module, resource: &DesiredResource) -> bool {
        module.restart.as_ref().is_some_and(|rule| {
            self.templates
                .evaluate_condition(
                    &rule.allowed,
                    &json!({"spec": redact_spec(module, &resource.spec)}),
                )
                .unwrap_or(false)
        })
    }

    /// Whether a re-discovered item still waits for a restart; `action` is
    /// what this apply just did to it ("no-op" once the restart happened).
    pub fn restart_needed(
        &self,
        module: &Module,
        row: &Map<String, Value>,
        action: Action,
    ) -> bool {
        module.restart.as_ref().is_some_and(|rule| {
            self.templates
                .evaluate_condition(
                    &rule.needed,
                    &json!({"observed": redact_row(module, row), "action": action.name()}),
                )
                .unwrap_or(false)
        })
    }

    /// The host script that restarts `target` (the engine profile's
    /// `restart`, in the dialect of the host it runs on), with the host's
    /// endpoint that runs it.
    pub fn render_restart(
        &self,
        target: &str,
        facts: &Map<String, Value>,
    ) -> Result<(String, &Endpoint)> {
        let endpoint = self
            .endpoints
            .get(target)
            .with_context(|| format!("no instance {target}"))?;
        let Some(restart) = endpoint.profile.restart.as_deref() else {
            anyhow::bail!(
                "fleetform cannot restart {} instances yet ({target})",
                endpoint.profile.description
            );
        };
        let host = self.host_endpoint(target)?;
        let spec = self
            .instances
            .get(target)
            .and_then(|instance| instance.get("spec"));
        let setting = |field: &str| {
            spec.and_then(|spec| spec.get(field))
                .and_then(Value::as_str)
        };
        let data_directory = setting("dataDirectory")
            .or_else(|| facts.get("data_directory").and_then(Value::as_str));
        let service_name = setting("serviceName");
        if data_directory.is_none() && service_name.is_none() {
            anyhow::bail!(
                "the data directory of {target} is unknown: set dataDirectory or serviceName on the instance, or connect as a role that may read data_directory"
            );
        }
        let mut context = self.base_context(target, facts);
        context.insert("data_directory".into(), json!(data_directory));
        context.insert("service_name".into(), json!(service_name));
        let name = format!("{}/{restart}", endpoint.template_folder());
        if crate::template::Dialect::of_file(&name) != Some(host.dialect()) {
            anyhow::bail!(
                "{name} is not a script of {} ({})",
                host.profile.description,
                host.describe()
            );
        }
        let script = self.templates.render(&name, &Value::Object(context))?;
        Ok((script, host))
    }

    /// The `after` script of a resource (e.g. reload), if its module has one.
    pub fn render_after(
        &self,
        module: &Module,
        resource: &DesiredResource,
        facts: &Map<String, Value>,
    ) -> Result<Option<Step>> {
        let Some(after) = &module.actions.after else {
            return Ok(None);
        };
        self.step_dialect(module, after, &resource.target)?;
        let mut context = self.base_context(&resource.target, facts);
        context.insert("spec".into(), redact_spec(module, &resource.spec));
        context.insert("lead".into(), json!(resource.lead));
        let script = self
            .templates
            .render(&module.template(after.file()), &Value::Object(context))?;
        if script.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(Step {
            script,
            transaction: after.transaction(&resource.spec),
            through: after.through(),
        }))
    }

    /// The dialect `step` is written in: the module's, or for a step through
    /// the host, the host's, which must be the template's (a `.sh` script
    /// cannot run on a Windows Server).
    fn step_dialect(
        &self,
        module: &Module,
        step: &crate::modules::ActionTemplate,
        target: &str,
    ) -> Result<template::Dialect> {
        if step.through() == Through::Target {
            return Ok(module.dialect);
        }
        let host = self.host_endpoint(target)?;
        let dialect = template::Dialect::of_file(step.file());
        if dialect != Some(host.dialect()) {
            anyhow::bail!(
                "{} runs through the host of {target}, {}, which does not run .{} scripts",
                step.file(),
                host.describe(),
                dialect.map_or("?", |dialect| dialect.extension())
            );
        }
        Ok(host.dialect())
    }
}

/// One rendered script of an action and how it runs.
#[derive(Clone, Debug)]
pub struct Step {
    pub script: String,
    /// In one transaction (connectors that have them).
    pub transaction: bool,
    /// Through the target's connector or its host's.
    pub through: Through,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// For people: secrets as `(sensitive)`.
    Display,
    /// For the server: secrets in the form the module sends them.
    Execute,
}
