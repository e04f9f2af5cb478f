//! The engine: from a validated fleet to desired items (`prepare`, no IO but
//! reading secrets), live state (`discover`, read-only IO through
//! connectors) and a plan (`build_plan`, pure). `ops::apply` executes a plan.
//!
//! The engine knows modules and connectors only through their contracts: it
//! never contains SQL and never asks which database product it talks to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::connector::{Endpoint, Session};
use crate::engines::EngineCatalog;
use crate::model::plan::{
    Action, Blocked, DriftStatus, ItemChange, NotPlanned, PLAN_FORMAT_VERSION, Plan,
    ResourceChange, Risk, TargetError, TargetPin, UnmanagedObject,
};
use crate::model::{Target, ValidatedFleet};
use crate::modules::{Compare, Module, ModuleCatalog};
use crate::ops::diff::{self, DesiredItem, ItemDiff};
use crate::schemas::{INVENTORY_CATEGORY, SchemaCatalog};
use crate::secrets::{SecretHasher, SecretRef};
use crate::template::{self, Templates};

mod desired;
mod discover;
mod ownership;
mod plan;
mod plan_resource;
mod render;

pub use desired::{find_row, recorded_spec, redact_row, row_identity};
pub use discover::{databases_of, query_rows};
pub use ownership::{claim_created, prune_resource};
pub use render::{RenderMode, Step};

// Shared by the parts of the engine.
use desired::{desired_items, entry_identity, mark_sql, mark_sql_in_change, redact_spec};
use plan_resource::observed_fields;

/// The last line of the comment of every object fleetform creates: it
/// names the owner that created it (the environment, or
/// `<environment>@<repository>`), and only that owner's --prune deletes the
/// object (templates/postgres/ownership.sql reads it).
pub fn ownership_marker(owner: &str) -> String {
    format!("[managed by fleetform: environment {owner}]")
}

/// The key of the apply lock (`pg_advisory_lock`): "fleetfor" in ASCII.
pub const LOCK_KEY: i64 = 0x666c_6565_7466_6f72;

/// Settings of one plan, apply or drift run, resolved once.
#[derive(Clone, Debug)]
pub struct RunSettings {
    pub parallelism: usize,
    /// Plan deletions of owned objects that left the manifests.
    pub prune: bool,
    /// Addresses allowed to be dropped and recreated for a fixed-field change.
    pub replace: BTreeSet<String>,
    /// Prune addresses allowed to drop what they hold that fleetform did not create.
    pub destroy: BTreeSet<String>,
    /// Only these resources (address, `Kind/name` or kind); empty: all.
    pub only: Vec<String>,
    pub lock_timeout: Duration,
    pub actor: String,
    pub commit: Option<String>,
    pub repository_root: PathBuf,
    /// The salt of a saved plan's secret hashes; a new plan draws its own.
    pub secret_salt: Option<String>,
    /// `--base REV`: what changed since REV, and so what this run plans.
    pub scope: Option<crate::ops::changes::Scope>,
}

impl RunSettings {
    /// Whether the run covers the whole environment (no --target, no
    /// --base that narrows it): only then is anything pruned or listed as
    /// unmanaged, and every instance read.
    pub fn whole_environment(&self) -> bool {
        self.only.is_empty()
            && self
                .scope
                .as_ref()
                .is_none_or(|scope| scope.everything.is_some())
    }
}

/// One resource's desired state, ready to diff.
#[derive(Clone, Debug)]
pub struct DesiredResource {
    pub address: String,
    pub kind: String,
    /// The manifest object's `metadata.name`.
    pub name: String,
    pub target: String,
    /// For an object that spans targets, the one that converges first
    /// (templates see it as `lead`; `target == lead` on the lead).
    pub lead: Option<String>,
    /// The database the objects live in, for database-scoped modules.
    pub database: Option<String>,
    /// The spec with schema defaults filled in; secrets are still references.
    pub spec: Value,
    pub items: Vec<DesiredItem>,
    /// Indexes (into `Engine::resources`) of what must converge first.
    pub dependencies: Vec<usize>,
    /// Why the resource cannot be planned (a secret that cannot be read, no module).
    pub blocked: Option<Blocked>,
    /// The root of `blocked` when others may share it (a secret not set).
    pub cause: Option<String>,
}

