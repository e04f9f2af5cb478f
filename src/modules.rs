//! Modules: one folder under `modules/` per resource kind, described by its
//! `module.yaml` (how to discover the kind, which fields are compared and
//! how, which changes are in place, which template performs each action).
//!
//! This file reads and checks module definitions; it owns no SQL (that is in
//! the templates) and performs no IO beyond the embedded files.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::engines::EngineCatalog;
use crate::template::{Dialect, Templates};

/// How a field's desired and observed values are compared.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// Equal JSON values (numbers compare by value).
    #[default]
    Exact,
    /// Strings equal ignoring case (SQL Server identifiers, encodings).
    IgnoreCase,
    /// Lists equal as sets; the plan shows what is added and removed.
    Set,
    /// ISO 8601 date-times equal as instants (`infinity` and null mean none).
    Timestamp,
    /// Long text (comments): equal strings, an empty one equal to none (a
    /// comment set to '' is removed); the plan shows a line diff.
    Text,
    /// Desired: a password from a secret. Observed: the server's SCRAM
    /// verifier. Equal when the password matches the verifier; the password
    /// itself is never read back.
    ScramPassword,
    /// A PostgreSQL parameter value, compared in the parameter's base unit
    /// (the observed row carries `unit` and `vartype`).
    PostgresSetting,
    /// Privileges (PostgreSQL ACLs): the desired list (`ALL` expands to the
    /// discovered `allPrivileges`) must equal what the grantee holds on every
    /// object of the discovered `acl` map.
    Privileges,
    /// Desired: a secret. Observed: the same secret as the server holds it
    /// (a subscription's connection password): equal when identical. The
    /// value never leaves memory.
    Secret,
    /// Desired: a password from a secret. Observed: a SQL Server login's
    /// password hash (`0x0200` + salt + SHA-512, as PWDCOMPARE checks it).
    /// Equal when the password hashes to it; the password is never read back.
    SqlServerPassword,
    /// SQL Server database files, matched by `logicalName`: a file is as
    /// desired when it exists, is at least `sizeMB` and has the given growth
    /// and maximum size. Files the manifest does not list are ignored.
    DatabaseFiles,
    /// Objects (or lists of objects matched by `name`, ignoring case): every
    /// key the desired object gives equals the live one (strings ignoring
    /// case); keys it leaves out, and live objects it does not name, are
    /// not managed (Query Store settings, filegroups).
    NamedSubset,
    /// Desired: a secret holding a binary value as hex (`0x0200…`, a
    /// password hash copied from another server). Observed: the server's
    /// value as hex. Equal when the same bytes (hex digits in any case).
    BinarySecret,
    /// Used only when creating; never compared.
    Never,
}

/// What a change of the field needs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The update template changes it in place.
    #[default]
    InPlace,
    /// The object is dropped and created again (the plan shows the reason).
    Replace,
    /// Fixed at creation: a change is refused unless the resource is named
    /// with `--replace`, which then drops and recreates it.
    Fixed,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldRule {
    #[serde(default)]
    pub compare: Compare,
    #[serde(default)]
    pub change: Change,
    /// Why a change is not in place, shown in the plan.
    pub reason: Option<String>,
    /// Never shown: plans print `(sensitive)`.
    #[serde(default)]
    pub sensitive: bool,
    /// The desired value is the module's, not the manifest's (a custom SQL
    /// test must be true).
    #[serde(default)]
    pub desired: Option<Value>,
    /// An expression over `spec`: the field is managed only when it holds
    /// (a login's password policy only for SQL logins).
    #[serde(default)]
    pub only: Option<String>,
    /// The observed field that stands for the desired value `latest` (an
    /// extension's `version: latest` is the server's default version):
    /// compared, checked and rendered as that value.
    #[serde(default)]
    pub latest: Option<String>,
    /// For a sensitive field: what the secret must look like (a SCRAM
    /// verifier), checked when it is read, with the message given when it
    /// does not (the secret itself is never shown).
    #[serde(default)]
    pub secret_format: Option<SecretFormat>,
}

