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
    ResourceChange, Risk, TargetError, UnmanagedObject,
};
use crate::model::{Target, ValidatedFleet};
use crate::modules::{Compare, Module, ModuleCatalog};
use crate::ops::diff::{self, DesiredItem, ItemDiff};
use crate::schemas::{INVENTORY_CATEGORY, SchemaCatalog};
use crate::secrets::SecretRef;
use crate::template::{self, Templates};

/// The last line of the comment of every object fleetform creates.
pub const OWNERSHIP_MARKER: &str = "[managed by fleetform]";

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
    /// Only these resources (address, `Kind/name` or kind); empty: all.
    pub only: Vec<String>,
    pub lock_timeout: Duration,
    pub actor: String,
    pub commit: Option<String>,
    pub repository_root: PathBuf,
}

/// One resource's desired state, ready to diff.
#[derive(Clone, Debug)]
pub struct DesiredResource {
    pub address: String,
    pub kind: String,
    pub target: String,
    /// The database the objects live in, for database-scoped modules.
    pub database: Option<String>,
    /// The spec with schema defaults filled in; secrets are still references.
    pub spec: Value,
    pub items: Vec<DesiredItem>,
    /// Indexes (into `Engine::resources`) of what must converge first.
    pub dependencies: Vec<usize>,
    /// Why the resource cannot be planned (a secret that cannot be read, no module).
    pub blocked: Option<Blocked>,
}

/// Everything a run needs, owned so that tasks can share it.
pub struct Engine {
    pub environment: String,
    pub settings: RunSettings,
    pub modules: ModuleCatalog,
    /// What differs between engines, as data (templates/<engine>/engine.yaml).
    pub engines: EngineCatalog,
    pub templates: Templates,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// How to reach each instance's operating system (for restarts).
    pub hosts: BTreeMap<String, crate::ops::targets::HostAccess>,
    /// Instances read from a discovery snapshot instead of over the network.
    pub snapshots: BTreeMap<String, PathBuf>,
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
    pub ledger_exists: bool,
    /// Related live things no manifest manages, per kind and database.
    pub inventory: BTreeMap<(String, Option<String>), Vec<String>>,
    /// Resources of ledger-owned kinds that the ledger says were applied
    /// here and that left the manifests, with the spec recorded then.
    pub orphans: Vec<DesiredResource>,
    /// What the manifests' resources superseded (see `Engine::superseded`).
    pub superseded: Vec<Superseded>,
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

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct LedgerEntry {
    pub resource: String,
    pub action: String,
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
    /// The latest entries of a ledger (a JSON array of rows) by resource. A
    /// row that is not a ledger entry, or whose spec is not an object (edited
    /// by hand), is set aside with a warning naming it: its resource is then
    /// not known to be fleetform's (never pruned), and the others are read.
    pub fn read_all(rows: Value, ledger: &str) -> Result<BTreeMap<String, LedgerEntry>> {
        let rows = match rows {
            Value::Null => Vec::new(),
            Value::Array(rows) => rows,
            other => bail!("the ledger on {ledger} returned {other}, not a list of entries"),
        };
        let mut entries = BTreeMap::new();
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
                    entries.insert(entry.resource.clone(), entry);
                }
                Err(error) => tracing::warn!(
                    "the ledger on {ledger}: the entry of {resource} has an unexpected shape ({error}); it is set aside"
                ),
            }
        }
        Ok(entries)
    }
}

pub type Observations = BTreeMap<String, Result<TargetObservation, String>>;