/// Everything a run needs, owned so that tasks can share it.
pub struct Engine {
    pub environment: String,
    /// Who owns what this run creates: the environment's name, or
    /// `<name>@<repository>` with `spec.repository`. The ownership marker
    /// and the ledger rows carry it; prune touches only its own.
    pub owner: String,
    pub settings: RunSettings,
    pub modules: ModuleCatalog,
    /// What differs between engines, as data (templates/<engine>/engine.yaml).
    pub engines: EngineCatalog,
    pub templates: Templates,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The Server each instance runs on: its endpoint restarts the
    /// instance and runs module actions declared `through: host`.
    pub hosts: BTreeMap<String, String>,
    /// Servers fleetform cannot reach yet, and why.
    pub unreachable: BTreeMap<String, String>,
    /// Instances read from a discovery snapshot instead of over the network.
    pub snapshots: BTreeMap<String, PathBuf>,
    /// Each snapshot file, parsed once per run however many instances it
    /// records.
    pub(crate) snapshot_files:
        std::sync::Mutex<BTreeMap<PathBuf, Arc<crate::ops::snapshot::Snapshot>>>,
    /// Per instance, what templates see as `instance` (spec, disk folders, availability groups).
    pub instances: BTreeMap<String, Value>,
    /// Per Server, what host templates see as `server` (host, os, state directory).
    pub servers: BTreeMap<String, Value>,
    pub resources: Vec<DesiredResource>,
    /// Kinds of the manifests no module converges on their targets yet.
    pub not_planned: Vec<NotPlanned>,
    /// (kind, metadata.name) of every manifest object, for names that must
    /// not clash (import).
    pub manifest_names: BTreeSet<(String, String)>,
    /// Hashes the secrets each resource uses, for the plan's stale check.
    pub secret_hasher: SecretHasher,
    /// Where the run's progress goes (stderr; off unless the command sets it).
    pub progress: Arc<crate::progress::Progress>,
}

/// The live state of one target.
#[derive(Clone, Debug, Default)]
pub struct TargetObservation {
    /// Server facts every template may use (`server_version_num`...).
    pub facts: Map<String, Value>,
    /// Discovered rows per kind and database (None: instance-wide).
    pub rows: BTreeMap<(String, Option<String>), Vec<Row>>,
    /// The ledger's last converged entry per resource address.
    pub ledger: BTreeMap<String, LedgerEntry>,
    /// Resources an interrupted apply was converging (their `started` row).
    pub interrupted: BTreeMap<String, LedgerEntry>,
    pub ledger_exists: bool,
    /// Related live things no manifest manages, per kind and database.
    pub inventory: BTreeMap<(String, Option<String>), Vec<String>>,
    /// Resources of ledger-owned kinds that the ledger says were applied
    /// here and that left the manifests, with the spec recorded then.
    pub orphans: Vec<DesiredResource>,
    /// What the manifests' resources superseded (see `Engine::superseded`).
    pub superseded: Vec<Superseded>,
    /// The answers of the modules' inventory probes, per kind (live
    /// discovery only: a snapshot records the inventory itself).
    pub probes: BTreeMap<String, Value>,
}

/// What a resource of the manifests no longer manages but its previous
/// definition (the spec the ledger recorded) applied.
#[derive(Clone, Debug)]
pub struct Superseded {
    /// The address of the resource of the manifests.
    pub of: String,
    /// A stand-in with the recorded spec and the superseded items only.
    pub resource: DesiredResource,
    /// Items dropped from a kind with items: deleted with --prune only.
    /// Otherwise the resource now manages something else, and its update
    /// undoes what the previous definition applied.
    pub needs_prune: bool,
}