/// The shape a secret must have (`FieldRule::secret_format`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFormat {
    /// A regular expression the whole secret matches.
    pub pattern: String,
    /// What the secret is expected to be, for the error.
    pub message: String,
}

/// A template reference: a file name, or a file with the connector it runs
/// through and that connector's options (whether it runs in a transaction).
#[derive(Clone, Debug)]
pub enum ActionTemplate {
    File(String),
    Detailed {
        template: String,
        transaction: Option<Transaction>,
        through: Through,
    },
}

/// An action written out in full, with its keys checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailedAction {
    template: String,
    #[serde(default)]
    transaction: Option<Transaction>,
    #[serde(default)]
    through: Through,
}

impl<'de> Deserialize<'de> for ActionTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(file) => Ok(ActionTemplate::File(file)),
            detailed @ Value::Object(_) => {
                let action: DetailedAction =
                    serde_json::from_value(detailed).map_err(D::Error::custom)?;
                Ok(ActionTemplate::Detailed {
                    template: action.template,
                    transaction: action.transaction,
                    through: action.through,
                })
            }
            _ => Err(D::Error::custom(
                "an action is a template file name or {template, transaction, through}",
            )),
        }
    }
}

/// Which connector an action runs through.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Through {
    /// The target's own connector (SQL on an instance, the shell of a Server).
    #[default]
    Target,
    /// The connector of the host the instance runs on (its Server's shell or
    /// PowerShell): a service setting, a file, a restart of its own.
    Host,
}

/// Whether an action runs in one transaction: fixed, or a spec field.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Transaction {
    Fixed(bool),
    /// `spec.FIELD`: the manifest decides (a custom SQL script).
    FromSpec(String),
}

impl ActionTemplate {
    pub fn file(&self) -> &str {
        match self {
            ActionTemplate::File(file) | ActionTemplate::Detailed { template: file, .. } => file,
        }
    }

    pub fn through(&self) -> Through {
        match self {
            ActionTemplate::File(_) => Through::Target,
            ActionTemplate::Detailed { through, .. } => *through,
        }
    }

