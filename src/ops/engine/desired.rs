//! Desired items: a resource's spec turned into the items and fields its
//! module compares (secrets resolved into memory only), and the redactions
//! that keep secrets out of what is recorded or shown.

use super::*;

pub fn row_identity(row: &Map<String, Value>) -> String {
    row.get("identity")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The row of `identity`, whether or not its object exists (see `Module::row_exists`).
pub fn find_row<'a>(
    rows: &'a [Map<String, Value>],
    identity: &str,
) -> Option<&'a Map<String, Value>> {
    rows.iter()
        .find(|row| row.get("identity").and_then(Value::as_str) == Some(identity))
}

/// The items of a resource: one named by the identity field (or the object's
/// name), or one per entry of the module's `items` map.
pub(crate) fn desired_items(
    module: &Module,
    spec: &Value,
    object_name: &str,
    settings: &RunSettings,
    templates: &Templates,
    // Secrets are not needed: a snapshot target, or a spec the ledger
    // recorded (rebuilt to be pruned or undone).
    offline: bool,
) -> Result<Vec<DesiredItem>> {
    if !module.item_sources.is_empty() {
        return source_items(module, spec, templates);
    }
    let identity = match &module.identity_from {
        Some(expression) => templates.evaluate_text(expression, &json!({ "spec": spec }))?,
        None => module
            .identity
            .as_ref()
            .and_then(|field| spec.get(field))
            .and_then(Value::as_str)
            .unwrap_or(object_name)
            .to_string(),
    };
    let mut fields = Map::new();
    let mut secrets = BTreeMap::new();
    for (field, rule) in &module.fields {
        if let Some(only) = &rule.only
            && !templates.evaluate_condition(only, &json!({ "spec": spec }))?
        {
            continue;
        }
        if let Some(value) = &rule.desired {
            fields.insert(field.clone(), value.clone());
            continue;
        }
        let Some(value) = spec.get(field) else {
            continue;
        };
        if rule.sensitive {
            // A recorded spec holds `(sensitive)` where the secret was;
            // null declares that there is none (a role without a password).
            if value.is_null() || (offline && value.as_str() == Some(template::SENSITIVE)) {
                fields.insert(field.clone(), value.clone());
                continue;
            }
            let reference = SecretRef::from_manifest(value, &settings.repository_root)?;
            match reference.resolve() {
                Ok(secret) => {
                    if let Some(format) = &rule.secret_format {
                        let pattern = regex::Regex::new(&format!("^(?:{})$", format.pattern))?;
                        if !pattern.is_match(&secret) {
                            bail!(
                                "{field} of {identity}: the secret in {} is not {} (its value is not shown)",
                                reference.describe(),
                                format.message
                            );
                        }
                    }
                    secrets.insert(field.clone(), secret);
                }
                Err(_) if offline => {}
                Err(error) => return Err(error.context(format!("{field} of {identity}"))),
            }
            fields.insert(field.clone(), Value::String(template::SENSITIVE.into()));
        } else {
            fields.insert(field.clone(), value.clone());
        }
    }
    Ok(vec![DesiredItem {
        identity,
        fields,
        secrets,
    }])
}

/// The identity of the item a map entry `key` of `source` stands for: the
/// key, or what the source's `identity` expression makes of it.
pub(crate) fn entry_identity(
    source: &crate::modules::ItemSource,
    spec: &Value,
    key: &str,
    templates: &Templates,
) -> Result<String> {
    match &source.identity {
        Some(expression) => {
            templates.evaluate_text(expression, &json!({ "spec": spec, "key": key }))
        }
        None => Ok(key.to_string()),
    }
}

/// The items of a module with item sources: map entries (each named by its
/// key, or the source's identity expression) and whole fields (one item
/// named by the field).
fn source_items(module: &Module, spec: &Value, templates: &Templates) -> Result<Vec<DesiredItem>> {
    let first_field = module
        .fields
        .first()
        .map(|(name, _)| name.clone())
        .unwrap_or_else(|| "value".into());
    let mut items = Vec::new();
    for source in &module.item_sources {
        if let Some(path) = &source.map {
            let entries = path
                .split('.')
                .try_fold(spec, |value, key| value.get(key))
                .and_then(Value::as_object);
            let field = source.field.clone().unwrap_or_else(|| first_field.clone());
            for (key, value) in entries.into_iter().flatten() {
                if source.except.contains(key) {
                    continue;
                }
                let mut fields = Map::from_iter([(field.clone(), value.clone())]);
                if let Some(key_field) = &source.key_field {
                    fields.insert(key_field.clone(), json!(key));
                }
                items.push(DesiredItem {
                    identity: entry_identity(source, spec, key, templates)?,
                    fields,
                    secrets: BTreeMap::new(),
                });
            }
        }
        if let Some(field) = &source.whole
            && let Some(value) = spec.get(field).filter(|value| !value.is_null())
        {
            items.push(DesiredItem {
                identity: field.clone(),
                fields: Map::from_iter([(field.clone(), value.clone())]),
                secrets: BTreeMap::new(),
            });
        }
    }
    Ok(items)
}

/// The spec as the ledger records it: sensitive fields as `(sensitive)`.
pub fn recorded_spec(module: &Module, spec: &Value) -> Value {
    match spec {
        Value::Object(map) => Value::Object(redact_row(module, map)),
        other => other.clone(),
    }
}

/// A discovered row with sensitive fields replaced by `(sensitive)`.
pub fn redact_row(module: &Module, row: &Map<String, Value>) -> Map<String, Value> {
    row.iter()
        .map(|(field, value)| {
            if module.is_sensitive(field) && !value.is_null() {
                (field.clone(), Value::String(template::SENSITIVE.into()))
            } else {
                (field.clone(), value.clone())
            }
        })
        .collect()
}

/// The spec as templates see it: sensitive fields as `(sensitive)`, the
/// user's own SQL fields marked to be written as they are.
pub(crate) fn redact_spec(module: &Module, spec: &Value) -> Value {
    match spec {
        Value::Object(map) => {
            let mut redacted = redact_row(module, map);
            mark_sql(module, &mut redacted);
            Value::Object(redacted)
        }
        other => other.clone(),
    }
}

/// Mark the user's own SQL in `object` (a spec, or an item's fields) to be
/// written into scripts as it is: the module's `sql` paths, a field
/// (`set`) or a field of each element of a list (`tables[].where`).
pub(crate) fn mark_sql(module: &Module, object: &mut Map<String, Value>) {
    for path in &module.sql {
        match path.split_once("[].") {
            Some((list, field)) => {
                if let Some(Value::Array(elements)) = object.get_mut(list) {
                    mark_sql_in_elements(elements, field);
                }
            }
            None => mark_sql_field(object, path),
        }
    }
}

/// Mark the user's own SQL in the elements a set change added or removed
/// (`set_changes.FIELD`), for the module's `sql` paths into lists.
pub(crate) fn mark_sql_in_change(module: &Module, list: &str, elements: &mut [Value]) {
    for path in &module.sql {
        if let Some((path_list, field)) = path.split_once("[].")
            && path_list == list
        {
            mark_sql_in_elements(elements, field);
        }
    }
}

fn mark_sql_in_elements(elements: &mut [Value], field: &str) {
    for element in elements {
        if let Value::Object(element) = element {
            mark_sql_field(element, field);
        }
    }
}

fn mark_sql_field(object: &mut Map<String, Value>, field: &str) {
    if let Some(Value::String(code)) = object.get(field) {
        let code = code.trim().trim_end_matches(';').trim_end().to_string();
        object.insert(field.to_string(), template::trusted_sql(code));
    }
}