/// The ledger result written before a resource's first action, so that a
/// run killed before its outcome row leaves a trace: a resource whose newest
/// row says this was being converged by an apply that was interrupted.
pub const LEDGER_STARTED: &str = "started";

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct LedgerEntry {
    pub resource: String,
    pub action: String,
    /// `converged`, or `started` for the newest row of an interrupted run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// An apply of this owner created the resource's object (a converged
    /// create or replace): for kinds owned by a marker, an object of it
    /// whose marker someone removed is still fleetform's, and the marker is
    /// put back when its comment is written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    pub desired_fingerprint: String,
    pub observed_fingerprint: Option<String>,
    #[serde(default)]
    pub observed_items: Option<BTreeMap<String, String>>,
    pub commit: Option<String>,
    pub actor: Option<String>,
    pub recorded_at: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    /// The spec applied (sensitive fields as `(sensitive)`).
    #[serde(default)]
    pub spec: Option<Value>,
}

impl LedgerEntry {
    /// The latest entries of a ledger (a JSON array of rows) by resource:
    /// the last converged ones, and apart from them the `started` rows of
    /// interrupted runs. A row that is not a ledger entry, or whose spec is
    /// not an object (edited by hand), is set aside with a warning naming
    /// it: its resource is then not known to be fleetform's (never pruned),
    /// and the others are read.
    pub fn read_all(rows: Value, ledger: &str) -> Result<LedgerRead> {
        let rows = match rows {
            Value::Null => Vec::new(),
            Value::Array(rows) => rows,
            other => bail!("the ledger on {ledger} returned {other}, not a list of entries"),
        };
        let mut entries = BTreeMap::new();
        let mut interrupted = BTreeMap::new();
        for row in rows {
            let resource = row
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or("(a row without a resource)")
                .to_string();
            match serde_json::from_value::<LedgerEntry>(row) {
                Ok(mut entry) => {
                    if entry.spec.as_ref().is_some_and(|spec| !spec.is_object()) {
                        tracing::warn!(
                            "the ledger on {ledger}: {resource} has a recorded spec that is not an object; it is set aside (not pruned, not compared with the manifests)"
                        );
                        entry.spec = None;
                    }
                    if entry.result.as_deref() == Some(LEDGER_STARTED) {
                        interrupted.insert(entry.resource.clone(), entry);
                    } else {
                        entries.insert(entry.resource.clone(), entry);
                    }
                }
                Err(error) => tracing::warn!(
                    "the ledger on {ledger}: the entry of {resource} has an unexpected shape ({error}); it is set aside"
                ),
            }
        }
        Ok(LedgerRead {
            latest: entries,
            interrupted,
        })
    }
}

/// A target's ledger as plan reads it.
#[derive(Clone, Debug, Default)]
pub struct LedgerRead {
    /// The last converged entry per resource address.
    pub latest: BTreeMap<String, LedgerEntry>,
    /// The `started` entry of resources an interrupted apply was converging
    /// (no outcome followed in its run, nor a converged row since).
    pub interrupted: BTreeMap<String, LedgerEntry>,
}

pub type Observations = BTreeMap<String, Result<TargetObservation, ReadFailure>>;

/// Why a target could not be read: the whole message and its innermost
/// error, by which reports group the targets one cause stops.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadFailure {
    pub message: String,
    pub cause: String,
}

impl ReadFailure {
    pub fn of(error: &anyhow::Error) -> Self {
        ReadFailure {
            message: format!("{error:#}"),
            cause: error.root_cause().to_string(),
        }
    }

