//! Diff: desired fields against observed fields, per item, per field, by the
//! rules of the item's module. Pure: no IO, no clock.
//!
//! Secrets enter here only to be compared (a password against a SCRAM
//! verifier) or hashed into a fingerprint; no value that leaves this module
//! contains one.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::Mac;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::plan::{Action, FieldChange};
use crate::modules::{Change, Compare, Module};
use crate::template::SENSITIVE;

/// The desired state of one live object. Its `Debug` names the secrets it
/// holds, never their values.
#[derive(Clone)]
pub struct DesiredItem {
    pub identity: String,
    /// Compared fields that the manifest gives (or whose schema has a default).
    /// Sensitive fields hold `(sensitive)`; their values are in `secrets`.
    pub fields: Map<String, Value>,
    /// Plain secret values by field name: memory only, never serialised.
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for DesiredItem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DesiredItem")
            .field("identity", &self.identity)
            .field("fields", &self.fields)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The diff of one item.
#[derive(Clone, Debug, Default)]
pub struct ItemDiff {
    pub action: Option<Action>,
    pub changes: Vec<FieldChange>,
    /// A fixed field differs: the message says which and why.
    pub cannot_change: Vec<String>,
    /// Fields the observation does not hold (a snapshot's secrets): not compared.
    pub unreadable: Vec<String>,
}

impl ItemDiff {
    pub fn changed_fields(&self) -> Vec<String> {
        self.changes
            .iter()
            .map(|change| change.field.clone())
            .collect()
    }
}

/// Compare one desired item with its observed row (None: it does not exist).
/// The item's desired fields with `latest` resolved: a field whose rule
/// names a `latest` observed field, and whose desired value is the word
/// `latest`, wants what that observed field says (the server's default
/// version). Without an observed row (or that field), `latest` stays.
pub fn resolve_latest(
    module: &Module,
    fields: &Map<String, Value>,
    observed: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut resolved = fields.clone();
    for (field, rule) in &module.fields {
        let Some(source) = &rule.latest else {
            continue;
        };
        if resolved.get(field).and_then(Value::as_str) == Some("latest")
            && let Some(value) = observed
                .and_then(|row| row.get(source))
                .filter(|value| !value.is_null())
        {
            resolved.insert(field.clone(), value.clone());
        }
    }
    resolved
}

pub fn diff_item(
    module: &Module,
    desired: &DesiredItem,
    observed: Option<&Map<String, Value>>,
    replace_requested: bool,
) -> ItemDiff {
    let resolved;
    let desired = if module.fields.iter().any(|(_, rule)| rule.latest.is_some()) {
        resolved = DesiredItem {
            identity: desired.identity.clone(),
            fields: resolve_latest(module, &desired.fields, observed),
            secrets: desired.secrets.clone(),
        };
        &resolved
    } else {
        desired
    };
    let Some(observed) = observed else {
        return ItemDiff {
            action: Some(Action::Create),
            ..ItemDiff::default()
        };
    };
    let mut diff = ItemDiff::default();
    let mut replace = false;
    for (field, rule) in &module.fields {
        if rule.compare == Compare::Never {
            continue;
        }
        let Some(wanted) = desired.fields.get(field) else {
            continue;
        };
        let unreadable = observed
            .get(crate::ops::snapshot::UNREADABLE)
            .and_then(Value::as_array)
            .is_some_and(|fields| fields.iter().any(|name| name.as_str() == Some(field)));
        if unreadable {
            diff.unreadable.push(field.clone());
            continue;
        }
        let current = observed.get(field).unwrap_or(&Value::Null);
        let secret = desired.secrets.get(field).map(String::as_str);
        if values_match(rule.compare, wanted, secret, current, observed) {
            continue;
        }
        let mut change = FieldChange {
            field: field.clone(),
            before: if rule.sensitive && !current.is_null() {
                Value::String(SENSITIVE.into())
            } else {
                current.clone()
            },
            after: wanted.clone(),
            added: Vec::new(),
            removed: Vec::new(),
            text_diff: None,
            forces_replace: None,
        };
        if rule.compare == Compare::Set {
            let (added, removed) = set_difference(wanted, current);
            change.added = added;
            change.removed = removed;
        }
        if rule.compare == Compare::Text {
            change.text_diff = text_diff(current, wanted);
        }
        if matches!(rule.compare, Compare::DatabaseFiles | Compare::NamedSubset) {
            change.text_diff = structured_diff(rule.compare, current, wanted);
        }
        match rule.change {
            Change::InPlace => {}
            Change::Replace => {
                replace = true;
                change.forces_replace = rule.reason.clone();
            }
            Change::Fixed if replace_requested => {
                replace = true;
                change.forces_replace = rule.reason.clone();
            }
            Change::Fixed => diff.cannot_change.push(format!(
                "{field} cannot change from {} to {}: {}",
                display_value(&change.before),
                display_value(&change.after),
                rule.reason.as_deref().unwrap_or("it is fixed at creation"),
            )),
        }
        diff.changes.push(change);
    }
    diff.action = Some(if diff.changes.is_empty() {
        Action::NoOp
    } else if replace {
        Action::Replace
    } else {
        Action::Update
    });
    diff
}

pub fn display_value(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

fn values_match(
    compare: Compare,
    wanted: &Value,
    secret: Option<&str>,
    current: &Value,
    observed_row: &Map<String, Value>,
) -> bool {
    match compare {
        Compare::Never => true,
        Compare::Exact => json_equal(wanted, current),
        // A comment: setting '' removes it (PostgreSQL stores no empty
        // comment), so an empty text and none are the same.
        Compare::Text => {
            let empty = |value: &Value| value.is_null() || value.as_str() == Some("");
            (empty(wanted) && empty(current)) || json_equal(wanted, current)
        }
        Compare::IgnoreCase => match (wanted.as_str(), current.as_str()) {
            (Some(left), Some(right)) => left.eq_ignore_ascii_case(right),
            _ => json_equal(wanted, current),
        },
        Compare::Set => {
            let (added, removed) = set_difference(wanted, current);
            added.is_empty() && removed.is_empty()
        }
        Compare::Timestamp => timestamps_equal(wanted, current),
        // Without the privilege to read verifiers the password cannot be
        // compared; the module marks such items "not verifiable".
        Compare::ScramPassword
        | Compare::Secret
        | Compare::BinarySecret
        | Compare::SqlServerPassword
            if observed_row
                .get("passwordReadable")
                .and_then(Value::as_bool)
                == Some(false) =>
        {
            true
        }
        // No password declared (`password: null`): none on the server.
        Compare::ScramPassword | Compare::Secret if wanted.is_null() => current.is_null(),
        Compare::ScramPassword => match (secret, current.as_str()) {
            // An MD5 hash where the server hashes passwords with SCRAM: the
            // weaker hash is drift, replaced by the SCRAM verifier fleetform
            // sends, even when it is a hash of the right password.
            (Some(_), Some(verifier))
                if verifier.starts_with("md5")
                    && observed_row
                        .get("passwordEncryption")
                        .and_then(Value::as_str)
                        == Some("scram-sha-256") =>
            {
                false
            }
            (Some(password), Some(verifier)) => {
                let user = observed_row
                    .get("identity")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                password_matches(password, user, verifier)
            }
            (None, _) => true,
            (Some(_), None) => false,
        },
        Compare::SqlServerPassword => match (secret, current.as_str()) {
            (Some(password), Some(hash)) => sql_server_password_matches(password, hash),
            (None, _) => true,
            (Some(_), None) => false,
        },
        Compare::DatabaseFiles => database_files_match(wanted, current),
        Compare::NamedSubset => subset_matches(wanted, current),
        Compare::Privileges => privileges_match(wanted, observed_row),
        Compare::Secret => match secret {
            Some(secret) => current.as_str() == Some(secret),
            None => true,
        },
        Compare::BinarySecret => match (secret, current.as_str()) {
            (Some(secret), Some(current)) => secret.trim().eq_ignore_ascii_case(current),
            (None, _) => true,
            (Some(_), None) => false,
        },
        Compare::PostgresSetting => {
            let unit = observed_row.get("unit").and_then(Value::as_str);
            let kind = observed_row.get("vartype").and_then(Value::as_str);
            let is_list = observed_row
                .get("isList")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match (setting_text(wanted), setting_text(current)) {
                (Some(left), Some(right)) => {
                    crate::ops::settings::normalize(&left, unit, kind, is_list)
                        == crate::ops::settings::normalize(&right, unit, kind, is_list)
                }
                _ => false,
            }
        }
    }
}

fn privileges_match(wanted: &Value, observed_row: &Map<String, Value>) -> bool {
    let strings = |value: Option<&Value>| -> std::collections::BTreeSet<String> {
        value
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut desired = strings(Some(wanted));
    if desired.contains("ALL") {
        desired = strings(observed_row.get("allPrivileges"));
    }
    let Some(acl) = observed_row.get("acl").and_then(Value::as_object) else {
        return false;
    };
    acl.values().all(|held| strings(Some(held)) == desired)
}

fn setting_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(true) => Some("on".into()),
        Value::Bool(false) => Some("off".into()),
        _ => None,
    }
}

fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => left == right,
    }
}