    /// Statements that refuse to run in a transaction block (CREATE DATABASE,
    /// ALTER SYSTEM) need `transaction: false`: they then run one by one.
    /// `transaction: spec.FIELD` takes it from the manifest (default true).
    pub fn transaction(&self, spec: &Value) -> bool {
        match self {
            ActionTemplate::File(_)
            | ActionTemplate::Detailed {
                transaction: None, ..
            } => true,
            ActionTemplate::Detailed {
                transaction: Some(Transaction::Fixed(value)),
                ..
            } => *value,
            ActionTemplate::Detailed {
                transaction: Some(Transaction::FromSpec(path)),
                ..
            } => path
                .strip_prefix("spec.")
                .and_then(|field| spec.get(field))
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    pub create: ActionTemplate,
    pub update: Option<ActionTemplate>,
    pub delete: Option<ActionTemplate>,
    /// Runs once per resource after any of its items changed (e.g. a reload).
    pub after: Option<ActionTemplate>,
}

impl Actions {
    /// Every action the module declares.
    pub fn all(&self) -> impl Iterator<Item = &ActionTemplate> {
        [
            Some(&self.create),
            self.update.as_ref(),
            self.delete.as_ref(),
            self.after.as_ref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A mark the plan puts on an item when a condition holds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskMark {
    /// Takes effect only after the server restarts.
    Restart,
    /// Destroys data or access (drop, replace).
    Destructive,
    /// Moves data (tablespace change, reseeding).
    DataMovement,
    /// Blocks or disconnects sessions while it runs.
    Disruptive,
    /// fleetform cannot check the result (missing privileges, an override).
    Unverified,
    /// Something outside this change must happen first or next (a full
    /// backup before an availability group can hold a database).
    Prerequisite,
}

impl RiskMark {
    pub fn label(self) -> &'static str {
        match self {
            RiskMark::Restart => "restart needed",
            RiskMark::Destructive => "destructive",
            RiskMark::DataMovement => "data movement",
            RiskMark::Disruptive => "disruptive",
            RiskMark::Unverified => "not verifiable",
            RiskMark::Prerequisite => "prerequisite",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    pub mark: RiskMark,
    /// A minijinja expression over `action`, `desired`, `observed`, `changed`.
    pub when: String,
    pub message: String,
    /// An expression over the same context, shown after the message (what
    /// the server reports, such as why Query Store runs read-only).
    #[serde(default)]
    pub detail: Option<String>,
}

/// Items that discovery does not find and that cannot be created (a
/// misspelt parameter): refused at plan time instead of failing at apply.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRule {
    /// Over `name` (the item's identity): refuse it?
    pub refuse: String,
    /// Shown after the name.
    pub message: String,
}

/// A capability check: a condition that makes the plan refuse the item with
/// a clear error instead of letting apply fail.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRule {
    /// Over `name`, `desired`, `observed` (the row, even of an object that
    /// does not exist yet) and the server facts: true refuses.
    pub refuse: String,
    pub message: String,
    /// An expression over the same context whose value follows the message
    /// (the objects that are missing).
    #[serde(default)]
    pub detail: Option<String>,
}

/// A condition under which a resource is left to something else on this
/// target (a database of an availability group on a secondary replica is
/// seeded and changed through the group): planned as deferred, not an error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferRule {
    /// Over `name`, `desired`, `observed`, `facts`, `spec` and `instance`.
    pub when: String,
    /// An expression over the same context: why, shown in the plan.
    pub message: String,
}

/// What an engine's instances must be able to do for what the manifests ask
/// of them (`templates/<engine>/capabilities.yaml`), checked on every
/// instance at plan time: a contained availability group on SQL Server
/// 2019 is an error before apply, not a setting silently ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRule {
    /// An expression over `facts` and `instance` giving a list: the rule is
    /// checked once per element, as `item` (each availability group).
    #[serde(default)]
    pub each: Option<String>,
    /// Over `facts`, `instance` (and `item`): true is an error.
    pub refuse: String,
    /// An expression over the same: what is wrong.
    pub message: String,
}

/// When converging a resource leaves it waiting for the instance to restart.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartRule {
    /// Per item, over the re-discovered `observed` row: still waiting?
    pub needed: String,
    /// Over `spec`: may apply restart the instance?
    pub allowed: String,
}

/// How fleetform knows which live objects it created, so that `--prune`
/// deletes only those: a marker on the object (`field`), or for objects
/// that cannot carry one (grants, memberships, slots) its ledger (`ledger`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ownership {
    /// The boolean field of each discovered row that says fleetform created
    /// it for this environment (the marker names it).
    #[serde(default)]
    pub field: Option<String>,
    /// With `field`: the text field naming the environment whose marker the
    /// object carries (empty: a marker that names none), so that the plan
    /// lists another environment's objects as theirs.
    #[serde(default)]
    pub by: Option<String>,
    /// Owned: what the ledger's last converged entry of a resource says was
    /// applied. A resource that left the manifests is discovered with the
    /// spec recorded then, and pruned while its delete template renders
    /// something to do (it sees `others`, the specs of the manifests'
    /// resources of the kind in the same place, and leaves theirs alone).
    #[serde(default)]
    pub ledger: bool,
    /// With `ledger`: an expression over the recorded `spec` that says
    /// whether fleetform owns what it applied at all (a custom SQL resource
    /// only with an `unset` script).
    #[serde(default)]
    pub when: Option<String>,
    /// With `ledger`: an expression over `spec` naming what a resource
    /// manages beyond its identity (a grant's grantee, object type, schema
    /// and objects). When a resource's key differs from the one recorded,
    /// its update first undoes what the recorded definition applied.
    #[serde(default)]
    pub key: Option<String>,
    /// Deletions of this kind run in increasing `pruneOrder` across kinds
    /// (databases before the roles that own them).
    #[serde(default)]
    pub prune_order: i32,
    /// The field of each discovered row listing what the object holds that
    /// no module manages (a schema's tables), as `{count, first}`: a prune
    /// that would drop it with them is refused unless named with `--destroy`.
    #[serde(default)]
    pub holds: Option<String>,
    /// With `holds`: the boolean spec field that, in the spec last applied,
    /// stands for `--destroy` (a schema's `dropCascade`): the prune drops
    /// what the object holds with it, marked destructive.
    #[serde(default)]
    pub destroy_with: Option<String>,
    /// Each object is a database: dropping one drops what every
    /// database-scoped kind holds in it, so their `holds` count for it.
    #[serde(default)]
    pub is_database: bool,
}