    /// A failure that is its own cause.
    pub fn plain(message: String) -> Self {
        ReadFailure {
            cause: message.clone(),
            message,
        }
    }
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// One discovered object: field name to value.
pub type Row = Map<String, Value>;

/// Two resources of a kind with item sources that set one item (a
/// parameter) on one target would change it back and forth on every apply:
/// the later one is refused, naming the first.
fn refuse_items_set_twice(resources: &mut [DesiredResource], modules: &ModuleCatalog) {
    let mut first: BTreeMap<(String, String, Option<String>, String), String> = BTreeMap::new();
    for resource in resources.iter_mut() {
        let itemized = modules
            .iter()
            .any(|module| module.kind == resource.kind && !module.item_sources.is_empty());
        if !itemized || resource.blocked.is_some() {
            continue;
        }
        let mut twice = Vec::new();
        for item in &resource.items {
            let key = (
                resource.target.clone(),
                resource.kind.clone(),
                resource.database.clone(),
                item.identity.clone(),
            );
            match first.get(&key) {
                Some(earlier) => twice.push(format!("{} (also set by {earlier})", item.identity)),
                None => {
                    first.insert(key, resource.address.clone());
                }
            }
        }
        if !twice.is_empty() {
            resource.blocked = Some(Blocked::Refused(format!(
                "sets what another object sets: {}; one object per item and target, or every apply would change it back and forth",
                twice.join(", ")
            )));
        }
    }
}

impl Engine {
    /// Desired resources of `fleet` with modules and endpoints; reads secrets.
    pub fn prepare(
        fleet: &ValidatedFleet,
        catalog: &SchemaCatalog,
        settings: RunSettings,
    ) -> Result<Engine> {
        Self::prepare_with(fleet, catalog, settings, Vec::new())
    }

