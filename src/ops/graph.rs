//! Graph: resources → the dependency graph, checked for cycles, and its renderings.
//!
//! Edges come from five places: references annotated in the schemas
//! (`x-fleetform-ref`, except inside the `spec.on` selector), explicit
//! `metadata.dependsOn`, the target a resource runs on (a role on `pg-1`
//! needs `PostgresInstance/pg-1`), names of database objects that another
//! resource on the same target manages (`x-fleetform-implies`: a database
//! owned by `app_owner` needs the `PostgresRole` that creates `app_owner`),
//! and the lead of an object that spans targets (an availability group on
//! a secondary needs the group on its primary).
//! A cycle is an error that names every resource on it. Pure: no IO.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::validate::ObjectIndex;
use crate::diagnostics::Diagnostic;
use crate::model::{ManifestObject, Resource, ResourceGraph, Target};
use crate::schemas::{Annotation, SERVER_KIND, SchemaCatalog};

pub fn build(
    resources: Vec<Resource>,
    objects: &[ManifestObject],
    index: &ObjectIndex,
    catalog: &SchemaCatalog,
) -> (ResourceGraph, Vec<Diagnostic>) {
    let mut by_object: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, resource) in resources.iter().enumerate() {
        by_object.entry(resource.object).or_default().push(position);
    }
    // Resources by the real name of the database object they manage, for `x-fleetform-implies`.
    let mut by_real_name: FxHashMap<(&str, &Target, String), Vec<usize>> = FxHashMap::default();
    for (position, resource) in resources.iter().enumerate() {
        let object = &objects[resource.object];
        by_real_name
            .entry((
                object.kind.as_str(),
                &resource.target,
                real_name_key(object, real_name(object)),
            ))
            .or_default()
            .push(position);
    }
    let mut diagnostics = same_real_object(&resources, objects);
    // The annotated strings of each object, found once and shared by all its resources.
    let mut annotated: Vec<Vec<(String, &Annotation, &str)>> = vec![Vec::new(); objects.len()];
    for object_index in by_object.keys() {
        let object = &objects[*object_index];
        for path in catalog.annotations(&object.kind) {
            // Crons are no references; a selector names targets, and the
            // dependency on each target is added per resource below.
            if matches!(
                path.annotation,
                Annotation::Cron | Annotation::Identifier { .. }
            ) || path.is_in_selector()
            {
                continue;
            }
            for (pointer, value) in path.find(&object.document) {
                if let Some(name) = value.as_str() {
                    annotated[*object_index].push((pointer, &path.annotation, name));
                }
            }
        }
    }
    let mut dependencies: Vec<Vec<(usize, String)>> = vec![Vec::new(); resources.len()];
    for (position, resource) in resources.iter().enumerate() {
        let mut add = |dependency: usize, reason: String| {
            if dependency != position
                && !dependencies[position]
                    .iter()
                    .any(|(existing, _)| *existing == dependency)
            {
                dependencies[position].push((dependency, reason));
            }
        };
        // The resource needs what it runs on.
        if let Some(target_name) = resource.target.name() {
            let kinds: Vec<&str> = match resource.target {
                Target::Instance(_) => catalog.instance_kinds(None),
                Target::Server(_) => vec![SERVER_KIND],
                Target::None => Vec::new(),
            };
            for kind in kinds {
                if let Some(object_index) = index.find(kind, target_name) {
                    for dependency in by_object.get(&object_index).into_iter().flatten() {
                        add(*dependency, format!("runs on {kind}/{target_name}"));
                    }
                }
            }
        }
        // The resources of an object that spans targets converge after the
        // one on its lead (the primary creates the group the others join).
        if let Some(lead) = &resource.lead
            && resource.target.name() != Some(lead.as_str())
        {
            for sibling in by_object.get(&resource.object).into_iter().flatten() {
                if resources[*sibling].target.name() == Some(lead.as_str()) {
                    add(
                        *sibling,
                        format!("{lead} leads {}", objects[resource.object].id()),
                    );
                }
            }
        }
        for (pointer, annotation, name) in &annotated[resource.object] {
            let (pointer, name) = (pointer.as_str(), *name);
            match annotation {
                Annotation::Reference(kinds) => {
                    let referenced = if kinds.iter().any(|kind| kind == "*") {
                        name.split_once('/')
                            .and_then(|(kind, target)| index.find(kind, target))
                    } else {
                        kinds.iter().find_map(|kind| index.find(kind, name))
                    };
                    let Some(referenced) = referenced else {
                        continue;
                    };
                    let candidates = by_object.get(&referenced).cloned().unwrap_or_default();
                    let same_target: Vec<usize> = candidates
                        .iter()
                        .copied()
                        .filter(|candidate| resources[*candidate].target == resource.target)
                        .collect();
                    let chosen = if same_target.is_empty() {
                        candidates
                    } else {
                        same_target
                    };
                    let reason = if pointer.starts_with("/metadata/dependsOn") {
                        "dependsOn".to_string()
                    } else {
                        format!("references {} at {pointer}", objects[referenced].id())
                    };
                    for dependency in chosen {
                        add(dependency, reason.clone());
                    }
                }
                Annotation::Implies(kind) => {
                    let key = (
                        kind.as_str(),
                        &resource.target,
                        real_name_key_for_kind(kind, name),
                    );
                    for candidate in by_real_name.get(&key).into_iter().flatten() {
                        add(
                            *candidate,
                            format!(
                                "{pointer} `{name}` is managed by {}",
                                resources[*candidate].address
                            ),
                        );
                    }
                }
                Annotation::ImpliesAnywhere(kind) => {
                    let wanted = real_name_key_for_kind(kind, name);
                    let mut candidates: Vec<usize> = by_real_name
                        .iter()
                        .filter(|((candidate_kind, _, candidate_name), _)| {
                            *candidate_kind == kind.as_str() && *candidate_name == wanted
                        })
                        .flat_map(|(_, indexes)| indexes.iter().copied())
                        .collect();
                    candidates.sort_unstable();
                    for candidate in candidates {
                        add(
                            candidate,
                            format!(
                                "{pointer} `{name}` is managed by {}",
                                resources[candidate].address
                            ),
                        );
                    }
                }
                Annotation::Cron | Annotation::Identifier { .. } => {}
            }
        }
    }
    for list in &mut dependencies {
        list.sort_by(|left, right| resources[left.0].address.cmp(&resources[right.0].address));
    }
    let graph = ResourceGraph {
        resources,
        dependencies,
    };
    diagnostics.extend(cycles(&graph).into_iter().map(|cycle| {
        let first = &graph.resources[cycle[0]];
        let object = &objects[first.object];
        let mut path: Vec<String> = cycle
            .iter()
            .map(|position| graph.resources[*position].address.to_string())
            .collect();
        path.push(path[0].clone());
        let pointer = if object.document.pointer("/metadata/dependsOn").is_some() {
            "/metadata/dependsOn"
        } else {
            ""
        };
        object
            .error_at(pointer, format!("dependency cycle: {}", path.join(" -> ")))
            .with_hint(
                "remove one of these dependencies; resources on a cycle can never be applied",
            )
    }));
    (graph, diagnostics)
}