/// Where a module's objects live.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Instance-wide objects (roles, databases, settings): discovered over
    /// the instance's maintenance database.
    #[default]
    Instance,
    /// Objects inside one database (`spec.database`): discovered and changed
    /// over a session to that database.
    Database,
}

/// The raw `module.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModuleFile {
    kind: String,
    description: String,
    /// Which connector runs the scripts.
    engine: String,
    #[serde(default)]
    scope: Scope,
    /// The spec field naming the live object (metadata.name when the field is absent).
    #[serde(default)]
    identity: Option<String>,
    /// Or an expression over `spec` that names it (a membership: `group > role`).
    #[serde(default)]
    identity_from: Option<String>,
    /// Where the items come from: the spec field holding a map whose entries
    /// are the items (settings), or a list of sources.
    #[serde(default)]
    items: Option<ItemsFile>,
    discover: String,
    /// Template listing the live objects as `[{name, spec}]` for `fleetform import`.
    #[serde(default)]
    import: Option<String>,
    /// Template listing live things related to the wanted resources that no
    /// manifest manages (`[{identity}]`): shown in the plan, never touched.
    #[serde(default)]
    inventory: Option<String>,
    /// Template asked once per target on the maintenance session before the
    /// inventory, with every wanted item of the target; its answer is the
    /// inventory template's `probe` (so that the inventory reads only where
    /// something can be found).
    #[serde(default)]
    inventory_probe: Option<String>,
    fields: serde_json::Map<String, Value>,
    /// Discovered fields shown with the object but never compared (context, unit).
    #[serde(default)]
    informational: Vec<String>,
    #[serde(default)]
    ownership: Option<Ownership>,
    actions: Actions,
    #[serde(default)]
    risks: Vec<RiskRule>,
    #[serde(default)]
    restart: Option<RestartRule>,
    #[serde(default)]
    missing: Option<MissingRule>,
    /// The boolean field of a discovered row that says whether the object
    /// exists; rows without it always exist. Lets discovery list what could
    /// exist (available extensions) for the checks.
    #[serde(default)]
    exists: Option<String>,
    #[serde(default)]
    checks: Vec<CheckRule>,
    #[serde(default)]
    defer: Vec<DeferRule>,
    /// Spec fields holding the user's own SQL, inserted into templates as
    /// written instead of as literals.
    #[serde(default)]
    sql: Vec<String>,
    /// Apply again when the observed state changed since the last apply,
    /// even if nothing differs from the manifest (a custom drift query).
    #[serde(default)]
    reapply_when_changed: bool,
    /// An expression over `dependency` (`kind`, `address`, `action`,
    /// `changed`) and `desired`: when a dependency changes this way in the
    /// same plan and nothing else changes here, the resource is updated with
    /// `refresh` among the changed fields (a subscription refreshes when its
    /// publication gains tables).
    #[serde(default)]
    refresh_when: Option<String>,
    /// Never run two resources of this kind on one target at once (GRANTs
    /// on one object from two sessions fail with "tuple concurrently updated").
    #[serde(default)]
    serial: bool,
    /// The field of a discovered row listing why the object cannot be
    /// dropped now (a login that is logged in or owns a database): a prune
    /// or a replace of it is refused at plan with each reason.
    #[serde(default)]
    delete_blocked_by: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum ItemsFile {
    Field(String),
    Sources(Vec<ItemSource>),
}