    /// The same with `extra` files beside the built-in ones: modules
    /// (`modules/<engine>/<kind>/...`), engine templates and profiles
    /// (`templates/<engine>/...`), as a test fixture brings its own.
    pub fn prepare_with(
        fleet: &ValidatedFleet,
        catalog: &SchemaCatalog,
        settings: RunSettings,
        extra: Vec<(String, String)>,
    ) -> Result<Engine> {
        let mut template_files = crate::template::embedded_template_files();
        let mut module_files = crate::template::embedded_module_files();
        for (name, text) in extra {
            if name.starts_with("modules/") {
                module_files.push((name, text));
            } else {
                template_files.push((name, text));
            }
        }
        let templates = Templates::from_files(
            module_files
                .iter()
                .chain(&template_files)
                .cloned()
                .collect(),
        )?;
        let engines = EngineCatalog::from_files(template_files)?;
        let modules = ModuleCatalog::from_files(module_files, &templates, &engines)?;
        let mut endpoints = crate::ops::targets::resolve_endpoints(
            fleet,
            catalog,
            &engines,
            &settings.repository_root,
        )?;
        let servers = crate::ops::targets::resolve_servers(fleet, catalog, &engines);
        endpoints.extend(servers.endpoints);
        let hosts = crate::ops::targets::resolve_instance_hosts(fleet, catalog);
        let snapshots =
            crate::ops::targets::resolve_snapshots(fleet, catalog, &settings.repository_root);
        let instances = crate::ops::targets::resolve_instance_contexts(fleet, catalog);
        let narrowed: Option<BTreeSet<String>> = settings
            .scope
            .as_ref()
            .and_then(|scope| scope.addresses())
            .map(|addresses| addresses.into_iter().collect());
        let keep = if let Some(addresses) = &narrowed {
            // Exactly the scope (it holds what its resources need).
            Some(
                fleet
                    .graph
                    .resources
                    .iter()
                    .enumerate()
                    .filter(|(_, resource)| addresses.contains(&resource.address.to_string()))
                    .map(|(index, _)| index)
                    .collect::<BTreeSet<usize>>(),
            )
        } else if settings.only.is_empty() {
            None
        } else {
            let keep = crate::ops::graph::restrict(&fleet.graph, &settings.only);
            if keep.is_empty() {
                anyhow::bail!("no resource matches --target {}", settings.only.join(", "));
            }
            Some(keep)
        };
        let mut position_of_graph_index = BTreeMap::new();
        let mut resources = Vec::new();
        // (kind, why) -> the resources of the kind that no module converges
        // on their targets: listed once per kind in the plan.
        let mut not_planned: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for graph_index in fleet.graph.topological_order() {
            let resource = &fleet.graph.resources[graph_index];
            if keep
                .as_ref()
                .is_some_and(|keep| !keep.contains(&graph_index))
            {
                continue;
            }
            let object = &fleet.manifests.objects[resource.object];
            let address = resource.address.to_string();
            // Instances and Servers are both targets, named uniquely.
            let instance = match &resource.target {
                Target::Instance(target) | Target::Server(target) => {
                    endpoints.get(target).map(|endpoint| (target, endpoint))
                }
                Target::None => None,
            };
            let module =
                instance.and_then(|(_, endpoint)| modules.get(&object.kind, endpoint.engine()));
            let (Some((target, _)), Some(module)) = (instance, module) else {
                let unavailable = resource
                    .target
                    .name()
                    .and_then(|name| servers.unavailable.get(name))
                    .filter(|_| {
                        engines
                            .of_target(fleet, &resource.target)
                            .is_some_and(|engine| modules.get(&object.kind, &engine.name).is_some())
                    });
                let reason = match unavailable {
                    Some(reason) => Some(reason.clone()),
                    None => not_planned_reason(fleet, catalog, &engines, resource),
                };
                if let Some(reason) = reason {
                    not_planned
                        .entry((object.kind.clone(), reason))
                        .or_default()
                        .push(address);
                }
                continue;
            };
            let spec = Value::Object(catalog.spec_with_defaults(&object.kind, object.spec()));
            // A snapshot target is never written to and its rows hold no
            // secrets: a secret that cannot be read here is not needed.
            let offline = snapshots.contains_key(target);
            let (items, blocked, cause) =
                match desired_items(module, &spec, &object.name, &settings, &templates, offline) {
                    Ok(items) => (items, None, None),
                    Err(error) => (
                        Vec::new(),
                        Some(Blocked::Unresolvable(format!("{error:#}"))),
                        Some(error.root_cause().to_string()),
                    ),
                };
            let dependencies = fleet.graph.dependencies[graph_index]
                .iter()
                .filter_map(|(dependency, _)| position_of_graph_index.get(dependency).copied())
                .collect();
            position_of_graph_index.insert(graph_index, resources.len());
            let database = Some(module)
                .filter(|module| module.scope == crate::modules::Scope::Database)
                .and_then(|_| spec.get("database"))
                .and_then(Value::as_str)
                .map(str::to_string);
            resources.push(DesiredResource {
                address,
                kind: object.kind.clone(),
                name: object.name.clone(),
                target: target.clone(),
                lead: resource.lead.clone(),
                database,
                spec,
                items,
                dependencies,
                blocked,
                cause,
            });
        }
        refuse_items_set_twice(&mut resources, &modules);
        if keep.is_none() {
            for object in &fleet.manifests.objects {
                let Some(info) = catalog.kind(&object.kind) else {
                    continue;
                };
                if !info.is_resource && info.category != INVENTORY_CATEGORY {
                    not_planned
                        .entry((
                            object.kind.clone(),
                            "a definition: nothing converges it yet".to_string(),
                        ))
                        .or_default()
                        .push(format!("{}/{}", object.kind, object.name));
                }
            }
        }
        let secret_hasher = match &settings.secret_salt {
            Some(salt) => SecretHasher::from_hex(salt)?,
            None => SecretHasher::random()?,
        };
        Ok(Engine {
            secret_hasher,
            progress: Arc::default(),
            environment: fleet.manifests.environment.name.clone(),
            owner: fleet.manifests.environment.owner(),
            not_planned: not_planned
                .into_iter()
                .map(|((kind, reason), resources)| NotPlanned {
                    kind,
                    reason,
                    resources,
                })
                .collect(),
            settings,
            modules,
            engines,
            templates,
            endpoints,
            hosts,
            unreachable: servers.unavailable,
            snapshots,
            snapshot_files: Default::default(),
            instances,
            servers: servers.contexts,
            resources,
            manifest_names: fleet
                .manifests
                .objects
                .iter()
                .map(|object| (object.kind.clone(), object.name.clone()))
                .collect(),
        })
    }

