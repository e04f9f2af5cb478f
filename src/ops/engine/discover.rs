//! Discovery: which modules run on a target and where (scopes), the
//! target's facts, ledger and rows, read-only, `--parallelism` targets at a
//! time; snapshot targets are read from their file.

use super::*;
use crate::progress::Phase;

impl Engine {
    /// What to discover on `target`: each module, with the database for
    /// database-scoped modules. With the whole environment, modules that own
    /// objects by a marker are also discovered where nothing declares them,
    /// to list what is not in the manifests and find what to prune:
    /// instance-wide, and in every database the manifests name on the target.
    /// Without --prune only kinds the environment declares somewhere, or that
    /// `ledger` (the target's) recorded there; with --prune every such kind,
    /// in every database.
    pub fn modules_for(
        &self,
        target: &str,
        existing_databases: &BTreeSet<String>,
        orphans: &[DesiredResource],
        ledger: &BTreeMap<String, LedgerEntry>,
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
        if self.settings.whole_environment() {
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
            let declared: BTreeSet<&str> = self
                .resources
                .iter()
                .map(|resource| resource.kind.as_str())
                .collect();
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
                // A kind nothing declares and the ledger never recorded here
                // holds nothing of this environment's: read only to prune.
                let recorded = |database: Option<&String>| {
                    ledger.values().any(|entry| {
                        entry.kind.as_deref() == Some(module.kind.as_str())
                            && entry.action != Action::Delete.name()
                            && (module.scope == crate::modules::Scope::Instance
                                || entry.database.as_ref() == database)
                    })
                };
                let wanted = |database: Option<&String>| {
                    self.settings.prune
                        || declared.contains(module.kind.as_str())
                        || recorded(database)
                };
                match module.scope {
                    crate::modules::Scope::Instance => {
                        if wanted(None) {
                            scopes.insert((module.kind.clone(), None));
                        }
                    }
                    crate::modules::Scope::Database => {
                        for database in databases.iter().filter(|database| wanted(Some(database))) {
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

    /// Read the live state of every target, `parallelism` targets at a time.
    pub async fn discover(self: &Arc<Self>) -> Observations {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.settings.parallelism.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        let mut target_of_task = BTreeMap::new();
        let targets = self.targets();
        let progress = self.progress.phase(Phase::Discovering, targets.len());
        for target in targets {
            let engine = Arc::clone(self);
            let limit = Arc::clone(&limit);
            let name = target.clone();
            let progress = Arc::clone(&progress);
            let handle = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                progress.begin(&target);
                let started = std::time::Instant::now();
                let observation = engine.discover_target(&target).await;
                let status = match &observation {
                    Ok(_) if engine.snapshots.contains_key(&target) => "read from its snapshot",
                    Ok(_) => "read",
                    Err(_) => "not read",
                };
                progress.finish(
                    Some(&target),
                    status,
                    1,
                    Some(started.elapsed().as_secs_f64()),
                );
                (target, observation.map_err(|error| ReadFailure::of(&error)))
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
                        progress.finish(Some(target), "not read", 1, None);
                        observations.insert(
                            target.clone(),
                            Err(ReadFailure::plain(format!(
                                "reading the instance failed unexpectedly: {error}"
                            ))),
                        );
                    }
                }
            }
        }
        let failed = observations.values().filter(|o| o.is_err()).count();
        progress.end(&format!(
            "{} read, {failed} not read",
            observations.len() - failed
        ));
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
        let session = endpoint.connect_read_only(None).await?;
        // The facts and whether the ledger exists, in one round trip: the
        // ledger's check cannot use the facts.
        let ledger_context = self.base_context(target, &Map::new());
        let first = session
            .query_json_batch(&[
                self.templates
                    .render(&endpoint.script("server"), &json!({}))?,
                self.templates.render(
                    &endpoint.script("ledger/exists"),
                    &Value::Object(ledger_context),
                )?,
            ])
            .await
            .with_context(|| {
                format!(
                    "cannot read the server facts and the ledger's state of {}",
                    endpoint.describe()
                )
            })?;
        let [facts, exists]: [Value; 2] = first
            .try_into()
            .map_err(|_| anyhow::anyhow!("the server facts query returned no result"))?;
        let facts = facts.as_object().cloned().unwrap_or_default();
        endpoint.check_facts(&facts)?;
        let existing = databases_of(&facts);
        let mut observation = TargetObservation {
            facts,
            ..TargetObservation::default()
        };
        let mut context = self.base_context(target, &observation.facts);
        // A ledger someone else prepared is neither read nor written: its
        // rows decide what --prune deletes.
        if let Some(reason) = exists.get("untrusted").and_then(Value::as_str) {
            bail!(
                "the ledger on {}: {reason}; fleetform neither reads nor writes a ledger someone else prepared (drop schema fleetform, or give it and its table to the connecting role, and run again)",
                endpoint.describe()
            );
        }
        observation.ledger_exists = exists
            .get("exists")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if observation.ledger_exists {
            context.insert("ledger_exists".into(), json!(true));
            let entries = session
                .query_json(
                    &self
                        .templates
                        .render(&endpoint.script("ledger/latest"), &Value::Object(context))?,
                )
                .await
                .with_context(|| format!("cannot read the ledger on {}", endpoint.describe()))?;
            let read = LedgerEntry::read_all(entries, &endpoint.describe())?;
            observation.ledger = read.latest;
            observation.interrupted = read.interrupted;
        }
        observation.orphans = self.orphans(target, &observation.ledger);
        observation.superseded = self.superseded(target, &observation.ledger);
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
        // The maintenance session for instance-wide kinds, one session per
        // database for the others, each read in one round trip. A database
        // that does not exist yet (apply creates it first) holds nothing:
        // its rows stay unknown.
        let mut places: BTreeMap<Option<String>, Vec<&Module>> = BTreeMap::new();
        for (module, database) in
            self.modules_for(target, &existing, &beyond_manifests, &observation.ledger)
        {
            if database.as_ref().is_none_or(|name| existing.contains(name)) {
                places.entry(database).or_default().push(module);
            }
        }
        observation.probes = self
            .probe_inventories(
                &session,
                &places,
                target,
                &observation.facts,
                &beyond_manifests,
            )
            .await?;
        for (database, modules) in places {
            let opened;
            let scope_session = match &database {
                Some(name) => {
                    opened = endpoint.connect_read_only(Some(name)).await?;
                    &opened
                }
                None => &session,
            };
            let place = database.as_deref();
            let together = if scope_session.batches() {
                self.discover_together(
                    scope_session,
                    &modules,
                    target,
                    place,
                    &observation,
                    &beyond_manifests,
                )
                .await?
            } else {
                None
            };
            let read = match together {
                Some(read) => read,
                None => {
                    let mut read = Vec::new();
                    for module in &modules {
                        read.push(
                            self.discover_alone(
                                scope_session,
                                module,
                                target,
                                place,
                                &mut observation,
                                &beyond_manifests,
                            )
                            .await?,
                        );
                    }
                    read
                }
            };
            for (module, (mut rows, inventory)) in modules.iter().zip(read) {
                if !inventory.is_empty() {
                    observation
                        .inventory
                        .insert((module.kind.clone(), database.clone()), inventory);
                }
                for resource in self.resources.iter().filter(|resource| {
                    resource.target == target
                        && resource.kind == module.kind
                        && resource.database.as_deref() == place
                        && observation
                            .ledger
                            .get(&resource.address)
                            .is_some_and(|entry| entry.created)
                }) {
                    super::ownership::claim_created(module, resource, &mut rows);
                }
                observation
                    .rows
                    .insert((module.kind.clone(), database.clone()), rows);
            }
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

    /// The discovery and inventory of `modules` in one round trip on
    /// `session`, or None when the batch failed for a reason reading each
    /// alone can tell apart (which query, and what left the manifests). A
    /// target that stopped answering fails at once: asking again would
    /// wait out the same timeout.
    async fn discover_together(
        &self,
        session: &Session,
        modules: &[&Module],
        target: &str,
        database: Option<&str>,
        observation: &TargetObservation,
        extra: &[DesiredResource],
    ) -> Result<Option<Vec<(Vec<Row>, Vec<String>)>>> {
        let mut scripts = Vec::new();
        let mut with_inventory = Vec::new();
        for module in modules {
            let (Ok(discovery), Ok(inventory)) = (
                self.discovery_script(module, target, database, &observation.facts, extra),
                self.inventory_script(module, target, database, observation, extra),
            ) else {
                return Ok(None);
            };
            scripts.push(discovery);
            with_inventory.push(inventory.is_some());
            scripts.extend(inventory);
        }
        let mut values = match session.query_json_batch(&scripts).await {
            Ok(values) => values.into_iter(),
            Err(error) if crate::connector::NotAnswering::is_cause_of(&error) => {
                return Err(error).with_context(|| match database {
                    Some(database) => format!("discovery on {target}, database {database} failed"),
                    None => format!("discovery on {target} failed"),
                });
            }
            Err(error) => {
                tracing::debug!(target = %target, error = %format!("{error:#}"), "the batch of discovery queries failed; reading them one by one");
                return Ok(None);
            }
        };
        let mut read = Vec::new();
        for inventoried in with_inventory {
            let (Some(Ok(rows)), inventory) = (
                values.next().map(rows_of),
                inventoried.then(|| values.next().map(rows_of)),
            ) else {
                return Ok(None);
            };
            let inventory = match inventory {
                None => Vec::new(),
                Some(Some(Ok(rows))) => identities_of(&rows),
                Some(_) => return Ok(None),
            };
            read.push((rows, inventory));
        }
        Ok(Some(read))
    }

    /// One module's discovery and inventory on its own. What the ledger
    /// recorded beyond the manifests (a custom SQL query of an old commit)
    /// must not stop the plan: when reading it fails, it is read without
    /// them, and they are neither listed nor pruned.
    async fn discover_alone(
        &self,
        session: &Session,
        module: &Module,
        target: &str,
        database: Option<&str>,
        observation: &mut TargetObservation,
        beyond_manifests: &[DesiredResource],
    ) -> Result<(Vec<Row>, Vec<String>)> {
        let in_scope = |extra: &DesiredResource| {
            extra.kind == module.kind && extra.database.as_deref() == database
        };
        let mut extra = beyond_manifests;
        let facts = &observation.facts;
        let rows = match self
            .discover_module(session, module, target, database, facts, extra)
            .await
        {
            Ok(rows) => rows,
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
                extra = &[];
                self.discover_module(session, module, target, database, &observation.facts, extra)
                    .await?
            }
            Err(error) => return Err(error),
        };
        let inventory = self
            .inventory(session, module, target, database, observation, extra)
            .await?;
        Ok((rows, inventory))
    }

    /// `target` as its discovery snapshot recorded it.
    fn snapshot_observation(
        &self,
        target: &str,
        path: &std::path::Path,
    ) -> Result<TargetObservation> {
        let snapshot = self.snapshot_file(path)?;
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

    /// The snapshot file at `path`, read and parsed at its first use in
    /// this run (a failure is not kept: each instance says it).
    fn snapshot_file(&self, path: &std::path::Path) -> Result<Arc<crate::ops::snapshot::Snapshot>> {
        // Held while reading: instances of the same file wait for it
        // instead of parsing it too.
        let mut files = self
            .snapshot_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(snapshot) = files.get(path) {
            return Ok(Arc::clone(snapshot));
        }
        crate::source::check_within(&self.settings.repository_root, path, "snapshot")?;
        let snapshot = Arc::new(crate::ops::snapshot::Snapshot::read(path)?);
        files.insert(path.to_path_buf(), Arc::clone(&snapshot));
        Ok(snapshot)
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
    /// wanted identities (`names`) and items with their fields and specs (`wanted`),
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
        context.insert(
            "wanted".into(),
            Value::Array(self.wanted(module, target, Some(database), extra)),
        );
        context
    }

    /// The items of `module` wanted on `target` (in `database`: Some(None)
    /// for instance-wide, None for every database), those of `extra` included.
    fn wanted(
        &self,
        module: &Module,
        target: &str,
        database: Option<Option<&str>>,
        extra: &[DesiredResource],
    ) -> Vec<Value> {
        self.resources
            .iter()
            .chain(extra)
            .filter(|resource| {
                resource.kind == module.kind
                    && resource.target == target
                    && database.is_none_or(|database| resource.database.as_deref() == database)
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
                        // Secrets as `(sensitive)`, as in the spec.
                        "fields": item.fields,
                        "spec": redact_spec(module, &resource.spec),
                        "lead": resource.lead,
                        // Not in the manifests: being pruned, or superseded.
                        "orphan": orphan,
                    })
                })
            })
            .collect()
    }