fn set_difference(wanted: &Value, current: &Value) -> (Vec<Value>, Vec<Value>) {
    let empty = Vec::new();
    let wanted = wanted.as_array().unwrap_or(&empty);
    let current = current.as_array().unwrap_or(&empty);
    let added = wanted
        .iter()
        .filter(|item| !current.contains(item))
        .cloned()
        .collect();
    let removed = current
        .iter()
        .filter(|item| !wanted.contains(item))
        .cloned()
        .collect();
    (added, removed)
}

fn timestamps_equal(wanted: &Value, current: &Value) -> bool {
    // Ok(None): no expiry (null or `infinity`); Err: not a date-time.
    let parse = |value: &Value| -> Result<Option<i64>, ()> {
        match value {
            Value::Null => Ok(None),
            Value::String(text) if text.eq_ignore_ascii_case("infinity") => Ok(None),
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| Some(time.timestamp_micros()))
                .map_err(|_| ()),
            _ => Err(()),
        }
    };
    match (parse(wanted), parse(current)) {
        (Ok(left), Ok(right)) => left == right,
        _ => wanted == current,
    }
}

fn text_diff(current: &Value, wanted: &Value) -> Option<String> {
    let before = current.as_str().unwrap_or_default();
    let after = wanted.as_str()?;
    if !before.contains('\n') && !after.contains('\n') {
        return None;
    }
    let diff = similar::TextDiff::from_lines(before, after);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header("live", "manifest")
            .to_string(),
    )
}

