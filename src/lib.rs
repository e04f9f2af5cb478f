//! fleetform: declarative desired-state convergence for fleets of SQL Server
//! and PostgreSQL servers. See docs/ARCHITECTURE.md for the map.

pub mod cli;
pub mod connector;
pub mod cron;
pub mod diagnostics;
pub mod engines;
pub mod model;
pub mod modules;
pub mod ops;
pub mod output;
pub mod progress;
pub mod report;
pub mod schemas;
pub mod secrets;
pub mod settings;
pub mod source;
pub mod suggest;
pub mod template;
pub mod yaml;