/// One source of a module's items.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSource {
    /// A map in the spec (a dotted path such as `options.advanced`): each
    /// entry is an item named by its key, its value in `field`.
    #[serde(default)]
    pub map: Option<String>,
    /// Keys of the map that are not items (a nested map read by another source).
    #[serde(default)]
    pub except: Vec<String>,
    /// A spec field whose whole value is one item, named by the field and
    /// holding the value under the field's own name (a list of trace flags).
    #[serde(default)]
    pub whole: Option<String>,
    /// The module field holding a map entry's value (the first field when absent).
    #[serde(default)]
    pub field: Option<String>,
    /// An expression over `spec` and `key` naming a map entry's item, when
    /// the key alone does not tell items of one target apart (a parameter
    /// of one role in one database).
    #[serde(default)]
    pub identity: Option<String>,
    /// The item field that also holds the entry's key, for templates (the
    /// parameter's name when the identity is more than the key).
    #[serde(default, rename = "keyField")]
    pub key_field: Option<String>,
}

/// A checked module.
#[derive(Clone, Debug)]
pub struct Module {
    pub kind: String,
    pub description: String,
    pub engine: String,
    pub scope: Scope,
    pub dialect: Dialect,
    /// The module's folder, repository-relative (`modules/postgres/role`).
    pub directory: String,
    pub identity: Option<String>,
    pub identity_from: Option<String>,
    /// The spec field holding a map of items, when that is the only source
    /// (what the ledger's item bookkeeping works with).
    pub items: Option<String>,
    /// Every source of items; empty for one item per resource.
    pub item_sources: Vec<ItemSource>,
    pub discover: String,
    pub import: Option<String>,
    pub inventory: Option<String>,
    pub inventory_probe: Option<String>,
    /// Compared fields, in the order the plan shows them.
    pub fields: Vec<(String, FieldRule)>,
    pub informational: Vec<String>,
    pub ownership: Option<Ownership>,
    pub actions: Actions,
    pub risks: Vec<RiskRule>,
    pub restart: Option<RestartRule>,
    pub missing: Option<MissingRule>,
    pub exists: Option<String>,
    pub checks: Vec<CheckRule>,
    pub defer: Vec<DeferRule>,
    pub sql: Vec<String>,
    pub reapply_when_changed: bool,
    pub refresh_when: Option<String>,
    pub serial: bool,
    pub delete_blocked_by: Option<String>,
}

impl Module {
    /// Whether any action runs through the host the instance runs on.
    pub fn runs_through_host(&self) -> bool {
        self.actions
            .all()
            .any(|action| action.through() == Through::Host)
    }

    /// Why the object of `row` cannot be dropped now (`deleteBlockedBy`).
    pub fn delete_blockers(&self, row: &serde_json::Map<String, Value>) -> Vec<String> {
        self.delete_blocked_by
            .as_ref()
            .and_then(|field| row.get(field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    }

    /// Full template name of a file of this module.
    pub fn template(&self, file: &str) -> String {
        format!("{}/{}", self.directory, file)
    }

    pub fn field(&self, name: &str) -> Option<&FieldRule> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, rule)| rule)
    }

    /// Whether a discovered row stands for an existing object.
    pub fn row_exists(&self, row: &serde_json::Map<String, Value>) -> bool {
        self.exists
            .as_ref()
            .is_none_or(|field| row.get(field).and_then(Value::as_bool).unwrap_or(false))
    }

    pub fn is_sensitive(&self, name: &str) -> bool {
        self.field(name).is_some_and(|rule| rule.sensitive)
    }
}

/// Every module, by kind and engine: one kind may have a module per engine
/// (a backup policy on PostgreSQL and on SQL Server).
#[derive(Clone, Debug, Default)]
pub struct ModuleCatalog {
    modules: BTreeMap<(String, String), Module>,
}

impl ModuleCatalog {
    /// The modules built into the binary, checked against the templates.
    pub fn embedded(templates: &Templates, engines: &EngineCatalog) -> Result<Self> {
        Self::from_files(crate::template::embedded_module_files(), templates, engines)
    }

