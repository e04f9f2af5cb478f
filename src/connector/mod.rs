//! Connectors: the narrow contract between the engine and a kind of server.
//!
//! The engine opens a `Session` on an `Endpoint`, runs rendered discovery
//! queries that return one JSON value, and runs rendered scripts. It never
//! looks inside: which protocol, which TLS, which retries is the connector's
//! business. PostgreSQL (tokio-postgres) and SQL Server (tiberius) exist;
//! the shell connector runs local restarts.

pub mod postgres;
pub mod shell;
pub mod sqlserver;
pub mod tls;

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::template::Dialect;

/// A connection failure, and whether trying again may help.
pub(crate) struct Failure {
    pub error: anyhow::Error,
    pub transient: bool,
}

impl Failure {
    pub fn permanent(error: anyhow::Error) -> Failure {
        Failure {
            error,
            transient: false,
        }
    }
}

/// How many times a transient connection failure is tried, and the first pause.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Connect with `attempt`, trying again after a growing pause while the
/// failure is transient, at most `ATTEMPTS` times; errors name `described`.
pub(crate) async fn connect_with_retries<T, F, Fut>(
    instance: &str,
    described: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        tracing::debug!(instance = %instance, attempt = tried, "connecting");
        match attempt().await {
            Ok(connected) => return Ok(connected),
            Err(failure) if tried < ATTEMPTS && failure.transient => {
                let pause = FIRST_BACKOFF * 2u32.pow(tried - 1);
                tracing::warn!(
                    instance = %instance,
                    attempt = tried,
                    pause_ms = pause.as_millis() as u64,
                    error = %format!("{:#}", failure.error),
                    "transient connection failure, trying again"
                );
                tokio::time::sleep(pause).await;
            }
            Err(failure) => {
                return Err(failure.error)
                    .with_context(|| format!("cannot connect to {described}"));
            }
        }
    }
}

#[derive(Clone, Debug)]
pub enum Endpoint {
    Postgres(postgres::PostgresEndpoint),
    SqlServer(sqlserver::SqlServerEndpoint),
}

impl Endpoint {
    pub fn dialect(&self) -> Dialect {
        match self {
            Endpoint::Postgres(_) => Dialect::Postgres,
            Endpoint::SqlServer(_) => Dialect::TransactSql,
        }
    }

    /// The engine of the modules that manage what this endpoint reaches.
    pub fn engine(&self) -> &'static str {
        match self {
            Endpoint::Postgres(_) => "postgres",
            Endpoint::SqlServer(_) => "sqlserver",
        }
    }

    /// How messages name this endpoint.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Postgres(endpoint) => endpoint.describe(),
            Endpoint::SqlServer(endpoint) => endpoint.describe(),
        }
    }

    /// Check what the server says about itself against the manifests.
    pub fn check_facts(&self, facts: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        match self {
            Endpoint::Postgres(endpoint) => endpoint.check_facts(facts),
            Endpoint::SqlServer(endpoint) => endpoint.check_facts(facts),
        }
    }

    /// Template folder of the engine-wide scripts (lock, ledger) for this endpoint.
    pub fn template_folder(&self) -> &'static str {
        match self {
            Endpoint::Postgres(_) => "templates/postgres",
            Endpoint::SqlServer(_) => "templates/sqlserver",
        }
    }

    /// The engine-wide script `name` (`server`, `lock_try`, `ledger/record`...)
    /// in this endpoint's folder and language.
    pub fn script(&self, name: &str) -> String {
        let extension = match self {
            Endpoint::Postgres(_) => "sql",
            Endpoint::SqlServer(_) => "tsql",
        };
        format!("{}/{name}.{extension}", self.template_folder())
    }

    /// What to do when the ledger cannot be created.
    pub fn ledger_hint(&self) -> &'static str {
        match self {
            Endpoint::Postgres(_) => {
                "the ledger lives in the database fleetform connects to; grant CREATE on it to the connecting role, or create schema fleetform owned by that role"
            }
            Endpoint::SqlServer(_) => {
                "the ledger lives in msdb (msdb.fleetform.ledger): the login needs a user in msdb with CREATE SCHEMA and CREATE TABLE, or a DBA creates schema fleetform there owned by that user"
            }
        }
    }

    /// Open a session; `database` picks another database of the same server.
    pub async fn connect(&self, database: Option<&str>) -> Result<Session> {
        match self {
            Endpoint::Postgres(endpoint) => {
                Ok(Session::Postgres(endpoint.connect(database).await?))
            }
            Endpoint::SqlServer(endpoint) => Ok(Session::SqlServer(Box::new(
                endpoint.connect(database).await?,
            ))),
        }
    }
}

pub enum Session {
    Postgres(postgres::PostgresSession),
    SqlServer(Box<sqlserver::SqlServerSession>),
}

impl Session {
    /// Run a query that returns exactly one JSON value.
    pub async fn query_json(&self, script: &str) -> Result<Value> {
        match self {
            Session::Postgres(session) => session.query_json(script).await,
            Session::SqlServer(session) => session.query_json(script).await,
        }
    }

    /// Run a query that returns one JSON value, waiting at most `timeout`.
    pub async fn query_json_within(
        &self,
        script: &str,
        timeout: std::time::Duration,
    ) -> Result<Value> {
        match self {
            Session::Postgres(session) => session.query_json_within(script, timeout).await,
            Session::SqlServer(session) => session.query_json_within(script, timeout).await,
        }
    }

    /// Run a script, in one transaction when `transaction` is true.
    pub async fn execute(&mut self, script: &str, transaction: bool) -> Result<()> {
        match self {
            Session::Postgres(session) => session.execute(script, transaction).await,
            Session::SqlServer(session) => session.execute(script, transaction).await,
        }
    }
}