    /// Targets whose live state this run needs: those of the resources, and
    /// with modules that own objects, every instance (to find what to prune).
    pub fn targets(&self) -> BTreeSet<String> {
        let mut targets: BTreeSet<String> = self
            .resources
            .iter()
            .filter(|resource| resource.blocked.is_none())
            .map(|resource| resource.target.clone())
            .collect();
        if self.settings.whole_environment() {
            // Instances of an engine no module manages yet are not read.
            let managed = |target: &String| {
                self.endpoints.get(target).is_none_or(|endpoint| {
                    self.modules
                        .iter()
                        .any(|module| module.engine == endpoint.engine())
                })
            };
            targets.extend(
                self.endpoints
                    .keys()
                    .filter(|target| managed(target))
                    .cloned(),
            );
            targets.extend(
                self.snapshots
                    .keys()
                    .filter(|target| managed(target))
                    .cloned(),
            );
        }
        targets
    }

    /// Context every template of `target` sees.
    pub fn base_context(&self, target: &str, facts: &Map<String, Value>) -> Map<String, Value> {
        let mut context = facts.clone();
        context.insert("target".into(), json!(target));
        context.insert("marker".into(), json!(ownership_marker(&self.owner)));
        context.insert("lock_key".into(), json!(LOCK_KEY));
        // The ledger's `environment` column (and a host ledger's folder) is
        // the owner: two repositories' `prod` keep apart.
        context.insert("environment".into(), json!(self.owner));
        context.insert(
            "instance".into(),
            self.instances.get(target).cloned().unwrap_or(Value::Null),
        );
        // A Server's own templates see it; an instance's see the Server it runs on.
        let server = self.servers.get(target).or_else(|| {
            self.hosts
                .get(target)
                .and_then(|host| self.servers.get(host))
        });
        context.insert("server".into(), server.cloned().unwrap_or(Value::Null));
        context.insert("fleetform_pid".into(), json!(std::process::id()));
        context
    }

    /// The endpoint of the host `instance` runs on (its Server, reached
    /// through the Server's host engine), or why there is none.
    pub fn host_endpoint(&self, instance: &str) -> Result<&Endpoint> {
        let Some(server) = self.hosts.get(instance) else {
            anyhow::bail!("{instance} names no Server it runs on");
        };
        if let Some(reason) = self.unreachable.get(server) {
            anyhow::bail!("{reason}");
        }
        self.endpoints
            .get(server)
            .filter(|endpoint| endpoint.profile.server_os.is_some())
            .with_context(|| {
                format!(
                    "the Server {server} of {instance} has no operating system fleetform manages"
                )
            })
    }

