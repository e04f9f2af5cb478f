//! The SQL Server connector's failure paths against real sockets on
//! loopback: a port that refuses, a port that accepts and never answers, and
//! a TLS endpoint whose certificate is not trusted. No SQL Server runs here:
//! these check fleetform's own connection handling (timeouts, TLS
//! verification, the messages), not SQL Server's behaviour.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetform::connector::sqlserver::{Authentication, Encrypt, SqlServerEndpoint};
use fleetform::secrets::SecretRef;

fn endpoint(port: u16, encrypt: Encrypt) -> SqlServerEndpoint {
    SqlServerEndpoint {
        instance: "sql-test".into(),
        host: "127.0.0.1".into(),
        port: Some(port),
        instance_name: None,
        authentication: Authentication::Sql,
        user: Some("fleetform".into()),
        password: Some(SecretRef::FromEnv("FLEETFORM_TEST_SQL_PASSWORD".into())),
        database: "master".into(),
        encrypt,
        trust_server_certificate: false,
        ca_file: None,
        host_name_in_certificate: None,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Some(Duration::from_secs(5)),
        application_name: "fleetform-test".into(),
        declared_version: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn connect_error(endpoint: &SqlServerEndpoint) -> String {
    // SAFETY: tests in this file set only this variable, always to the same value.
    unsafe { std::env::set_var("FLEETFORM_TEST_SQL_PASSWORD", "not-a-real-password") };
    match runtime().block_on(endpoint.connect(None)) {
        Ok(_) => panic!("connected to something that is not SQL Server"),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn a_port_that_refuses_is_an_error_naming_the_instance() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let message = connect_error(&endpoint(port, Encrypt::Mandatory));
    assert!(
        message.contains(&format!(
            "SqlInstance sql-test (127.0.0.1:{port}, login fleetform)"
        )),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert!(!message.contains("not-a-real-password"), "{message}");
}

/// NTLM (Windows authentication with an account and password) is built in:
/// the connector gets as far as the network; without a password it says
/// that integrated (Kerberos) authentication is not in this build.
#[test]
fn windows_authentication_uses_ntlm_with_an_account() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut windows = endpoint(port, Encrypt::Mandatory);
    windows.authentication = Authentication::Windows;
    windows.user = Some("CORP\\svc-fleetform".into());
    let message = connect_error(&windows);
    assert!(message.contains("connection refused"), "{message}");
    assert!(
        message.contains("Windows user CORP\\svc-fleetform"),
        "{message}"
    );
    assert!(!message.contains("not-a-real-password"), "{message}");

    windows.password = None;
    let message = connect_error(&windows);
    assert!(
        message.contains("(Kerberos) is not available in this build"),
        "{message}"
    );
    assert!(
        message.contains("give `user` (DOMAIN\\name) and `password` for NTLM"),
        "{message}"
    );

    windows.password = Some(SecretRef::FromEnv("FLEETFORM_TEST_SQL_PASSWORD".into()));
    windows.user = Some("svc-fleetform".into());
    let message = connect_error(&windows);
    assert!(message.contains("names no domain"), "{message}");
}

#[test]
fn a_port_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection without a byte in reply (bounded).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8).flatten() {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let started = Instant::now();
    let message = connect_error(&endpoint(port, Encrypt::Mandatory));
    assert!(
        message.contains("no answer from the login within 2 s"),
        "{message}"
    );
    assert!(message.contains("SqlInstance sql-test"), "{message}");
    // Three attempts of two seconds, with pauses: well under a minute.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// A TLS endpoint on loopback with a certificate from the tests' own CA: what
/// strict encryption (TDS 8.0: TLS before anything else) meets first.
fn tls_endpoint() -> (u16, String) {
    let made = common::tls::certificates("fleetform test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(
                made.server_der.clone(),
            )],
            rustls::pki_types::PrivateKeyDer::Pkcs8(made.server_key_der.clone().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8).flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                // Complete the handshake if the client trusts us, then read
                // what it sends (its TDS prelogin) and hang up.
                let mut buffer = [0u8; 512];
                let _ = tls.read(&mut buffer);
            });
        }
    });
    (port, made.ca_pem)
}