    /// Modules from `modules/<folder>/module.yaml` among `files`; each
    /// names one of `engines`, whose dialect its templates are written in.
    pub fn from_files(
        files: Vec<(String, String)>,
        templates: &Templates,
        engines: &EngineCatalog,
    ) -> Result<Self> {
        let mut modules = BTreeMap::new();
        for (name, text) in &files {
            let Some(directory) = name.strip_suffix("/module.yaml") else {
                continue;
            };
            let module = parse_module(directory, text, templates, engines)
                .with_context(|| format!("module {name} is invalid"))?;
            let key = (module.kind.clone(), module.engine.clone());
            if let Some(previous) = modules.insert(key, module) {
                bail!(
                    "two modules for kind {} on {}: {} and {directory}",
                    previous.kind,
                    previous.engine,
                    previous.directory
                );
            }
        }
        Ok(ModuleCatalog { modules })
    }

    /// The module of `kind` for targets of `engine`.
    pub fn get(&self, kind: &str, engine: &str) -> Option<&Module> {
        self.modules.get(&(kind.to_string(), engine.to_string()))
    }

    /// The modules of `kind`, one per engine that has one.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Module> + 'a {
        self.modules
            .values()
            .filter(move |module| module.kind == kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }
}

fn parse_module(
    directory: &str,
    text: &str,
    templates: &Templates,
    engines: &EngineCatalog,
) -> Result<Module> {
    let documents = crate::yaml::parse_documents(text).map_err(|error| {
        anyhow::anyhow!(
            "line {}, column {}: {}",
            error.location.line,
            error.location.column,
            error.message
        )
    })?;
    let [document] = documents.as_slice() else {
        bail!("expected exactly one YAML document");
    };
    let file: ModuleFile = serde_json::from_value(document.value.clone())?;
    let dialect = match engines.get(&file.engine) {
        Some(profile) => profile.dialect,
        None => bail!(
            "engine `{}` is not one of {}",
            file.engine,
            engines
                .iter()
                .map(|profile| profile.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let (items, item_sources) = match file.items {
        None => (None, Vec::new()),
        Some(ItemsFile::Field(field)) => (
            Some(field.clone()),
            vec![ItemSource {
                map: Some(field),
                except: Vec::new(),
                whole: None,
                field: None,
                identity: None,
                key_field: None,
            }],
        ),
        Some(ItemsFile::Sources(sources)) => {
            for source in &sources {
                if source.map.is_some() == source.whole.is_some() {
                    bail!("each source of items names either `map` or `whole`");
                }
                if let Some(field) = &source.field
                    && !file.fields.contains_key(field)
                {
                    bail!("items name the field {field}, which is not among the fields");
                }
                if let Some(field) = &source.whole
                    && !file.fields.contains_key(field)
                {
                    bail!("items name the field {field}, which is not among the fields");
                }
            }
            let ledger = file
                .ownership
                .as_ref()
                .is_some_and(|ownership| ownership.ledger);
            match sources.as_slice() {
                [
                    ItemSource {
                        map: Some(map),
                        except,
                        ..
                    },
                ] if except.is_empty() => (Some(map.clone()), sources),
                _ if ledger => {
                    bail!("a ledger-owned module takes its items from one map (`items: FIELD`)")
                }
                _ => (None, sources),
            }
        }
    };
    let mut fields = Vec::new();
    for (name, rule) in file.fields {
        let rule: FieldRule = if rule.is_null() {
            FieldRule::default()
        } else {
            serde_json::from_value(rule).with_context(|| format!("field {name}"))?
        };
        if let Some(format) = &rule.secret_format {
            if !rule.sensitive {
                bail!("field {name} has a secretFormat: it must be sensitive");
            }
            regex::Regex::new(&format.pattern)
                .with_context(|| format!("field {name}: secretFormat pattern"))?;
        }
        if rule.change != Change::InPlace && rule.reason.is_none() {
            bail!("field {name} is not changed in place: give the `reason` the plan shows");
        }
        fields.push((name, rule));
    }
    if let Some(ownership) = &file.ownership {
        match (&ownership.field, ownership.ledger) {
            (Some(_), true) | (None, false) => {
                bail!("ownership needs either `field` (a marker on the object) or `ledger: true`")
            }
            _ => {}
        }
        if file.actions.delete.is_none() {
            bail!("a module with ownership needs a delete action to prune with");
        }
        if ownership.by.is_some() && ownership.field.is_none() {
            bail!("ownership `by` names the environment of a marker: it needs `field`");
        }
        if ownership.is_database && file.scope != Scope::Instance {
            bail!(
                "ownership `isDatabase` is for instance-wide kinds: a database lives in no other"
            );
        }
    }
    let module = Module {
        kind: file.kind,
        description: file.description,
        engine: file.engine,
        scope: file.scope,
        dialect,
        directory: directory.to_string(),
        identity: file.identity,
        identity_from: file.identity_from,
        items,
        item_sources,
        discover: file.discover,
        import: file.import,
        inventory: file.inventory,
        inventory_probe: file.inventory_probe,
        fields,
        informational: file.informational,
        ownership: file.ownership,
        actions: file.actions,
        risks: file.risks,
        restart: file.restart,
        missing: file.missing,
        exists: file.exists,
        checks: file.checks,
        defer: file.defer,
        sql: file.sql,
        reapply_when_changed: file.reapply_when_changed,
        refresh_when: file.refresh_when,
        serial: file.serial,
        delete_blocked_by: file.delete_blocked_by,
    };
    let mut referenced = vec![module.discover.clone()];
    referenced.extend(module.import.clone());
    referenced.extend(module.inventory.clone());
    referenced.extend(module.inventory_probe.clone());
    let mut through_host = Vec::new();
    for action in module.actions.all() {
        match action.through() {
            Through::Target => referenced.push(action.file().to_string()),
            Through::Host => through_host.push(action),
        }
    }
    for file in referenced {
        if Dialect::of_file(&file) != Some(dialect) {
            bail!(
                "template {file} does not have the extension of the {} engine",
                module.engine
            );
        }
        if !templates.exists(&module.template(&file)) {
            bail!("template {file} does not exist in {directory}");
        }
    }
    // An action through the host is written in a host engine's language,
    // and takes none of the database connector's options.
    let host_dialects: Vec<Dialect> = engines
        .iter()
        .filter(|profile| profile.server_os.is_some())
        .map(|profile| profile.dialect)
        .collect();
    for action in through_host {
        let file = action.file();
        if dialect == Dialect::Shell || dialect == Dialect::PowerShell {
            bail!(
                "template {file} runs through the host, and the {} engine's targets are hosts already",
                module.engine
            );
        }
        if !Dialect::of_file(file).is_some_and(|of| host_dialects.contains(&of)) {
            bail!(
                "template {file} runs through the host: give it the extension of a host engine ({})",
                host_dialects
                    .iter()
                    .map(|dialect| format!(".{}", dialect.extension()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if matches!(
            action,
            ActionTemplate::Detailed {
                transaction: Some(_),
                ..
            }
        ) {
            bail!(
                "template {file} runs through the host, whose shell has no transactions: remove `transaction`"
            );
        }
        if !templates.exists(&module.template(file)) {
            bail!("template {file} does not exist in {directory}");
        }
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_modules_load() {
        let templates = Templates::embedded().unwrap();
        let catalog =
            ModuleCatalog::embedded(&templates, &EngineCatalog::embedded().unwrap()).unwrap();
        for kind in ["PostgresRole", "PostgresDatabase", "PostgresSettings"] {
            assert!(
                catalog.get(kind, "postgres").is_some(),
                "no module for {kind}"
            );
        }
    }

    /// sp_configure's RECONFIGURE, CREATE/ALTER DATABASE and endpoint DDL
    /// refuse to run inside a user transaction.
    #[test]
    fn sql_server_statements_that_refuse_transactions_run_outside_one() {
        let templates = Templates::embedded().unwrap();
        let catalog =
            ModuleCatalog::embedded(&templates, &EngineCatalog::embedded().unwrap()).unwrap();
        for kind in ["SqlConfiguration", "SqlDatabase", "SqlEndpoint"] {
            let module = catalog.get(kind, "sqlserver").unwrap();
            let actions = &module.actions;
            for action in [
                Some(&actions.create),
                actions.update.as_ref(),
                actions.delete.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    !action.transaction(&Value::Null),
                    "{kind}: {} runs in a transaction",
                    action.file()
                );
            }
        }
    }

    #[test]
    fn a_module_naming_a_missing_template_is_refused() {
        let templates = Templates::from_files(vec![]).unwrap();
        let module = "kind: X\ndescription: x\nengine: postgres\ndiscover: discover.sql\nfields: {}\nactions: {create: create.sql}\n";
        let error = ModuleCatalog::from_files(
            vec![("modules/x/module.yaml".into(), module.into())],
            &templates,
            &EngineCatalog::embedded().unwrap(),
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("discover.sql does not exist"),
            "{error:#}"
        );
    }

    /// An action through the host is written in a host engine's language and
    /// takes no transaction; an unknown key of an action is refused.
    #[test]
    fn actions_through_the_host_are_checked_when_the_module_loads() {
        let refusal = |after: &str| {
            let module = format!(
                "kind: X\ndescription: x\nengine: postgres\ndiscover: discover.sql\nfields: {{}}\nactions: {{create: create.sql, after: {after}}}\n"
            );
            let files: Vec<(String, String)> =
                ["discover.sql", "create.sql", "host.sh", "host.sql"]
                    .iter()
                    .map(|file| (format!("modules/x/{file}"), String::new()))
                    .collect();
            let templates = Templates::from_files(files).unwrap();
            ModuleCatalog::from_files(
                vec![("modules/x/module.yaml".into(), module)],
                &templates,
                &EngineCatalog::embedded().unwrap(),
            )
            .err()
            .map(|error| format!("{error:#}"))
        };
        assert_eq!(refusal("{template: host.sh, through: host}"), None);
        let refused = [
            (
                "{template: host.sql, through: host}",
                "give it the extension of a host engine",
            ),
            (
                "{template: host.sh, through: host, transaction: false}",
                "remove `transaction`",
            ),
            (
                "{template: host.sh}",
                "does not have the extension of the postgres engine",
            ),
            (
                "{template: host.sh, though: host}",
                "unknown field `though`",
            ),
        ];
        for (after, expected) in refused {
            let error = refusal(after).unwrap_or_else(|| panic!("{after} was accepted"));
            assert!(error.contains(expected), "{after}: {error}");
        }
    }

    /// A kind may have one module per engine; two for one engine are refused.
    #[test]
    fn a_kind_has_at_most_one_module_per_engine() {
        let module = |folder: &str, engine: &str, extension: &str| {
            (
                (
                    format!("modules/{folder}/module.yaml"),
                    format!(
                        "kind: Backup\ndescription: x\nengine: {engine}\ndiscover: discover.{extension}\nfields: {{}}\nactions: {{create: create.{extension}}}\n"
                    ),
                ),
                [
                    (
                        format!("modules/{folder}/discover.{extension}"),
                        "SELECT 1".to_string(),
                    ),
                    (
                        format!("modules/{folder}/create.{extension}"),
                        "SELECT 1".to_string(),
                    ),
                ],
            )
        };
        let (postgres, postgres_templates) = module("pg-backup", "postgres", "sql");
        let (sqlserver, sqlserver_templates) = module("mssql-backup", "sqlserver", "tsql");
        let (again, again_templates) = module("pg-backup-2", "postgres", "sql");
        let templates = Templates::from_files(
            [postgres_templates, sqlserver_templates, again_templates]
                .into_iter()
                .flatten()
                .collect(),
        )
        .unwrap();
        let engines = EngineCatalog::embedded().unwrap();
        let catalog = ModuleCatalog::from_files(
            vec![postgres.clone(), sqlserver.clone()],
            &templates,
            &engines,
        )
        .unwrap();
        assert_eq!(
            catalog.get("Backup", "postgres").unwrap().directory,
            "modules/pg-backup"
        );
        assert_eq!(
            catalog.get("Backup", "sqlserver").unwrap().directory,
            "modules/mssql-backup"
        );
        assert_eq!(catalog.of_kind("Backup").count(), 2);
        assert!(catalog.get("Backup", "windows").is_none());
        let error =
            ModuleCatalog::from_files(vec![postgres, again], &templates, &engines).unwrap_err();
        assert!(
            format!("{error:#}").contains("two modules for kind Backup on postgres"),
            "{error:#}"
        );
    }
}
