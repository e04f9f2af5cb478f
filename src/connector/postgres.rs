//! The PostgreSQL connector (tokio-postgres): sessions with TLS, timeouts and
//! retries, JSON queries and script execution. Every error names the instance.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio_postgres::error::SqlState;

use super::tls::{SslMode, client_config};
use super::{Failure, NotAnswering};
use crate::secrets::SecretRef;

/// Everything needed to open a session to one instance.
#[derive(Clone, Debug)]
pub struct PostgresEndpoint {
    /// The PostgresInstance's name, used in every message.
    pub instance: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<SecretRef>,
    pub database: String,
    pub ssl_mode: SslMode,
    pub ssl_root_certificate: Option<std::path::PathBuf>,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub application_name: String,
    /// The major version the manifest declares (`spec.version`), checked
    /// against the server's when it is read.
    pub declared_major: Option<u64>,
}

impl PostgresEndpoint {
    /// Refuse a server whose major version is not the declared one: the
    /// manifests describe another server than the one that answers (an
    /// upgrade not reflected in git, or a port pointing elsewhere).
    pub fn check_facts(&self, facts: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let (Some(declared), Some(number)) = (
            self.declared_major,
            facts
                .get("server_version_num")
                .and_then(serde_json::Value::as_u64),
        ) else {
            return Ok(());
        };
        let running = number / 10_000;
        if running != declared {
            let release = facts
                .get("server_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            anyhow::bail!(
                "{} is declared as PostgreSQL {declared} (spec.version) but runs {release}: correct spec.version, or check that the port reaches the right server",
                self.describe()
            );
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!(
            "PostgresInstance {} ({}:{}, user {})",
            self.instance, self.host, self.port, self.user
        )
    }

    /// A session to `database` (the endpoint's own database when None),
    /// retried with backoff on transient failures.
    pub async fn connect(&self, database: Option<&str>) -> Result<PostgresSession> {
        self.connect_with(database, false).await
    }

    /// A session whose transactions are read-only
    /// (`default_transaction_read_only`) when `read_only`.
    pub async fn connect_with(
        &self,
        database: Option<&str>,
        read_only: bool,
    ) -> Result<PostgresSession> {
        super::connect_with_retries(&self.instance, &self.describe(), || {
            self.connect_once(database, read_only)
        })
        .await
    }

    async fn connect_once(
        &self,
        database: Option<&str>,
        read_only: bool,
    ) -> Result<PostgresSession, Failure> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database.unwrap_or(&self.database))
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .ssl_mode(self.ssl_mode.negotiation())
            .options(format!(
                "-c TimeZone=UTC -c statement_timeout={} -c lock_timeout={} -c default_transaction_read_only={}",
                self.statement_timeout.as_millis(),
                self.statement_timeout.as_millis(),
                if read_only { "on" } else { "off" }
            ));
        if let Some(secret) = &self.password {
            let password = secret
                .resolve()
                .context("reading its password")
                .map_err(Failure::permanent)?;
            config.password(password);
        }
        let tls = client_config(self.ssl_mode, self.ssl_root_certificate.as_deref())
            .map_err(Failure::permanent)?;
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let attempt = tokio::time::timeout(
            self.connect_timeout + Duration::from_secs(1),
            config.connect(connector),
        )
        .await;
        let (client, connection) = match attempt {
            Err(_) => {
                return Err(Failure {
                    error: anyhow!("timed out after {} s", self.connect_timeout.as_secs()),
                    transient: true,
                });
            }
            Ok(Err(error)) => return Err(Failure::from_postgres(error)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            // Errors surface on the client's next call; nothing to do here.
            let _ = connection.await;
        });
        Ok(PostgresSession {
            client,
            instance: self.instance.clone(),
            // statement_timeout 0 means no limit on the server; a day bounds the wait here.
            call_timeout: if self.statement_timeout.is_zero() {
                Duration::from_secs(86_400)
            } else {
                self.statement_timeout + Duration::from_secs(10)
            },
        })
    }
}

/// One open session.
pub struct PostgresSession {
    client: tokio_postgres::Client,
    instance: String,
    /// A call never waits longer than this, whatever the server does.
    call_timeout: Duration,
}

impl PostgresSession {
    /// Run a query whose single row has a single JSON column.
    pub async fn query_json(&self, sql: &str) -> Result<Value> {
        self.query_json_within(sql, self.call_timeout).await
    }

    /// The same, waiting at most `timeout` (for waits longer than a
    /// statement, such as a lock).
    pub async fn query_json_within(&self, sql: &str, timeout: Duration) -> Result<Value> {
        let row = tokio::time::timeout(timeout, self.client.query_one(sql, &[]))
            .await
            .map_err(|_| timed_out(&self.instance, timeout))?
            .map_err(describe_postgres_error)?;
        row.try_get::<_, Value>(0)
            .map_err(|error| anyhow!("the query did not return one JSON value: {error}"))
    }