/// One discovered object: field name to value.
pub type Row = Map<String, Value>;

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
        let hosts = crate::ops::targets::resolve_hosts(fleet, catalog);
        let snapshots =
            crate::ops::targets::resolve_snapshots(fleet, catalog, &settings.repository_root);
        let instances = crate::ops::targets::resolve_instance_contexts(fleet, catalog);
        let keep = if settings.only.is_empty() {
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
            let (items, blocked) =
                match desired_items(module, &spec, &object.name, &settings, &templates, offline) {
                    Ok(items) => (items, None),
                    Err(error) => (
                        Vec::new(),
                        Some(Blocked::Unresolvable(format!("{error:#}"))),
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
                target: target.clone(),
                database,
                spec,
                items,
                dependencies,
                blocked,
            });
        }
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
        Ok(Engine {
            environment: fleet.manifests.environment.name.clone(),
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
            snapshots,
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
        if self.settings.only.is_empty() {
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

    /// What to discover on `target`: each module, with the database for
    /// database-scoped modules. With the whole environment, modules that own
    /// objects are also discovered where nothing declares them (to find what
    /// to prune): instance-wide, and in every database the manifests name on
    /// the target (every database, with --prune).
    pub fn modules_for(
        &self,
        target: &str,
        existing_databases: &BTreeSet<String>,
        orphans: &[DesiredResource],
    ) -> Vec<(&Module, Option<String>)> {
        let on_target: Vec<&DesiredResource> = self
            .resources
            .iter()
            .filter(|resource| resource.target == target && resource.blocked.is_none())
            .chain(orphans)
            .collect();
        let Some(endpoint) = self.endpoints.get(target) else {
            return Vec::new();
        };
        let profile = &endpoint.profile;
        let mut scopes: BTreeSet<(String, Option<String>)> = on_target
            .iter()
            .map(|resource| (resource.kind.clone(), resource.database.clone()))
            .collect();
        if self.settings.only.is_empty() {
            let mut databases: BTreeSet<String> = on_target
                .iter()
                .filter_map(|resource| resource.database.clone())
                .collect();
            // To prune, every database is searched: what left the manifests
            // may sit in a database no manifest names any more.
            if self.settings.prune {
                databases.extend(
                    existing_databases
                        .iter()
                        .filter(|name| !profile.system_databases.contains(name))
                        .cloned(),
                );
            }
            // Only this target's engine's modules: a PostgreSQL query is
            // never sent to SQL Server.
            for module in self.modules.iter() {
                // Marked objects are searched for; ledger-owned ones are
                // named by the ledger (the orphans above).
                let marked = module
                    .ownership
                    .as_ref()
                    .is_some_and(|ownership| ownership.field.is_some());
                if !marked || module.engine != profile.name {
                    continue;
                }
                match module.scope {
                    crate::modules::Scope::Instance => {
                        scopes.insert((module.kind.clone(), None));
                    }
                    crate::modules::Scope::Database => {
                        for database in &databases {
                            scopes.insert((module.kind.clone(), Some(database.clone())));
                        }
                    }
                }
            }
        }
        scopes
            .into_iter()
            .filter_map(|(kind, database)| {
                self.modules
                    .get(&kind, &profile.name)
                    .map(|module| (module, database))
            })
            .collect()
    }

    /// Identities wanted of `kind` on `target` in `database` (discovery may
    /// filter on them), with those of `extra` (resources that left the manifests).
    fn identities(
        &self,
        kind: &str,
        target: &str,
        database: Option<&str>,
        extra: &[DesiredResource],
    ) -> Vec<String> {
        self.resources
            .iter()
            .chain(extra)
            .filter(|resource| {
                resource.kind == kind
                    && resource.target == target
                    && resource.database.as_deref() == database
            })
            .flat_map(|resource| resource.items.iter().map(|item| item.identity.clone()))
            .collect()
    }

    /// Context every template of `target` sees.
    pub fn base_context(&self, target: &str, facts: &Map<String, Value>) -> Map<String, Value> {
        let mut context = facts.clone();
        context.insert("target".into(), json!(target));
        context.insert("marker".into(), json!(OWNERSHIP_MARKER));
        context.insert("lock_key".into(), json!(LOCK_KEY));
        context.insert("environment".into(), json!(self.environment));
        context.insert(
            "instance".into(),
            self.instances.get(target).cloned().unwrap_or(Value::Null),
        );
        context.insert(
            "server".into(),
            self.servers.get(target).cloned().unwrap_or(Value::Null),
        );
        context.insert("fleetform_pid".into(), json!(std::process::id()));
        context
    }

    /// Read the live state of every target, `parallelism` targets at a time.
    pub async fn discover(self: &Arc<Self>) -> Observations {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.settings.parallelism.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        let mut target_of_task = BTreeMap::new();
        for target in self.targets() {
            let engine = Arc::clone(self);
            let limit = Arc::clone(&limit);
            let name = target.clone();
            let handle = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let observation = engine.discover_target(&target).await;
                (target, observation.map_err(|error| format!("{error:#}")))
            });
            target_of_task.insert(handle.id(), name);
        }
        let mut observations = Observations::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((target, observation)) => {
                    observations.insert(target, observation);
                }
                // A reading that panicked is an error of its target, never
                // a target silently missing from the plan.
                Err(error) => {
                    if let Some(target) = target_of_task.get(&error.id()) {
                        observations.insert(
                            target.clone(),
                            Err(format!("reading the instance failed unexpectedly: {error}")),
                        );
                    }
                }
            }
        }
        observations
    }

    pub async fn discover_target(&self, target: &str) -> Result<TargetObservation> {
        if let Some(path) = self.snapshots.get(target) {
            return self.snapshot_observation(target, path);
        }
        let endpoint = self
            .endpoints
            .get(target)
            .with_context(|| format!("no instance {target} in the environment"))?;
        let started = std::time::Instant::now();
        let session = endpoint.connect(None).await?;
        let facts = self.server_facts(endpoint, &session).await?;
        endpoint.check_facts(&facts)?;
        let existing = databases_of(&facts);
        let mut observation = TargetObservation {
            facts,
            ..TargetObservation::default()
        };
        let mut context = self.base_context(target, &observation.facts);
        let exists = session
            .query_json(&self.templates.render(
                &endpoint.script("ledger/exists"),
                &Value::Object(context.clone()),
            )?)
            .await
            .with_context(|| format!("cannot look for the ledger on {}", endpoint.describe()))?;
        observation.ledger_exists = exists
            .get("exists")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        context.insert("ledger_exists".into(), json!(observation.ledger_exists));
        let entries = session
            .query_json(
                &self
                    .templates
                    .render(&endpoint.script("ledger/latest"), &Value::Object(context))?,
            )
            .await
            .with_context(|| format!("cannot read the ledger on {}", endpoint.describe()))?;
        observation.ledger = LedgerEntry::read_all(entries, &endpoint.describe())?;
        observation.orphans = self.orphans(target, &observation.ledger);
        observation.superseded = self.superseded(target, &observation.ledger);
        let mut database_sessions: BTreeMap<String, Session> = BTreeMap::new();
        let beyond_manifests: Vec<DesiredResource> = observation
            .orphans
            .iter()
            .chain(
                observation
                    .superseded
                    .iter()
                    .map(|superseded| &superseded.resource),
            )
            .cloned()
            .collect();
        for (module, database) in self.modules_for(target, &existing, &beyond_manifests) {
            // The maintenance session for instance-wide kinds, one session per
            // database for the others. A database that does not exist yet
            // (apply creates it first) holds nothing: its rows stay unknown.
            if let Some(name) = &database {
                if !existing.contains(name) {
                    continue;
                }
                if !database_sessions.contains_key(name) {
                    let opened = endpoint.connect(Some(name)).await?;
                    database_sessions.insert(name.clone(), opened);
                }
            }
            let scope_session = match &database {
                Some(name) => &database_sessions[name],
                None => &session,
            };
            let place = database.as_deref();
            let in_scope = |extra: &DesiredResource| {
                extra.kind == module.kind && extra.database.as_deref() == place
            };
            let mut orphans: &[DesiredResource] = &beyond_manifests;
            let rows = match self
                .discover_module(
                    scope_session,
                    module,
                    target,
                    place,
                    &observation.facts,
                    orphans,
                )
                .await
            {
                Ok(rows) => rows,
                // What the ledger recorded (a custom SQL query of an old
                // commit) must not stop the plan: without it, and not pruned.
                Err(error) if beyond_manifests.iter().any(in_scope) => {
                    tracing::warn!(
                        target = %target,
                        kind = %module.kind,
                        error = %format!("{error:#}"),
                        "discovering what left the manifests failed; it is neither listed nor pruned"
                    );
                    observation.orphans.retain(|orphan| !in_scope(orphan));
                    observation
                        .superseded
                        .retain(|superseded| !in_scope(&superseded.resource));
                    orphans = &[];
                    self.discover_module(
                        scope_session,
                        module,
                        target,
                        place,
                        &observation.facts,
                        orphans,
                    )
                    .await?
                }
                Err(error) => return Err(error),
            };
            let inventory = self
                .inventory(
                    scope_session,
                    module,
                    target,
                    place,
                    &observation.facts,
                    orphans,
                )
                .await?;
            if !inventory.is_empty() {
                observation
                    .inventory
                    .insert((module.kind.clone(), database.clone()), inventory);
            }
            observation
                .rows
                .insert((module.kind.clone(), database), rows);
        }
        tracing::info!(
            target = %target,
            kinds = observation.rows.len(),
            objects = observation.rows.values().map(Vec::len).sum::<usize>(),
            ledger_entries = observation.ledger.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "discovered"
        );
        Ok(observation)
    }

    /// `target` as its discovery snapshot recorded it.
    fn snapshot_observation(
        &self,
        target: &str,
        path: &std::path::Path,
    ) -> Result<TargetObservation> {
        let snapshot = crate::ops::snapshot::Snapshot::read(path)?;
        let recorded = snapshot.targets.get(target).with_context(|| {
            format!(
                "the snapshot {} has no target {target} (it records {})",
                path.display(),
                snapshot
                    .targets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let mut observation = recorded
            .observation()
            .with_context(|| format!("the snapshot {}", path.display()))?;
        observation.orphans = self.orphans(target, &observation.ledger);
        observation.superseded = self.superseded(target, &observation.ledger);
        tracing::info!(target = %target, snapshot = %path.display(), "read from a snapshot");
        Ok(observation)
    }

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

    /// The module that converges `kind` on `target`: the one of the target's
    /// engine.
    pub fn module(&self, kind: &str, target: &str) -> Option<&Module> {
        let endpoint = self.endpoints.get(target)?;
        self.modules.get(kind, endpoint.engine())
    }

    /// The ledger-owned module of `kind`, if fleetform still owns what a
    /// resource recorded with `spec` applied (`ownership.when`).
    fn ledger_module(&self, kind: &str, target: &str, spec: &Value) -> Option<&Module> {
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
    fn orphans(
        &self,
        target: &str,
        ledger: &BTreeMap<String, LedgerEntry>,
    ) -> Vec<DesiredResource> {
        if !self.settings.only.is_empty() {
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
            let name = entry
                .resource
                .strip_prefix(&format!("{kind}/"))
                .and_then(|rest| rest.strip_suffix(&format!("@{target}")))
                .unwrap_or(&entry.resource);
            match desired_items(module, spec, name, &self.settings, &self.templates, true) {
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
                        target: target.to_string(),
                        database: entry.database.clone(),
                        spec: spec.clone(),
                        items,
                        dependencies: Vec::new(),
                        blocked: None,
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
    fn superseded(&self, target: &str, ledger: &BTreeMap<String, LedgerEntry>) -> Vec<Superseded> {
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
            let name = resource
                .address
                .strip_prefix(&format!("{}/", resource.kind))
                .and_then(|rest| rest.strip_suffix(&format!("@{target}")))
                .unwrap_or(&resource.address);
            let (spec, needs_prune) = match &module.items {
                Some(items_field) => {
                    let dropped: Map<String, Value> = recorded
                        .get(items_field)
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .filter(|(identity, _)| !claimed(identity))
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
                    target: target.to_string(),
                    database: entry.database.clone(),
                    spec,
                    items,
                    dependencies: Vec::new(),
                    blocked: None,
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
                        .map(|scripts| scripts.iter().any(|(script, _)| !script.trim().is_empty()))
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
        Some(prune_resource(
            module,
            &change.target,
            change.database.as_deref(),
            &identity,
        ))
    }

    /// What discovery must be told about `resource` beyond the manifests:
    /// itself, when it is a ledger orphan being pruned.
    pub fn discovery_extra<'a>(&self, resource: &'a DesiredResource) -> &'a [DesiredResource] {
        let ledger_owned = self
            .module(&resource.kind, &resource.target)
            .and_then(|module| module.ownership.as_ref())
            .is_some_and(|ownership| ownership.ledger);
        let in_manifests = self
            .resources
            .iter()
            .any(|candidate| candidate.address == resource.address);
        if ledger_owned && !in_manifests {
            std::slice::from_ref(resource)
        } else {
            &[]
        }
    }

    /// The discovery query of `module` for `target` (and `database`).
    pub fn discovery_script(
        &self,
        module: &Module,
        target: &str,
        database: Option<&str>,
        facts: &Map<String, Value>,
        extra: &[DesiredResource],
    ) -> Result<String> {
        let context = self.scope_context(module, target, database, facts, extra);
        self.templates
            .render(&module.template(&module.discover), &Value::Object(context))
    }

    /// What discovery and inventory templates see: the server facts, the
    /// wanted identities (`names`) and items with their specs (`wanted`),
    /// those of `extra` (resources that left the manifests) included.
    fn scope_context(
        &self,
        module: &Module,
        target: &str,
        database: Option<&str>,
        facts: &Map<String, Value>,
        extra: &[DesiredResource],
    ) -> Map<String, Value> {
        let mut context = self.base_context(target, facts);
        context.insert(
            "names".into(),
            json!(self.identities(&module.kind, target, database, extra)),
        );
        context.insert("database".into(), json!(database));
        let wanted: Vec<Value> = self
            .resources
            .iter()
            .chain(extra)
            .filter(|resource| {
                resource.kind == module.kind
                    && resource.target == target
                    && resource.database.as_deref() == database
                    && resource.blocked.is_none()
            })
            .flat_map(|resource| {
                let orphan = !self
                    .resources
                    .iter()
                    .any(|candidate| candidate.address == resource.address);
                resource.items.iter().map(move |item| {
                    json!({
                        "identity": item.identity,
                        "spec": redact_spec(module, &resource.spec),
                        // Not in the manifests: being pruned, or superseded.
                        "orphan": orphan,
                    })
                })
            })
            .collect();
        context.insert("wanted".into(), Value::Array(wanted));
        context
    }

    /// The module's inventory of related live things no manifest manages
    /// (identities), when it has one and something is wanted here.
    pub async fn inventory(
        &self,
        session: &Session,
        module: &Module,
        target: &str,
        database: Option<&str>,
        facts: &Map<String, Value>,
        orphans: &[DesiredResource],
    ) -> Result<Vec<String>> {
        let Some(template) = &module.inventory else {
            return Ok(Vec::new());
        };
        // What the ledger's orphans cover is theirs (listed or pruned as such).
        let context = self.scope_context(module, target, database, facts, orphans);
        if context["wanted"].as_array().is_none_or(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let script = self
            .templates
            .render(&module.template(template), &Value::Object(context))?;
        let rows = query_rows(session, &script)
            .await
            .with_context(|| format!("inventory of {} on {target} failed", module.kind))?;
        Ok(rows
            .iter()
            .filter_map(|row| row.get("identity").and_then(Value::as_str))
            .map(str::to_string)
            .collect())
    }

    /// What every template may know about the server (`templates/<engine>/server.sql`).
    pub async fn server_facts(
        &self,
        endpoint: &Endpoint,
        session: &Session,
    ) -> Result<Map<String, Value>> {
        let script = self
            .templates
            .render(&endpoint.script("server"), &json!({}))?;
        let facts = session
            .query_json(&script)
            .await
            .with_context(|| format!("cannot read the server facts of {}", endpoint.describe()))?;
        Ok(facts.as_object().cloned().unwrap_or_default())
    }

    /// Run one module's discovery on an open session.
    pub async fn discover_module(
        &self,
        session: &Session,
        module: &Module,
        target: &str,
        database: Option<&str>,
        facts: &Map<String, Value>,
        extra: &[DesiredResource],
    ) -> Result<Vec<Row>> {
        let script = self.discovery_script(module, target, database, facts, extra)?;
        let place = match database {
            Some(database) => format!("{target}, database {database}"),
            None => target.to_string(),
        };
        query_rows(session, &script)
            .await
            .with_context(|| format!("discovery of {} on {place} failed", module.kind))
    }

    /// The plan for `observations`. Pure.
    pub fn build_plan(&self, observations: &Observations, created_at: String) -> Plan {
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
        for index in 0..self.resources.len() {
            self.plan_refresh(index, &mut resource_changes, observations);
        }
        let mut unmanaged = Vec::new();
        let mut prunes = Vec::new();
        // With --target only part of the manifests is loaded: what it does not
        // claim may still be managed, so nothing is listed or pruned.
        let whole_environment = self.settings.only.is_empty();
        for (target, observation) in observations.iter().filter(|_| whole_environment) {
            let Ok(observation) = observation else {
                continue;
            };
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
                    let owned = row.get(marker).and_then(Value::as_bool).unwrap_or(false);
                    if owned && self.settings.prune {
                        let resource =
                            prune_resource(module, target, database.as_deref(), &identity);
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
                observation.as_ref().err().map(|message| TargetError {
                    target: target.clone(),
                    message: message.clone(),
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
            prune: self.settings.prune,
            replace: self.settings.replace.iter().cloned().collect(),
            summary: Plan::summarize(&resource_changes),
            resource_drift,
            resource_changes,
            unmanaged,
            target_errors,
            not_planned: self.not_planned.clone(),
        }
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
                    }),
                    Err(error) => errors.push(TargetError {
                        target: target.to_string(),
                        message: format!("a capability rule failed: {error:#}"),
                    }),
                }
            }
        }
        errors
    }

    pub fn plan_resource(
        &self,
        resource: &DesiredResource,
        observations: &Observations,
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
            drift: DriftStatus::InSync,
            blocked: resource.blocked.clone(),
            after_script: String::new(),
            restart_script: String::new(),
            prune: false,
        };
        if change.blocked.is_some() {
            return change;
        }
        let Some(module) = self.module(&resource.kind, &resource.target) else {
            return change;
        };
        let observation = match observations.get(&resource.target) {
            Some(Ok(observation)) => observation,
            Some(Err(message)) => {
                change.blocked = Some(Blocked::DiscoveryFailed(message.clone()));
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
        let rows_known = observation.rows.contains_key(&scope);
        let rows = observation
            .rows
            .get(&scope)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut cannot_change = Vec::new();
        let mut unknown = Vec::new();
        let mut deferred = Vec::new();
        let mut observed_items = BTreeMap::new();
        for item in &resource.items {
            let candidate = find_row(rows, &item.identity);
            // What capability checks and defer rules see.
            let context = json!({
                "name": item.identity,
                "desired": item.fields,
                "observed": candidate.map(|row| redact_row(module, row)),
                "facts": observation.facts,
                "spec": redact_spec(module, &resource.spec),
                "instance": self.instances.get(&resource.target),
            });
            for check in &module.checks {
                // A check that cannot be evaluated refuses, naming why: a
                // broken check must not pass silently.
                let refused = match self.templates.evaluate_condition(&check.refuse, &context) {
                    Ok(refused) => refused,
                    Err(error) => {
                        unknown.push(format!(
                            "{}: the module's check could not be evaluated: {error:#}",
                            item.identity
                        ));
                        false
                    }
                };
                if refused {
                    let detail = check
                        .detail
                        .as_ref()
                        .and_then(|detail| self.templates.evaluate_text(detail, &context).ok())
                        .map(|detail| format!(": {detail}"))
                        .unwrap_or_default();
                    unknown.push(format!("{} {}{detail}", item.identity, check.message));
                }
            }
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
            let owned = self
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
                });
            }
        }
        change.observed_fingerprint = diff::fingerprint(&json!(observed_items));
        change.observed_items = observed_items;
        if change.action != Action::NoOp {
            change.after_script = match self.render_after(module, resource, &observation.facts) {
                Ok(script) => script.map(|(script, _)| script).unwrap_or_default(),
                Err(error) => format!("-- cannot render: {error:#}\n"),
            };
        }
        let waits_for_restart = change
            .risks()
            .any(|risk| risk.mark == crate::modules::RiskMark::Restart);
        if waits_for_restart && self.restart_allowed(module, resource) {
            change.restart_script = match self.render_restart(&resource.target, &observation.facts)
            {
                Ok(script) => script,
                Err(error) => format!("# cannot restart: {error:#}\n"),
            };
        }
        if !deferred.is_empty() {
            change.blocked = Some(Blocked::Deferred(deferred.join("\n")));
            change.action = Action::NoOp;
            change.items.clear();
            return change;
        } else if !unknown.is_empty() {
            change.blocked = Some(Blocked::Unresolvable(unknown.join("\n")));
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
        }
        change
    }

    /// The module's `refreshWhen`: resource `index`, unchanged itself, is
    /// updated with `refresh` when one of its dependencies changes that way.
    fn plan_refresh(
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

    fn plan_item(
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
                Ok(true) => risks.push(Risk {
                    mark: rule.mark,
                    message: rule.message.clone(),
                }),
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
        let script = if action == Action::NoOp || !item_diff.cannot_change.is_empty() {
            String::new()
        } else {
            match self.render_item(
                module,
                resource,
                item,
                observed,
                item_diff,
                facts,
                RenderMode::Display,
            ) {
                Ok(scripts) => scripts
                    .into_iter()
                    .map(|(script, _)| script)
                    .collect::<Vec<_>>()
                    .join(""),
                Err(error) => format!("-- cannot render: {error:#}\n"),
            }
        };
        ItemChange {
            identity: item.identity.clone(),
            action,
            changes: item_diff.changes.clone(),
            risks,
            script,
        }
    }

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
        let script = self
            .templates
            .render(&module.template(after.file()), &Value::Object(context))?;
        if script.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some((script, after.transaction(&resource.spec))))
    }

    /// The deletion of `resource` (an owned object that left the manifests),
    /// each item against its row in `rows`.
    fn plan_prune(
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
        for item in self.prune_remaining(module, resource, rows, &observation.facts) {
            let Some(row) = find_row(rows, &item.identity) else {
                continue;
            };
            observed.insert(
                item.identity.clone(),
                observed_fields(module, None, Some(row)),
            );
            items.push(self.plan_item(
                module,
                resource,
                item,
                Some(row),
                &item_diff,
                &observation.facts,
            ));
        }
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
            drift: DriftStatus::Pending,
            blocked: None,
            after_script: String::new(),
            restart_script: String::new(),
            prune: true,
        }
    }
}

/// The databases that accept connections, from the server facts.
/// Names, or objects with a `name` (SQL Server's `FOR JSON PATH`).
pub fn databases_of(facts: &Map<String, Value>) -> BTreeSet<String> {
    facts
        .get("databases")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|entry| entry.as_str().or_else(|| entry.get("name")?.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Run a query returning a JSON list of objects (discovery, inventory,
/// import); anything else in the list is ignored.
pub async fn query_rows(session: &Session, script: &str) -> Result<Vec<Row>> {
    let value = session.query_json(script).await?;
    let rows = value
        .as_array()
        .context("the query did not return a JSON list")?;
    Ok(rows
        .iter()
        .filter_map(|row| row.as_object().cloned())
        .collect())
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
        target: target.to_string(),
        database: database.map(str::to_string),
        spec: json!({ "database": database }),
        items: vec![DesiredItem {
            identity: identity.to_string(),
            fields: Map::new(),
            secrets: BTreeMap::new(),
        }],
        dependencies: Vec::new(),
        blocked: None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// For people: secrets as `(sensitive)`.
    Display,
    /// For the server: secrets in the form the module sends them.
    Execute,
}

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

fn desired_items(
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
        return Ok(source_items(module, spec));
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
            // A recorded spec holds `(sensitive)` where the secret was.
            if offline && value.as_str() == Some(template::SENSITIVE) {
                fields.insert(field.clone(), value.clone());
                continue;
            }
            let reference = SecretRef::from_manifest(value, &settings.repository_root)?;
            match reference.resolve() {
                Ok(secret) => {
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

/// The items of a module with item sources: map entries (each named by its
/// key) and whole fields (one item named by the field).
fn source_items(module: &Module, spec: &Value) -> Vec<DesiredItem> {
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
            for (identity, value) in entries.into_iter().flatten() {
                if source.except.contains(identity) {
                    continue;
                }
                items.push(DesiredItem {
                    identity: identity.clone(),
                    fields: Map::from_iter([(field.clone(), value.clone())]),
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
    items
}

/// Observed values of every compared field of the module, in a stable
/// order (what fingerprints cover). A sensitive value enters only as its
/// hash; a plain secret read back from the server (a subscription's
/// password) only as whether it matches the manifest's, since a hash of a
/// plain password in a plan file would let anyone test guesses offline.
fn observed_fields(
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
fn redact_spec(module: &Module, spec: &Value) -> Value {
    match spec {
        Value::Object(map) => {
            let mut redacted = redact_row(module, map);
            for field in &module.sql {
                if let Some(Value::String(code)) = redacted.get(field) {
                    let code = code.trim().trim_end_matches(';').trim_end().to_string();
                    redacted.insert(field.clone(), template::trusted_sql(code));
                }
            }
            Value::Object(redacted)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment with a PostgreSQL and a SQL Server instance.
    pub(crate) fn mixed_engine(prune: bool) -> Engine {
        let files = BTreeMap::from([
            (
                "environments/t/environment.yaml".to_string(),
                "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
                    .to_string(),
            ),
            (
                "environments/t/fleet.yaml".to_string(),
                "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: linux-1}\nspec: {host: 127.0.0.1, os: linux}\n\
---\napiVersion: fleetform/v1\nkind: Server\nmetadata: {name: win-1}\nspec: {host: 127.0.0.2, os: windows}\n\
---\napiVersion: fleetform/v1\nkind: PostgresInstance\nmetadata: {name: pg-a}\nspec: {server: linux-1, version: 15}\n\
---\napiVersion: fleetform/v1\nkind: SqlInstance\nmetadata: {name: sql-a}\nspec: {server: win-1, version: 2022}\n\
---\napiVersion: fleetform/v1\nkind: PostgresRole\nmetadata: {name: app}\nspec: {on: {instances: [pg-a]}}\n\
---\napiVersion: fleetform/v1\nkind: SqlDatabase\nmetadata: {name: sales}\nspec: {on: {instances: [sql-a]}}\n"
                    .to_string(),
            ),
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
            only: Vec::new(),
            lock_timeout: Duration::from_secs(1),
            actor: "test".into(),
            commit: None,
            repository_root: PathBuf::from("/repo"),
        };
        Engine::prepare(&fleet, &catalog, settings).unwrap()
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
                let modules = engine.modules_for(target, &databases, &[]);
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
                .modules_for("pg-a", &databases, &[])
                .into_iter()
                .map(|(module, _)| module.kind.as_str())
                .collect();
            assert!(postgres.contains(&"PostgresRole"), "{postgres:?}");
        }
    }
}