    /// The module that converges `kind` on `target`: the one of the target's
    /// engine.
    pub fn module(&self, kind: &str, target: &str) -> Option<&Module> {
        let endpoint = self.endpoints.get(target)?;
        self.modules.get(kind, endpoint.engine())
    }
}

/// Why a resource of the graph is not planned (no module converges its kind
/// on its target's engine), or none for the inventory itself (servers,
/// instances, groups: the targets, not something converged on one).
fn not_planned_reason(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
    engines: &EngineCatalog,
    resource: &crate::model::Resource,
) -> Option<String> {
    let object = &fleet.manifests.objects[resource.object];
    let info = catalog.kind(&object.kind)?;
    if info.category == INVENTORY_CATEGORY {
        return None;
    }
    let find =
        |name: &str, kinds: &[&str]| {
            fleet.manifests.objects.iter().find(|candidate| {
                candidate.name == name && kinds.contains(&candidate.kind.as_str())
            })
        };
    Some(match &resource.target {
        Target::Instance(name) => {
            let engine = find(name, &catalog.instance_kinds(None))
                .and_then(|instance| catalog.engine_of_instance_kind(&instance.kind));
            format!(
                "no module converges it on a {} instance yet",
                catalog.describe_engine(engine)
            )
        }
        Target::Server(name) => {
            let host = find(name, &["Server"])
                .and_then(|server| server.spec_str("os"))
                .and_then(|os| engines.of_server_os(os))
                .map_or("host", |profile| profile.description.as_str());
            format!("no module converges it on a {host} yet")
        }
        Target::None => "no module converges it yet".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine of an environment `t` whose manifests are `objects`.
    pub(super) fn engine_of(objects: &str, prune: bool, only: &[&str]) -> Engine {
        let files = BTreeMap::from([
            (
                "environments/t/environment.yaml".to_string(),
                "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
                    .to_string(),
            ),
            ("environments/t/fleet.yaml".to_string(), objects.to_string()),
        ]);
        let catalog = SchemaCatalog::embedded().unwrap();
        let check = crate::ops::check_environment(
            &crate::source::ManifestSource::Memory { files },
            "t",
            &catalog,
        );
        let fleet = check
            .fleet
            .unwrap_or_else(|| panic!("{:?}", check.diagnostics));
        let settings = RunSettings {
            parallelism: 1,
            prune,
            replace: BTreeSet::new(),
            destroy: BTreeSet::new(),
            only: only.iter().map(|only| only.to_string()).collect(),
            lock_timeout: Duration::from_secs(1),
            actor: "test".into(),
            commit: None,
            repository_root: PathBuf::from("/repo"),
            secret_salt: None,
            scope: None,
        };
        Engine::prepare(&fleet, &catalog, settings).unwrap()
    }

    /// A Linux server with PostgreSQL instance pg-a, and `objects`.
    pub(super) const PG_A: &str = "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: linux-1}\nspec: {host: 127.0.0.1, os: linux}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {name: pg-a}\nspec: {server: linux-1, version: 15}\n";

    /// An environment with a PostgreSQL and a SQL Server instance.
    fn mixed_engine(prune: bool) -> Engine {
        engine_of(
            &(PG_A.to_string()
                + "---\napiVersion: fleetform/v1\nkind: Server\nmetadata: {name: win-1}\nspec: {host: 127.0.0.2, os: windows}\n\
---\napiVersion: fleetform/v1\nkind: SqlInstance\nmetadata: {name: sql-a}\nspec: {server: win-1, version: 2022}\n\
---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {name: app}\nspec: {on: {instances: [pg-a]}}\n\
---\napiVersion: fleetform/v1\nkind: SqlDatabase\nmetadata: {name: sales}\nspec: {on: {instances: [sql-a]}}\n"),
            prune,
            &[],
        )
    }

    /// What is read on a target is its own engine's: a PostgreSQL query is
    /// never sent to SQL Server, and system databases are not searched.
    #[test]
    fn a_target_is_read_only_with_its_own_engines_modules() {
        for prune in [false, true] {
            let engine = mixed_engine(prune);
            let databases: BTreeSet<String> = ["master", "msdb", "sales", "template1", "app"]
                .map(String::from)
                .into();
            for (target, own, system) in [
                ("sql-a", "sqlserver", ["master", "msdb"].as_slice()),
                ("pg-a", "postgres", ["template1"].as_slice()),
            ] {
                let modules = engine.modules_for(target, &databases, &[], &BTreeMap::new());
                assert!(!modules.is_empty(), "{target}");
                for (module, database) in &modules {
                    assert_eq!(module.engine, own, "{} on {target}", module.kind);
                    let database = database.as_deref().unwrap_or_default();
                    assert!(
                        !system.contains(&database),
                        "{} searched in {database} on {target}",
                        module.kind
                    );
                }
            }
            let postgres: Vec<&str> = engine
                .modules_for("pg-a", &databases, &[], &BTreeMap::new())
                .into_iter()
                .map(|(module, _)| module.kind.as_str())
                .collect();
            assert!(postgres.contains(&"PostgresRole"), "{postgres:?}");
        }
    }
}