    /// Run queries that each return one JSON value in one round trip (the
    /// simple query protocol, one implicit transaction): their values in
    /// order. Any error, or a script that is not exactly one statement
    /// returning one row, fails the whole batch.
    pub async fn query_json_batch(&self, scripts: &[String]) -> Result<Vec<Value>> {
        let mut text = String::new();
        for script in scripts {
            // A line of its own: a script may end in a `--` comment.
            text.push_str(script);
            text.push_str("\n;\n");
        }
        let messages = self
            .bounded(self.client.simple_query(&text))
            .await?
            .map_err(describe_postgres_error)?;
        let mut values = Vec::with_capacity(scripts.len());
        let mut rows = Vec::new();
        for message in messages {
            match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(row),
                tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {
                    let [row] = std::mem::take(&mut rows)
                        .try_into()
                        .map_err(|rows: Vec<_>| {
                            anyhow!(
                                "query {} of the batch returned {} rows, not one",
                                values.len() + 1,
                                rows.len()
                            )
                        })?;
                    let text = row
                        .try_get(0)
                        .map_err(describe_postgres_error)?
                        .with_context(|| {
                            format!("query {} of the batch returned NULL", values.len() + 1)
                        })?;
                    values.push(serde_json::from_str(text).with_context(|| {
                        format!(
                            "query {} of the batch did not return one JSON value",
                            values.len() + 1
                        )
                    })?);
                }
                _ => {}
            }
        }
        if values.len() != scripts.len() {
            bail!(
                "a batch of {} queries returned {} results",
                scripts.len(),
                values.len()
            );
        }
        Ok(values)
    }

    /// Run a script: in one transaction, or statement by statement for
    /// statements that refuse transaction blocks.
    pub async fn execute(&mut self, script: &str, transaction: bool) -> Result<()> {
        let statements = split_statements(script);
        let count = statements.len();
        if transaction {
            // Statement by statement: the server logs each as it arrives,
            // so a statement that turns logging off (before one carrying a
            // password) runs before the next is sent.
            let call = async {
                let transaction = self
                    .client
                    .transaction()
                    .await
                    .map_err(describe_postgres_error)?;
                for (index, statement) in statements.iter().enumerate() {
                    transaction
                        .batch_execute(statement)
                        .await
                        .map_err(describe_postgres_error)
                        .with_context(|| format!("in statement {} of {count}", index + 1))?;
                }
                transaction.commit().await.map_err(describe_postgres_error)
            };
            let timeout = self.call_timeout;
            let instance = self.instance.clone();
            return match tokio::time::timeout(timeout, call).await {
                Err(_) => Err(timed_out(&instance, timeout)),
                Ok(result) => result,
            };
        }
        for (index, statement) in statements.iter().enumerate() {
            // The statement's number, not its text: the text may hold a value.
            self.bounded(self.client.batch_execute(statement))
                .await?
                .map_err(describe_postgres_error)
                .with_context(|| format!("in statement {} of {count}", index + 1))?;
        }
        Ok(())
    }

    async fn bounded<T>(&self, call: impl std::future::Future<Output = T>) -> Result<T> {
        tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| timed_out(&self.instance, self.call_timeout))
    }
}

fn timed_out(instance: &str, timeout: Duration) -> anyhow::Error {
    // The server did not even enforce its own statement_timeout (the call's
    // limit is 10 s more): it is not answering.
    NotAnswering::error(format!(
        "PostgresInstance {instance} did not answer within {} s",
        timeout.as_secs()
    ))
}

impl Failure {
    fn from_postgres(error: tokio_postgres::Error) -> Failure {
        let transient = is_transient(&error);
        Failure {
            error: describe_postgres_error(error),
            transient,
        }
    }
}

/// Errors worth another try: the server starting or full, a dropped
/// connection, a refused or timed-out socket.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::TimedOut
            );
        }
        source = cause.source();
    }
    false
}