/// Two manifest objects of a kind that manage one real object on a target
/// (`PostgresRole x` and `PostgresRole y` with `name: x`; within the same
/// `spec.database`) would change it back and forth on every apply: an
/// error at the second, naming the first.
fn same_real_object(resources: &[Resource], objects: &[ManifestObject]) -> Vec<Diagnostic> {
    let mut first: FxHashMap<(&str, &Target, Option<&str>, String), usize> = FxHashMap::default();
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut found = Vec::new();
    for resource in resources {
        let object = &objects[resource.object];
        let key = (
            object.kind.as_str(),
            &resource.target,
            object.spec_str("database"),
            real_name_key(object, real_name(object)),
        );
        let earlier = *first.entry(key).or_insert(resource.object);
        if earlier == resource.object || !reported.insert((earlier, resource.object)) {
            continue;
        }
        let earlier = &objects[earlier];
        // The same kind and name twice: the duplicate is reported already.
        if earlier.name == object.name {
            continue;
        }
        let pointer = if object.spec_str("name").is_some() {
            "/spec/name"
        } else {
            "/metadata/name"
        };
        found.push(
            object
                .error_at(
                    pointer,
                    format!(
                        "{} and {} both manage {} `{}` on {}",
                        earlier.id(),
                        object.id(),
                        object.kind,
                        real_name(object),
                        resource.target.name().unwrap_or("the same target")
                    ),
                )
                .with_hint(format!(
                    "{} is defined at {}:{}; one manifest object per real object and target, or every apply would change it back and forth",
                    earlier.id(),
                    earlier.file,
                    earlier.locate("/metadata/name").line
                )),
        );
    }
    found
}