/// A line per desired object (files by logical name, filegroups by name, or
/// the one object of settings): the live object cut down to what the
/// comparison looks at, against the manifest's. What already satisfies the
/// manifest (a file at least as large) is shown as the manifest says; for
/// files, where a file lives is left out (fixed at creation) and no maximum
/// size reads as unlimited. None when no line differs (the plan then shows
/// both values).
fn structured_diff(compare: Compare, current: &Value, wanted: &Value) -> Option<String> {
    let files = compare == Compare::DatabaseFiles;
    let key = |object: &Value| -> Option<String> {
        object
            .get("logicalName")
            .or_else(|| object.get("name"))
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    };
    let compared = |desired: &Value| -> Value {
        let Some(object) = desired.as_object() else {
            return desired.clone();
        };
        let mut object: Map<String, Value> = object
            .iter()
            .filter(|(field, _)| {
                !(files && matches!(field.as_str(), "purpose" | "filegroup" | "path"))
            })
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        if files {
            object.entry("maxSizeMB").or_insert(Value::Null);
        }
        Value::Object(object)
    };
    let project = |live: &Value, desired: &Value| -> Value {
        let Some(desired) = desired.as_object() else {
            return live.clone();
        };
        // A FILESTREAM or memory-optimized container has no sizes.
        let container = files && live.get("sizeMB").is_some_and(Value::is_null);
        let mut shown = Map::new();
        for (field, want) in desired {
            let have = live.get(field).cloned().unwrap_or(Value::Null);
            let satisfied = match (field.as_str(), &have, want) {
                ("sizeMB" | "growthMB" | "growthPercent" | "maxSizeMB", _, _) if container => true,
                ("sizeMB", Value::Number(have), Value::Number(want)) if files => {
                    have.as_f64() >= want.as_f64()
                }
                (_, Value::String(have), Value::String(want)) => have.eq_ignore_ascii_case(want),
                _ => json_equal(&have, want),
            };
            shown.insert(field.clone(), if satisfied { want.clone() } else { have });
        }
        Value::Object(shown)
    };
    let (before, after): (Vec<String>, Vec<String>) = match wanted {
        Value::Array(desired) => {
            let live = current.as_array().cloned().unwrap_or_default();
            desired
                .iter()
                .map(|object| {
                    let object = compared(object);
                    let found = key(&object).and_then(|wanted_key| {
                        live.iter()
                            .find(|candidate| key(candidate).as_ref() == Some(&wanted_key))
                    });
                    (
                        found
                            .map(|live| project(live, &object).to_string())
                            .unwrap_or_default(),
                        object.to_string(),
                    )
                })
                .unzip()
        }
        Value::Object(_) => (
            vec![project(current, wanted).to_string()],
            vec![wanted.to_string()],
        ),
        _ => return None,
    };
    if before == after {
        return None;
    }
    let before: String = before
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let after: String = after.iter().map(|line| format!("{line}\n")).collect();
    let diff = similar::TextDiff::from_lines(&before, &after);
    Some(
        diff.unified_diff()
            .context_radius(0)
            .header("live", "manifest")
            .to_string(),
    )
}

