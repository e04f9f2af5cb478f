//! Certificates made by the tests: a CA of their own and a server
//! certificate for 127.0.0.1 / localhost signed by it.

pub struct TestCertificates {
    pub ca_pem: String,
    pub server_pem: String,
    pub server_key_pem: String,
    pub server_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
}

pub fn certificates(ca_name: &str) -> TestCertificates {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_certificate = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let server_certificate = server_params.signed_by(&server_key, &issuer).unwrap();
    TestCertificates {
        ca_pem: ca_certificate.pem(),
        server_pem: server_certificate.pem(),
        server_key_pem: server_key.serialize_pem(),
        server_der: server_certificate.der().to_vec(),
        server_key_der: server_key.serialize_der(),
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost that is its own CA
/// (what `openssl req -x509` makes): PEM certificate and key.
pub fn self_signed_ca_as_server() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), key.serialize_pem())
}
