//! Resources (one manifest object applied to one target) and the dependency graph between them.

use std::fmt;

use serde::Serialize;

use super::LoadedManifests;

/// What one resource converges.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum Target {
    /// The object itself (a server, an instance, a cluster...).
    None,
    Instance(String),
    Server(String),
}

impl Target {
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::None => None,
            Target::Instance(name) | Target::Server(name) => Some(name),
        }
    }
}

/// A stable address: `Kind/name` for a standalone object, `Kind/name@target`
/// for one expansion of a fleet-wide object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceAddress {
    pub kind: String,
    pub name: String,
    pub target: Option<String>,
}

impl ResourceAddress {
    /// The address `text` spells (`Kind/name` or `Kind/name@target`), or
    /// none when it is not one: kinds and names hold no `/` or `@`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once('/')?;
        let (name, target) = match rest.split_once('@') {
            Some((name, target)) => (name, Some(target)),
            None => (rest, None),
        };
        let plain = |part: &str| !part.is_empty() && !part.contains(['/', '@']);
        (plain(kind) && plain(name) && target.is_none_or(plain)).then(|| ResourceAddress {
            kind: kind.to_string(),
            name: name.to_string(),
            target: target.map(str::to_string),
        })
    }
}

impl fmt::Display for ResourceAddress {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(target) => write!(formatter, "{}/{}@{}", self.kind, self.name, target),
            None => write!(formatter, "{}/{}", self.kind, self.name),
        }
    }
}

impl Serialize for ResourceAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    pub address: ResourceAddress,
    /// Index of the manifest object in `LoadedManifests::objects`.
    #[serde(skip)]
    pub object: usize,
    pub target: Target,
    /// For an object that spans several targets, the one that converges
    /// first (an availability group's primary, a formation's monitor).
    pub lead: Option<String>,
}

/// Resources with their dependencies. `dependencies[i]` lists the indexes of
/// the resources that resource `i` needs first, each with the reason.
#[derive(Clone, Debug, Default)]
pub struct ResourceGraph {
    pub resources: Vec<Resource>,
    pub dependencies: Vec<Vec<(usize, String)>>,
}

impl ResourceGraph {
    /// Resource indexes in an order where every resource comes after its
    /// dependencies; ties are broken by address so the order is stable.
    /// Only meaningful for an acyclic graph (validation guarantees it).
    pub fn topological_order(&self) -> Vec<usize> {
        let count = self.resources.len();
        let mut remaining: Vec<usize> = self.dependencies.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (index, dependencies) in self.dependencies.iter().enumerate() {
            for (dependency, _) in dependencies {
                dependents[*dependency].push(index);
            }
        }
        let mut ready: std::collections::BTreeSet<(&ResourceAddress, usize)> = (0..count)
            .filter(|index| remaining[*index] == 0)
            .map(|index| (&self.resources[index].address, index))
            .collect();
        let mut order = Vec::with_capacity(count);
        while let Some(entry) = ready.pop_first() {
            let index = entry.1;
            order.push(index);
            for dependent in &dependents[index] {
                remaining[*dependent] -= 1;
                if remaining[*dependent] == 0 {
                    ready.insert((&self.resources[*dependent].address, *dependent));
                }
            }
        }
        order
    }
}

/// Manifests that passed validation, expanded into a dependency graph
/// without cycles: the precondition of every later stage.
#[derive(Clone, Debug)]
pub struct ValidatedFleet {
    pub manifests: LoadedManifests,
    pub graph: ResourceGraph,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_parses_back_from_its_display() {
        for text in ["SqlLogin/app", "PostgresRole/app@pg-1"] {
            let address = ResourceAddress::parse(text).unwrap();
            assert_eq!(address.to_string(), text);
        }
        let spanning = ResourceAddress::parse("AvailabilityGroup/ag1@sql-2").unwrap();
        assert_eq!(
            (
                spanning.kind.as_str(),
                spanning.name.as_str(),
                spanning.target.as_deref()
            ),
            ("AvailabilityGroup", "ag1", Some("sql-2"))
        );
        for malformed in [
            "",
            "SqlLogin",
            "/app",
            "SqlLogin/",
            "a/b@",
            "a/b@c@d",
            "a/b/c",
        ] {
            assert_eq!(ResourceAddress::parse(malformed), None, "{malformed}");
        }
    }
}