/// The name of the database object `object` manages: its `spec.name`, or its manifest name.
fn real_name(object: &ManifestObject) -> &str {
    object.spec_str("name").unwrap_or(&object.name)
}

fn real_name_key(object: &ManifestObject, name: &str) -> String {
    real_name_key_for_kind(&object.kind, name)
}

/// PostgreSQL identifiers are compared exactly (fleetform always quotes them);
/// SQL Server names case-insensitively, as the default collations do.
fn real_name_key_for_kind(kind: &str, name: &str) -> String {
    if kind.starts_with("Postgres") {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// Every cycle, as the resources on it in dependency order, starting at the
/// smallest address; found with Tarjan's strongly connected components.
pub fn cycles(graph: &ResourceGraph) -> Vec<Vec<usize>> {
    let count = graph.resources.len();
    let mut state = Tarjan {
        graph,
        index: vec![None; count],
        low: vec![0; count],
        on_stack: vec![false; count],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in 0..count {
        if state.index[node].is_none() {
            state.visit(node);
        }
    }
    let mut found = Vec::new();
    for component in state.components {
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let self_loop = component.len() == 1
            && graph.dependencies[component[0]]
                .iter()
                .any(|(dependency, _)| *dependency == component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        let start = *members
            .iter()
            .min_by_key(|member| &graph.resources[**member].address)
            .unwrap_or(&component[0]);
        found.push(walk_cycle(graph, start, &members));
    }
    found.sort_by(|left, right| {
        graph.resources[left[0]]
            .address
            .cmp(&graph.resources[right[0]].address)
    });
    found
}

/// A concrete path around a strongly connected component, back to `start`.
fn walk_cycle(graph: &ResourceGraph, start: usize, members: &BTreeSet<usize>) -> Vec<usize> {
    // Breadth-first search inside the component for the shortest way back to start.
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    while let Some(node) = queue.pop_front() {
        for (dependency, _) in &graph.dependencies[node] {
            if *dependency == start {
                let mut path = vec![node];
                let mut current = node;
                while let Some(before) = previous.get(&current) {
                    path.push(*before);
                    current = *before;
                }
                path.reverse();
                return path;
            }
            if members.contains(dependency) && seen.insert(*dependency) {
                previous.insert(*dependency, node);
                queue.push_back(*dependency);
            }
        }
    }
    vec![start]
}

struct Tarjan<'a> {
    graph: &'a ResourceGraph,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    /// Iterative, so that a long dependency chain cannot overflow the stack.
    fn visit(&mut self, root: usize) {
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((node, edge)) = work.pop() {
            if edge == 0 {
                self.index[node] = Some(self.next);
                self.low[node] = self.next;
                self.next += 1;
                self.stack.push(node);
                self.on_stack[node] = true;
            }
            let edges = &self.graph.dependencies[node];
            if edge < edges.len() {
                work.push((node, edge + 1));
                let next = edges[edge].0;
                match self.index[next] {
                    None => work.push((next, 0)),
                    Some(next_index) if self.on_stack[next] => {
                        self.low[node] = self.low[node].min(next_index);
                    }
                    Some(_) => {}
                }
                continue;
            }
            if let Some(&(parent, _)) = work.last() {
                self.low[parent] = self.low[parent].min(self.low[node]);
            }
            if Some(self.low[node]) == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
}

/// Keep only the resources matching `targets` (addresses or address prefixes
/// like `PostgresRole/app`) and everything they depend on.
pub fn restrict(graph: &ResourceGraph, targets: &[String]) -> BTreeSet<usize> {
    let mut keep = BTreeSet::new();
    let mut pending: Vec<usize> = graph
        .resources
        .iter()
        .enumerate()
        .filter(|(_, resource)| {
            let address = resource.address.to_string();
            targets.iter().any(|target| {
                address == *target
                    || address.starts_with(&format!("{target}@"))
                    || resource.address.kind == *target
            })
        })
        .map(|(position, _)| position)
        .collect();
    while let Some(node) = pending.pop() {
        if keep.insert(node) {
            pending.extend(
                graph.dependencies[node]
                    .iter()
                    .map(|(dependency, _)| *dependency),
            );
        }
    }
    keep
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

/// Render the resources in `keep` (all when `None`) in dependency order.
pub fn render(
    graph: &ResourceGraph,
    keep: Option<&BTreeSet<usize>>,
    format: GraphFormat,
) -> String {
    let order: Vec<usize> = graph
        .topological_order()
        .into_iter()
        .filter(|node| keep.is_none_or(|keep| keep.contains(node)))
        .collect();
    let mut text = String::new();
    match format {
        GraphFormat::Text => {
            for node in &order {
                let _ = writeln!(text, "{}", graph.resources[*node].address);
                for (dependency, reason) in &graph.dependencies[*node] {
                    let _ = writeln!(
                        text,
                        "  needs {} ({reason})",
                        graph.resources[*dependency].address
                    );
                }
            }
        }
        GraphFormat::Dot => {
            let _ = writeln!(text, "digraph fleetform {{");
            let _ = writeln!(text, "  rankdir=LR;");
            let _ = writeln!(text, "  node [shape=box];");
            for node in &order {
                let _ = writeln!(
                    text,
                    "  {};",
                    dot_quote(&graph.resources[*node].address.to_string())
                );
            }
            for node in &order {
                for (dependency, reason) in &graph.dependencies[*node] {
                    let _ = writeln!(
                        text,
                        "  {} -> {} [label={}];",
                        dot_quote(&graph.resources[*node].address.to_string()),
                        dot_quote(&graph.resources[*dependency].address.to_string()),
                        dot_quote(reason)
                    );
                }
            }
            let _ = writeln!(text, "}}");
        }
        GraphFormat::Mermaid => {
            let _ = writeln!(text, "flowchart LR");
            for node in &order {
                let _ = writeln!(
                    text,
                    "  r{node}[\"{}\"]",
                    mermaid_label(&graph.resources[*node].address.to_string())
                );
            }
            for node in &order {
                for (dependency, _) in &graph.dependencies[*node] {
                    let _ = writeln!(text, "  r{node} --> r{dependency}");
                }
            }
        }
        GraphFormat::Json => {
            let resources: Vec<Value> = order
                .iter()
                .map(|node| {
                    let resource = &graph.resources[*node];
                    serde_json::json!({
                        "address": resource.address.to_string(),
                        "kind": resource.address.kind,
                        "name": resource.address.name,
                        "target": resource.target,
                        "dependencies": graph.dependencies[*node].iter().map(|(dependency, reason)| serde_json::json!({
                            "address": graph.resources[*dependency].address.to_string(),
                            "reason": reason,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let document = serde_json::json!({"format_version": 1, "resources": resources});
            text = serde_json::to_string_pretty(&document).unwrap_or_default();
            text.push('\n');
        }
    }
    text
}

fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn mermaid_label(text: &str) -> String {
    text.replace('"', "#quot;")
}
