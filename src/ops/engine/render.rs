//! Rendering: the single place where secrets meet scripts. Plans render
//! secrets as `(sensitive)`; apply renders the values the module sends.

use super::*;

impl Engine {
    /// The scripts of one item's action, each with whether it runs in a transaction.
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
    ) -> Result<Vec<(String, bool)>> {
        let action = item_diff.action.unwrap_or(Action::NoOp);
        let mut desired = item.fields.clone();
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
                    && desired.contains_key(field)
                    && !item.secrets.contains_key(field)
                {
                    desired.insert(
                        field.clone(),
                        Value::String(template::SENSITIVE_TOKEN.into()),
                    );
                }
            }
        }
        let set_changes: Map<String, Value> = item_diff
            .changes
            .iter()
            .map(|change| {
                (
                    change.field.clone(),
                    json!({"added": change.added, "removed": change.removed}),
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
            let script = self.templates.render(
                &module.template(step.file()),
                &Value::Object(context.clone()),
            )?;
            let script = match mode {
                RenderMode::Display => template::reveal_placeholders(&script, module.dialect),
                RenderMode::Execute => script,
            };
            scripts.push((script, step.transaction(&resource.spec)));
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

    /// The shell script that restarts `target`, from its host access.
    pub fn render_restart(&self, target: &str, facts: &Map<String, Value>) -> Result<String> {
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
        match self.hosts.get(target) {
            Some(crate::ops::targets::HostAccess::Local {
                data_directory,
                service_name,
            }) => {
                let data_directory = data_directory.clone().or_else(|| {
                    facts
                        .get("data_directory")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                if data_directory.is_none() && service_name.is_none() {
                    anyhow::bail!(
                        "the data directory of {target} is unknown: set dataDirectory or serviceName on the PostgresInstance, or connect as a role that may read data_directory"
                    );
                }
                let mut context = self.base_context(target, facts);
                context.insert("data_directory".into(), json!(data_directory));
                context.insert("service_name".into(), json!(service_name));
                self.templates.render(
                    &format!("{}/{restart}", endpoint.template_folder()),
                    &Value::Object(context),
                )
            }
            Some(crate::ops::targets::HostAccess::Unavailable(reason)) => anyhow::bail!("{reason}"),
            None => anyhow::bail!("no host known for {target}"),
        }
    }

    /// The `after` script of a resource (e.g. reload), if its module has one.
    pub fn render_after(
        &self,
        module: &Module,
        resource: &DesiredResource,
        facts: &Map<String, Value>,
    ) -> Result<Option<(String, bool)>> {
        let Some(after) = &module.actions.after else {
            return Ok(None);
        };
        let mut context = self.base_context(&resource.target, facts);
        context.insert("spec".into(), redact_spec(module, &resource.spec));
        context.insert("lead".into(), json!(resource.lead));
        let script = self
            .templates
            .render(&module.template(after.file()), &Value::Object(context))?;
        if script.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some((script, after.transaction(&resource.spec))))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// For people: secrets as `(sensitive)`.
    Display,
    /// For the server: secrets in the form the module sends them.
    Execute,
}
