//! TLS through what users run: an app whose manifest names certificate files is served over
//! HTTPS by the proxy process (h2 by ALPN), a renewed certificate is picked up without a
//! restart, and an apply naming files that do not load is refused with the file named while
//! the old certificate keeps serving.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::rolling::wait_for;
use crate::support::*;

fn issue(
    ca: &CertifiedIssuer<'static, KeyPair>,
    dir: &Path,
    name: &str,
) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["shop.test".to_owned()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    // Written aside and renamed, as certificate tools do.
    for (ext, text) in [("pem", cert.pem()), ("key", key.serialize_pem())] {
        let tmp = dir.join(format!(".{name}.{ext}"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(format!("{name}.{ext}"))).unwrap();
    }
    cert.der().clone()
}

/// One HTTPS GET `/` with SNI `shop.test`: the certificate served, the ALPN protocol agreed
/// and the answer's status line and body.
#[allow(deprecated)]
fn https_get(
    ca: &CertificateDer<'static>,
    addr: SocketAddr,
    alpn: &[u8],
) -> Option<(CertificateDer<'static>, Option<Vec<u8>>, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from("shop.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut answer = String::new();
    if alpn == b"http/1.1" {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
            .ok()?;
        tls.read_to_string(&mut answer).ok()?;
    } else {
        tls.flush().ok()?;
        // Drive the handshake: a read that finds nothing to read yet is fine.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).ok()?;
        }
    }
    let cert = tls.conn.peer_certificates()?[0].clone();
    Some((cert, tls.conn.alpn_protocol().map(<[u8]>::to_vec), answer))
}

#[test]
fn an_app_is_served_over_tls_its_certificate_renews_in_place_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let first = issue(&ca, certs.path(), "shop");
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tls = |name: &str| {
        format!(
            "  tls:\n    certificates:\n      - cert: {0}/{name}.pem\n        key: {0}/{name}.key\n",
            certs.path().display()
        )
    };
    let shop = |name: &str| manifest("shop", port, "        - setWeight: 50\n", &tls(name));
    let file = write(dir.path(), "shop.yaml", &shop("shop"));
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);

    let ca_der = ca.der().clone();
    let (cert, alpn, answer) = https_get(&ca_der, app, b"http/1.1").unwrap();
    assert_eq!(cert, first);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("v1"), "{answer}");
    let (_, alpn, _) = https_get(&ca_der, app, b"h2").unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

    // Renewed in place: new connections get the new certificate, no apply, no restart.
    let renewed = issue(&ca, certs.path(), "shop");
    wait_for("the renewed certificate", || {
        https_get(&ca_der, app, b"http/1.1").is_some_and(|(c, _, _)| c == renewed)
    });

    // Files that do not exist: the apply is refused naming the file, nothing changes.
    let broken = write(dir.path(), "broken.yaml", &shop("missing"));
    let err = d.fails(&["apply", "-f", broken.to_str().unwrap()]);
    let missing = certs.path().join("missing.pem");
    assert!(
        err.contains(&format!("{}: cannot be read", missing.display())),
        "{err}"
    );
    let (cert, _, answer) = https_get(&ca_der, app, b"http/1.1").unwrap();
    assert_eq!(cert, renewed, "the certificate in use stays");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A relative path is refused before anything is tried, with where it is.
    let relative = write(
        dir.path(),
        "relative.yaml",
        &manifest(
            "shop",
            port,
            "        - setWeight: 50\n",
            "  tls:\n    certificates:\n      - {cert: shop.pem, key: shop.key}\n",
        ),
    );
    let err = d.fails(&["apply", "-f", relative.to_str().unwrap()]);
    assert!(err.contains("spec.tls.certificates[0].cert"), "{err}");
    assert!(err.contains("absolute path"), "{err}");
}