/// Whether `password` is the one a PostgreSQL verifier (`SCRAM-SHA-256$…` or
/// `md5…`) was made from. The verifier is never shown; only the answer leaves.
pub fn password_matches(password: &str, user: &str, verifier: &str) -> bool {
    if let Some(rest) = verifier.strip_prefix("SCRAM-SHA-256$") {
        return scram_matches(password, rest).unwrap_or(false);
    }
    if verifier.starts_with("md5") {
        return postgres_protocol::password::md5(password.as_bytes(), user) == verifier;
    }
    false
}

/// Whether `password` is the one a SQL Server login's password hash
/// (`0x0200`, 4 bytes of salt, SHA-512 of the UTF-16LE password followed by
/// the salt: what PWDCOMPARE checks) was made from. Older `0x0100` (SHA-1)
/// hashes never match, so the password is set again and the server stores
/// it in the current form.
pub fn sql_server_password_matches(password: &str, hash: &str) -> bool {
    let Some(hex) = hash.strip_prefix("0x").or_else(|| hash.strip_prefix("0X")) else {
        return false;
    };
    let Some(bytes) = decode_hex(hex) else {
        return false;
    };
    let [0x02, 0x00, rest @ ..] = bytes.as_slice() else {
        return false;
    };
    let (salt, digest) = rest.split_at(rest.len().min(4));
    let mut hasher = sha2::Sha512::new();
    let unicode: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    hasher.update(&unicode);
    hasher.update(salt);
    hasher.finalize().as_slice() == digest
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Database files: every desired file exists (by logical name, ignoring
/// case), is at least `sizeMB` (files only grow; a FILESTREAM or
/// memory-optimized container has no size), and has the desired growth and
/// maximum size (none given: unlimited). Files the manifest does not list,
/// where a file lives and its filegroup (both fixed when it is created) are
/// not compared.
fn database_files_match(wanted: &Value, current: &Value) -> bool {
    let empty = Vec::new();
    let current = current.as_array().unwrap_or(&empty);
    wanted.as_array().unwrap_or(&empty).iter().all(|file| {
        let name = file
            .get("logicalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(live) = current.iter().find(|live| {
            live.get("logicalName")
                .and_then(Value::as_str)
                .is_some_and(|live| live.eq_ignore_ascii_case(name))
        }) else {
            return false;
        };
        let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_i64);
        if number(live, "sizeMB").is_none() {
            // A container: nothing more to compare.
            return true;
        }
        let size_matches = match number(file, "sizeMB") {
            Some(size) => number(live, "sizeMB").is_some_and(|live| live >= size),
            None => true,
        };
        let growth_matches = match (number(file, "growthMB"), number(file, "growthPercent")) {
            (Some(megabytes), _) => {
                number(live, "growthMB") == Some(megabytes)
                    && number(live, "growthPercent").is_none()
            }
            (None, Some(percent)) => number(live, "growthPercent") == Some(percent),
            (None, None) => true,
        };
        let max_matches = number(file, "maxSizeMB") == number(live, "maxSizeMB");
        size_matches && growth_matches && max_matches
    })
}

