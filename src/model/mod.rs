//! Model types: the nouns of fleetform.
//!
//! Manifest objects as loaded (kind, name, the document and where it came
//! from), the environment they belong to, and the resources and graph that
//! expansion makes of them. Operations live in `ops`; this module holds
//! data and small accessors only, and does no IO.

mod manifest;
pub mod plan;
mod resource;

pub use manifest::{Environment, LoadedManifests, ManifestObject, string_list};
pub use resource::{Resource, ResourceAddress, ResourceGraph, Target, ValidatedFleet};