#[test]
fn strict_encryption_refuses_an_untrusted_certificate_and_accepts_its_ca() {
    let (port, ca_pem) = tls_endpoint();
    let untrusted = connect_error(&endpoint(port, Encrypt::Strict));
    assert!(untrusted.contains("TLS failed"), "{untrusted}");
    assert!(
        untrusted.contains("UnknownIssuer") && untrusted.contains("in caFile"),
        "{untrusted}"
    );
    assert!(!untrusted.contains("Config::"), "{untrusted}");

    // trustServerCertificate does not weaken strict mode.
    let mut trusting = endpoint(port, Encrypt::Strict);
    trusting.trust_server_certificate = true;
    let still_untrusted = connect_error(&trusting);
    assert!(still_untrusted.contains("TLS failed"), "{still_untrusted}");

    // With the CA the handshake passes; what follows is not SQL Server, so
    // the connection fails later, and not on the certificate.
    let directory = tempfile::tempdir().unwrap();
    let ca_file = directory.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut verified = endpoint(port, Encrypt::Strict);
    verified.ca_file = Some(ca_file);
    let after_handshake = connect_error(&verified);
    assert!(!after_handshake.contains("TLS failed"), "{after_handshake}");
    assert!(
        after_handshake.contains("SqlInstance sql-test"),
        "{after_handshake}"
    );
}

/// How SqlInstance objects become endpoints: the instance's connection, then
/// the environment's defaults, then the schema's; a named instance without
/// a port is found through SQL Server Browser.
#[test]
fn instances_resolve_to_endpoints_with_their_defaults() {
    let files = std::collections::BTreeMap::from([
        (
            "environments/t/environment.yaml".to_string(),
            "apiVersion: fleetform/v1\nkind: Environment\nmetadata: {name: t}\nspec:\n  connectionDefaults:\n    sqlserver:\n      authentication: sql\n      user: fleetform\n      password: {fromEnv: SQL_PASSWORD}\n      encrypt: strict\n      connectTimeoutSeconds: 7\n".to_string(),
        ),
        (
            "environments/t/inventory.yaml".to_string(),
            "apiVersion: fleetform/v1\nkind: Server\nmetadata: {name: win-1}\nspec: {host: win1.corp.example.com, os: windows}\n\
---\napiVersion: fleetform/v1\nkind: SqlInstance\nmetadata: {name: default-port}\nspec: {server: win-1, version: 2022}\n\
---\napiVersion: fleetform/v1\nkind: SqlInstance\nmetadata: {name: named}\nspec: {server: win-1, instanceName: SALES, version: 2019}\n\
---\napiVersion: fleetform/v1\nkind: SqlInstance\nmetadata: {name: fixed}\nspec: {server: win-1, instanceName: HR, port: 14330, connection: {host: hr.corp.example.com, encrypt: mandatory, caFile: ca/corp.pem, commandTimeoutSeconds: 0}}\n".to_string(),
        ),
    ]);
    let check = common::check_memory(files, "t");
    let fleet = check
        .fleet
        .unwrap_or_else(|| panic!("{:?}", check.diagnostics));
    let root = std::path::Path::new("/repo");
    let engines = fleetform::engines::EngineCatalog::embedded().unwrap();
    let endpoints =
        fleetform::ops::targets::resolve_endpoints(&fleet, &common::catalog(), &engines, root)
            .unwrap();
    let endpoint = |name: &str| {
        let endpoint = &endpoints[name];
        assert_eq!(endpoint.engine(), "sqlserver", "{name}");
        endpoint
            .connector
            .as_any()
            .downcast_ref::<SqlServerEndpoint>()
            .unwrap_or_else(|| panic!("{name} is {endpoint:?}"))
            .clone()
    };
    let default_port = endpoint("default-port");
    assert_eq!(
        (default_port.host.as_str(), default_port.port),
        ("win1.corp.example.com", Some(1433))
    );
    assert_eq!(default_port.instance_name, None);
    assert_eq!(default_port.encrypt, Encrypt::Strict);
    assert_eq!(default_port.authentication, Authentication::Sql);
    assert_eq!(default_port.user.as_deref(), Some("fleetform"));
    assert_eq!(default_port.connect_timeout, Duration::from_secs(7));
    assert_eq!(
        default_port.statement_timeout,
        Some(Duration::from_secs(600))
    );
    assert_eq!(default_port.declared_version, Some(2022));
    assert!(
        default_port
            .describe()
            .contains("win1.corp.example.com:1433, login fleetform")
    );
    let named = endpoint("named");
    assert_eq!(
        (named.port, named.instance_name.as_deref()),
        (None, Some("SALES"))
    );
    assert!(named.describe().contains("win1.corp.example.com\\SALES"));
    let fixed = endpoint("fixed");
    assert_eq!(
        (fixed.host.as_str(), fixed.port),
        ("hr.corp.example.com", Some(14330))
    );
    assert_eq!(fixed.encrypt, Encrypt::Mandatory);
    assert_eq!(
        fixed.ca_file.as_deref(),
        Some(root.join("ca/corp.pem").as_path())
    );
    assert_eq!(fixed.statement_timeout, None);
    assert!(
        fixed.describe().contains("(hr.corp.example.com:14330,"),
        "{}",
        fixed.describe()
    );
}