/// A readable message: the server's own for database errors (with SQLSTATE
/// and detail), the socket's for connection errors.
fn describe_postgres_error(error: tokio_postgres::Error) -> anyhow::Error {
    if let Some(database_error) = error.as_db_error() {
        let mut message = format!(
            "{} (SQLSTATE {})",
            database_error.message(),
            database_error.code().code()
        );
        if let Some(detail) = database_error.detail() {
            message.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = database_error.hint() {
            message.push_str(&format!("\nhint: {hint}"));
        }
        let code = database_error.code();
        if *code == SqlState::INVALID_PASSWORD {
            message.push_str(
                "\nhint: check the user and the password's secret in the instance's connection or the environment's connectionDefaults.postgres",
            );
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            // pg_hba.conf rejected the connection before any password.
            message.push_str(
                "\nhint: the server's pg_hba.conf has no entry that lets this user connect from here to this database (or one that rejects it): add one on the server, or connect as another user, to another database or with the sslMode it asks for",
            );
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            message.push_str(
                "\nhint: fleetform reads the server in read-only transactions (plan, drift, and apply before it acts): a query of the manifests, such as a custom SQL test or drift query, must not change anything",
            );
        } else if [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
        {
            // The server is stopping, crashed or not accepting yet.
            return NotAnswering::error(message);
        }
        return anyhow!(message);
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if let Some(certificate) = certificate_problem(&error) {
        return anyhow!(certificate);
    }
    if error.is_closed() || is_transient(&error) {
        // The connection closed, was reset or refused under a session.
        return NotAnswering::error(message);
    }
    if NOT_POSTGRES_SIGNS.iter().any(|sign| message.contains(sign)) {
        return anyhow!(
            "the endpoint answered but does not speak the PostgreSQL protocol\nhint: another service (SSH, a web server, SQL Server, a proxy's admin port) listens at this address and port: check the instance's server and spec.port"
        );
    }
    anyhow!(message)
}

/// What the client library says when the bytes that came back are not
/// PostgreSQL's protocol (a greeting of another service parsed as messages,
/// or as a TLS handshake after its first byte read as "TLS accepted").
const NOT_POSTGRES_SIGNS: &[&str] = &[
    "bytes remaining on stream",
    "unexpected message from server",
    "error parsing response from server",
    "invalid message length",
    "received corrupt message",
    "InvalidContentType",
    "InvalidMessage",
];

/// A certificate the TLS check refused, said as what happened and what to do
/// (rustls's own words, such as `Other(OtherError(CaUsedAsEndEntity))`, mean
/// nothing to a DBA).
fn certificate_problem(error: &tokio_postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut found = None;
    while let Some(cause) = source {
        // io::Error hides the error it wraps from source(): look inside it.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        if let Some(rustls::Error::InvalidCertificate(problem)) = inner
            .unwrap_or(cause)
            .downcast_ref::<rustls::Error>()
            .or_else(|| cause.downcast_ref::<rustls::Error>())
        {
            found = Some(problem.clone());
            break;
        }
        source = cause.source();
    }
    use rustls::CertificateError as Problem;
    let (what, what_to_do) = match found? {
        Problem::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => (
            "the server's certificate is a CA certificate (self-signed) used as its own: verify-ca and verify-full need a server certificate signed by a CA",
            "make a CA, sign the server's certificate with it and name the CA's PEM file in sslRootCert (or re-create the self-signed certificate without the CA basic constraint); sslMode: require encrypts without checking the certificate",
        ),
        Problem::UnknownIssuer => (
            "the server's certificate is not signed by a CA that sslRootCert (or, without it, the system's trust store) holds",
            "set sslRootCert to the PEM file of the CA that signed the server's certificate",
        ),
        Problem::NotValidForName | Problem::NotValidForNameContext { .. } => (
            "the server's certificate does not name the host fleetform connects to",
            "connect by a name or address the certificate lists (the Server's host), re-issue the certificate with it, or use sslMode: verify-ca, which checks the CA only",
        ),
        Problem::Expired | Problem::ExpiredContext { .. } => (
            "the server's certificate has expired",
            "renew the server's certificate (ssl_cert_file) and reload the server",
        ),
        Problem::NotValidYet | Problem::NotValidYetContext { .. } => (
            "the server's certificate is not valid yet",
            "check the clocks of this machine and of the certificate's issuer",
        ),
        other => {
            return Some(format!(
                "the server's certificate was refused ({other:?})\nhint: check the server's ssl_cert_file and the CA in sslRootCert"
            ));
        }
    };
    Some(format!("{what}\nhint: {what_to_do}"))
}

/// Split a script into statements at top-level semicolons, respecting
/// quoted literals and identifiers, dollar quotes and comments.
pub fn split_statements(script: &str) -> Vec<String> {
    let characters: Vec<char> = script.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        let next = characters.get(index + 1).copied();
        match character {
            '\'' | '"' => {
                let end = quoted_end(&characters, index, character);
                current.extend(&characters[index..end]);
                index = end;
                continue;
            }
            '-' if next == Some('-') => {
                let end = characters[index..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(characters.len(), |offset| index + offset);
                current.extend(&characters[index..end]);
                index = end;
                continue;
            }
            '/' if next == Some('*') => {
                let end = block_comment_end(&characters, index);
                current.extend(&characters[index..end]);
                index = end;
                continue;
            }
            '$' => {
                if let Some(tag_end) = dollar_tag_end(&characters, index) {
                    let tag: String = characters[index..tag_end].iter().collect();
                    let body: String = characters[tag_end..].iter().collect();
                    let end = body.find(&tag).map_or(characters.len(), |offset| {
                        tag_end + body[..offset].chars().count() + tag.chars().count()
                    });
                    current.extend(&characters[index..end]);
                    index = end;
                    continue;
                }
            }
            ';' => {
                push_statement(&mut statements, &current);
                current.clear();
                index += 1;
                continue;
            }
            _ => {}
        }
        current.push(character);
        index += 1;
    }
    push_statement(&mut statements, &current);
    statements
}

fn push_statement(statements: &mut Vec<String>, text: &str) {
    let meaningful = text
        .lines()
        .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with("--"));
    if meaningful {
        statements.push(text.trim().to_string());
    }
}

/// End (exclusive) of a quoted run starting at `start`; doubled quotes stay inside.
fn quoted_end(characters: &[char], start: usize, quote: char) -> usize {
    let escape_string = quote == '\''
        && start > 0
        && matches!(characters[start - 1], 'E' | 'e')
        && (start < 2 || !characters[start - 2].is_alphanumeric());
    let mut index = start + 1;
    while index < characters.len() {
        let character = characters[index];
        if escape_string && character == '\\' {
            index += 2;
            continue;
        }
        if character == quote {
            if characters.get(index + 1) == Some(&quote) {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    characters.len()
}

fn block_comment_end(characters: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut index = start;
    while index + 1 < characters.len() {
        if characters[index] == '/' && characters[index + 1] == '*' {
            depth += 1;
            index += 2;
        } else if characters[index] == '*' && characters[index + 1] == '/' {
            depth -= 1;
            index += 2;
            if depth == 0 {
                return index;
            }
        } else {
            index += 1;
        }
    }
    characters.len()
}

/// `$tag$` starting at `start`: the index after its closing `$`.
fn dollar_tag_end(characters: &[char], start: usize) -> Option<usize> {
    if start > 0 && (characters[start - 1].is_alphanumeric() || characters[start - 1] == '_') {
        return None;
    }
    let mut index = start + 1;
    while index < characters.len() {
        let character = characters[index];
        if character == '$' {
            return Some(index + 1);
        }
        if !(character.is_alphanumeric() || character == '_')
            || (index == start + 1 && character.is_ascii_digit())
        {
            return None;
        }
        index += 1;
    }
    None
}

impl super::Connector for PostgresEndpoint {
    fn describe(&self) -> String {
        PostgresEndpoint::describe(self)
    }

    fn check_facts(&self, facts: &serde_json::Map<String, Value>) -> Result<()> {
        PostgresEndpoint::check_facts(self, facts)
    }

    fn connect<'a>(
        &'a self,
        database: Option<&'a str>,
    ) -> super::Pending<'a, Result<super::Session>> {
        Box::pin(async move {
            Ok(super::Session::new(
                PostgresEndpoint::connect(self, database).await?,
            ))
        })
    }

    fn connect_read_only<'a>(
        &'a self,
        database: Option<&'a str>,
    ) -> super::Pending<'a, Result<super::Session>> {
        Box::pin(async move {
            Ok(super::Session::new(
                PostgresEndpoint::connect_with(self, database, true).await?,
            ))
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl super::SessionApi for PostgresSession {
    fn query_json<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
    ) -> super::Pending<'a, Result<Value>> {
        Box::pin(async move {
            match timeout {
                Some(timeout) => PostgresSession::query_json_within(self, script, timeout).await,
                None => PostgresSession::query_json(self, script).await,
            }
        })
    }

    fn query_json_batch<'a>(
        &'a self,
        scripts: &'a [String],
    ) -> super::Pending<'a, Result<Vec<Value>>> {
        Box::pin(PostgresSession::query_json_batch(self, scripts))
    }

    fn batches(&self) -> bool {
        true
    }

    fn execute<'a>(
        &'a mut self,
        script: &'a str,
        transaction: bool,
    ) -> super::Pending<'a, Result<()>> {
        Box::pin(PostgresSession::execute(self, script, transaction))
    }
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn statements_split_only_at_top_level_semicolons() {
        let script = "CREATE DATABASE \"a;b\" WITH OWNER \"x\";\nCOMMENT ON DATABASE \"a;b\" IS 'it''s; fine';\n-- a comment; here\nSELECT $$;$$; SELECT E'\\';'; /* ; */ SELECT 1";
        assert_eq!(
            split_statements(script),
            vec![
                "CREATE DATABASE \"a;b\" WITH OWNER \"x\"",
                "COMMENT ON DATABASE \"a;b\" IS 'it''s; fine'",
                "-- a comment; here\nSELECT $$;$$",
                "SELECT E'\\';'",
                "/* ; */ SELECT 1",
            ]
        );
    }
}