    /// The module's inventory of related live things no manifest manages
    /// (identities), when it has one and something is wanted here.
    async fn inventory(
        &self,
        session: &Session,
        module: &Module,
        target: &str,
        database: Option<&str>,
        observation: &TargetObservation,
        orphans: &[DesiredResource],
    ) -> Result<Vec<String>> {
        let Some(script) = self.inventory_script(module, target, database, observation, orphans)?
        else {
            return Ok(Vec::new());
        };
        let rows = query_rows(session, &script)
            .await
            .with_context(|| format!("inventory of {} on {target} failed", module.kind))?;
        Ok(identities_of(&rows))
    }

    /// The module's inventory query, when it has one, something is wanted
    /// here and the template renders a query (given its probe's answer, it
    /// may find there is nothing to look for).
    fn inventory_script(
        &self,
        module: &Module,
        target: &str,
        database: Option<&str>,
        observation: &TargetObservation,
        orphans: &[DesiredResource],
    ) -> Result<Option<String>> {
        let Some(template) = &module.inventory else {
            return Ok(None);
        };
        // What the ledger's orphans cover is theirs (listed or pruned as such).
        let mut context = self.scope_context(module, target, database, &observation.facts, orphans);
        if context["wanted"].as_array().is_none_or(Vec::is_empty) {
            return Ok(None);
        }
        if module.inventory_probe.is_some() {
            context.insert(
                "probe".into(),
                observation
                    .probes
                    .get(&module.kind)
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
        let script = self
            .templates
            .render(&module.template(template), &Value::Object(context))?;
        Ok((!script.trim().is_empty()).then_some(script))
    }

    /// The inventory probes of the modules read on `target`, asked together
    /// on the maintenance session, each with every wanted item of the
    /// target (all databases). A probe that cannot be answered leaves its
    /// answer null: the inventory then looks everywhere.
    async fn probe_inventories(
        &self,
        session: &Session,
        places: &BTreeMap<Option<String>, Vec<&Module>>,
        target: &str,
        facts: &Map<String, Value>,
        extra: &[DesiredResource],
    ) -> Result<BTreeMap<String, Value>> {
        let mut kinds = Vec::new();
        let mut scripts = Vec::new();
        let mut seen = BTreeSet::new();
        for module in places.values().flatten() {
            let Some(probe) = &module.inventory_probe else {
                continue;
            };
            if module.inventory.is_none() || !seen.insert(module.kind.as_str()) {
                continue;
            }
            let mut context = self.base_context(target, facts);
            context.insert(
                "wanted".into(),
                Value::Array(self.wanted(module, target, None, extra)),
            );
            scripts.push(
                self.templates
                    .render(&module.template(probe), &Value::Object(context))?,
            );
            kinds.push(module.kind.clone());
        }
        if scripts.is_empty() {
            return Ok(BTreeMap::new());
        }
        match session.query_json_batch(&scripts).await {
            Ok(answers) => Ok(kinds.into_iter().zip(answers).collect()),
            Err(error) if crate::connector::NotAnswering::is_cause_of(&error) => {
                Err(error).with_context(|| format!("discovery on {target} failed"))
            }
            Err(error) => {
                tracing::warn!(target = %target, error = %format!("{error:#}"), "the inventory probes failed; the inventory looks everywhere");
                Ok(BTreeMap::new())
            }
        }
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
    rows_of(session.query_json(script).await?)
}

/// The objects of a query's JSON list.
fn rows_of(value: Value) -> Result<Vec<Row>> {
    let Value::Array(rows) = value else {
        bail!("the query did not return a JSON list");
    };
    Ok(rows
        .into_iter()
        .filter_map(|row| match row {
            Value::Object(row) => Some(row),
            _ => None,
        })
        .collect())
}

/// The `identity` of each row (an inventory's answer).
fn identities_of(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| row.get("identity").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}