/// Every key of the desired object equals the live one's; a list's desired
/// objects each match the live object of the same `name`.
fn subset_matches(wanted: &Value, current: &Value) -> bool {
    match (wanted, current) {
        (Value::Object(wanted), Value::Object(current)) => wanted.iter().all(|(key, value)| {
            let live = current.get(key).unwrap_or(&Value::Null);
            match (value, live) {
                (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                _ => json_equal(value, live),
            }
        }),
        (Value::Array(wanted), Value::Array(current)) => wanted.iter().all(|object| {
            let name = object
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            current.iter().any(|live| {
                live.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|live_name| live_name.eq_ignore_ascii_case(name))
                    && subset_matches(object, live)
            })
        }),
        (Value::Array(wanted), Value::Null) => wanted.is_empty(),
        _ => json_equal(wanted, current),
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn scram_matches(password: &str, verifier: &str) -> Option<bool> {
    // <iterations>:<salt>$<StoredKey>:<ServerKey>
    let (parameters, keys) = verifier.split_once('$')?;
    let (iterations, salt) = parameters.split_once(':')?;
    let (stored_key, _server_key) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok()?;
    // The count comes from the server: bound the work a hostile one can ask for.
    if iterations == 0 || iterations > 10_000_000 {
        return None;
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let salt = engine.decode(salt).ok()?;
    let stored_key = engine.decode(stored_key).ok()?;
    // The server (and the verifier fleetform sends) hash the SASLprep'd
    // password (RFC 4013), or the raw bytes where SASLprep refuses the text:
    // compare the same way, or a normalised password never converges.
    let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut salted_password = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), &salt, iterations, &mut salted_password);
    let mut client_key = <HmacSha256 as Mac>::new_from_slice(&salted_password).ok()?;
    client_key.update(b"Client Key");
    let client_key = client_key.finalize().into_bytes();
    let computed = Sha256::digest(client_key);
    Some(computed.as_slice() == stored_key.as_slice())
}

/// The verifier sent instead of a password, so the password itself never
/// travels in a statement (nor lands in a server log).
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

/// SHA-256 of a JSON value, hex.
pub fn fingerprint(value: &Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    hex(&digest)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_desired_items_debug_names_its_secrets_without_their_values() {
        let item = DesiredItem {
            identity: "app".into(),
            fields: serde_json::json!({"password": SENSITIVE})
                .as_object()
                .unwrap()
                .clone(),
            secrets: BTreeMap::from([("password".to_string(), "s3cret-value".to_string())]),
        };
        let shown = format!("{item:?} {item:#?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(shown.contains("\"password\""), "{shown}");
    }

    use serde_json::json;
    /// A hash computed outside fleetform (Python's hashlib: SHA-512 over the
    /// UTF-16LE password and the salt, behind 0x0200 and the salt).
    const HASH: &str = "0x02001A2B3C4D87AE3C7BBE0EB693E93C4556031414CF2653BEFF49100E5A4B7A548F17540D7EFAC0E3CABE27637F9D21DDEA6B620250B61679E59F1C95A56EA65F1B141AE86A";

    #[test]
    fn sql_server_password_hashes_are_checked_like_pwdcompare() {
        assert!(sql_server_password_matches("Pa$$w0rd!é", HASH));
        assert!(sql_server_password_matches(
            "Pa$$w0rd!é",
            &HASH.to_lowercase()
        ));
        assert!(!sql_server_password_matches("Pa$$w0rd!e", HASH));
        assert!(!sql_server_password_matches(
            "Pa$$w0rd!é",
            &HASH.replace("0x0200", "0x0100")
        ));
        assert!(!sql_server_password_matches("Pa$$w0rd!é", "0x0200"));
        assert!(!sql_server_password_matches("Pa$$w0rd!é", "not a hash"));
        assert!(!sql_server_password_matches("", "0x02001A2B3C4"));
    }

    #[test]
    fn database_files_grow_but_never_shrink() {
        let live = json!([
            {"logicalName": "Sales", "purpose": "data", "filegroup": "PRIMARY", "sizeMB": 2048,
             "growthMB": 512, "growthPercent": null, "maxSizeMB": null},
            {"logicalName": "Sales_log", "purpose": "log", "filegroup": null, "sizeMB": 1024,
             "growthMB": null, "growthPercent": 10, "maxSizeMB": 8192},
            {"logicalName": "Unlisted", "purpose": "data", "filegroup": "PRIMARY", "sizeMB": 1,
             "growthMB": 1, "growthPercent": null, "maxSizeMB": null}
        ]);
        let wanted = |data: Value, log: Value| json!([data, log]);
        let data =
            json!({"logicalName": "sales", "purpose": "data", "sizeMB": 1024, "growthMB": 512});
        let log = json!({"logicalName": "Sales_log", "purpose": "log", "growthPercent": 10, "maxSizeMB": 8192});
        assert!(database_files_match(
            &wanted(data.clone(), log.clone()),
            &live
        ));
        let bigger = json!({"logicalName": "Sales", "purpose": "data", "sizeMB": 4096});
        assert!(!database_files_match(&wanted(bigger, log.clone()), &live));
        let growth = json!({"logicalName": "Sales", "purpose": "data", "growthMB": 256});
        assert!(!database_files_match(&wanted(growth, log.clone()), &live));
        let unlimited_log = json!({"logicalName": "Sales_log", "purpose": "log"});
        assert!(!database_files_match(
            &wanted(data.clone(), unlimited_log),
            &live
        ));
        // Where a file lives is fixed when it is created: not compared.
        let other_group =
            json!({"logicalName": "Sales", "purpose": "data", "filegroup": "ARCHIVE"});
        assert!(database_files_match(
            &wanted(other_group, log.clone()),
            &live
        ));
        let container = json!([{"logicalName": "Blobs", "purpose": "data", "filegroup": "FS",
            "sizeMB": null, "growthMB": null, "growthPercent": null, "maxSizeMB": null}]);
        let sized = json!([{"logicalName": "Blobs", "purpose": "data", "sizeMB": 10}]);
        assert!(
            database_files_match(&sized, &container),
            "containers have no size"
        );
        let missing = json!({"logicalName": "Sales_2", "purpose": "data"});
        assert!(!database_files_match(&wanted(missing, log), &live));
    }

    #[test]
    fn named_subsets_compare_only_what_the_manifest_gives() {
        let live =
            json!({"enabled": true, "operationMode": "READ_WRITE", "maxStorageSizeMB": 1000});
        assert!(subset_matches(
            &json!({"enabled": true, "operationMode": "read_write"}),
            &live
        ));
        assert!(!subset_matches(&json!({"maxStorageSizeMB": 2048}), &live));
        let groups =
            json!([{"name": "ARCHIVE", "isDefault": true}, {"name": "OTHER", "isDefault": false}]);
        assert!(subset_matches(&json!([{"name": "archive"}]), &groups));
        assert!(!subset_matches(
            &json!([{"name": "ARCHIVE", "isDefault": false}]),
            &groups
        ));
        assert!(!subset_matches(&json!([{"name": "MISSING"}]), &groups));
        assert!(subset_matches(&json!([]), &Value::Null));
    }

    use super::*;

    #[test]
    fn a_scram_verifier_made_by_postgres_protocol_matches_only_its_password() {
        let verifier = scram_verifier("correct horse");
        assert!(password_matches("correct horse", "app", &verifier));
        assert!(!password_matches("Correct horse", "app", &verifier));
        assert!(!password_matches("correct horse", "app", "garbage"));
    }

    #[test]
    fn passwords_are_compared_after_saslprep() {
        // A ligature, full-width letters and a no-break space: the verifier
        // holds the normalised form ("fine Pass"), as the server's would.
        let verifier = scram_verifier("\u{FB01}ｎｅ\u{00A0}Ｐａｓｓ");
        assert!(password_matches(
            "\u{FB01}ｎｅ\u{00A0}Ｐａｓｓ",
            "app",
            &verifier
        ));
        assert!(password_matches("fine Pass", "app", &verifier));
        assert!(!password_matches("fine pass", "app", &verifier));
    }

    #[test]
    fn md5_verifiers_are_checked_with_the_user_name() {
        let verifier = postgres_protocol::password::md5(b"secret", "app");
        assert!(password_matches("secret", "app", &verifier));
        assert!(!password_matches("secret", "other", &verifier));
    }

    #[test]
    fn timestamps_compare_as_instants() {
        assert!(timestamps_equal(
            &"2027-01-01T00:00:00Z".into(),
            &"2027-01-01T01:00:00+01:00".into()
        ));
        assert!(!timestamps_equal(
            &"2027-01-01T00:00:00Z".into(),
            &Value::Null
        ));
    }
}
