//! TLS: termination with certificates chosen by SNI, ALPN h2, reload on file change without
//! touching open connections, bad files refused with the old certificates kept, TLS to
//! upstreams. Certificates come from a CA made for each test (rcgen).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use switchyard_core::dataplane::{AppTable, ListenerState, TableTarget};
use switchyard_core::manifest::app::{HealthCheck, ListenerTls, UpstreamTls};
use switchyard_core::{AppName, Version};
use switchyard_proxy::host::ProxyHost;
use switchyard_proxy::{ProxyConfig, Telemetry};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::support::*;

/// A CA, and a directory for the files it issues.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Issues a certificate for `names` into `<file>.pem` and `<file>.key`; returns its DER.
    fn issue(&self, file: &str, names: &[&str]) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        self.write(&format!("{file}.pem"), &cert.pem());
        self.write(&format!("{file}.key"), &key.serialize_pem());
        cert.der().clone()
    }

    /// Writes `content` to `file` through a rename, as certificate tools do.
    fn write(&self, file: &str, content: &str) {
        let tmp = self.dir.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.path(file)).unwrap();
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn ca_file(&self) -> PathBuf {
        let path = self.path("ca.pem");
        if !path.exists() {
            self.write("ca.pem", &self.ca.pem());
        }
        path
    }

    fn listener_tls(&self, files: &[&str]) -> ListenerTls {
        let certificates: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "cert": self.path(&format!("{f}.pem")),
                    "key": self.path(&format!("{f}.key")),
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "certificates": certificates })).unwrap()
    }

    fn upstream_tls(&self, server_name: Option<&str>) -> UpstreamTls {
        serde_json::from_value(serde_json::json!({
            "ca": self.ca_file(),
            "serverName": server_name,
        }))
        .unwrap()
    }

    #[allow(deprecated)]
    fn connector(&self, alpn: &[&str]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(pki: &Pki, addr: SocketAddr, sni: &str, alpn: &[&str]) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    pki.connector(alpn).connect(name, tcp).await
}

fn served_certificate(tls: &Tls) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// An HTTP/1.1 connection over `tls`: send requests with [`get1`].
async fn http1_over(tls: Tls) -> http1::SendRequest<Empty<Bytes>> {
    let (send, conn) = http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    send
}

async fn get1(send: &mut http1::SendRequest<Empty<Bytes>>, path: &str) -> (StatusCode, String) {
    send.ready().await.unwrap();
    let req = Request::get(path)
        .header("host", "shop.test")
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn name(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

fn app_table(
    targets: &[SocketAddr],
    tls: Option<ListenerTls>,
    up: Option<UpstreamTls>,
) -> AppTable {
    AppTable {
        listen: "127.0.0.1:0".parse().unwrap(),
        preview_listen: None,
        targets: vec![TableTarget {
            release: Version::new("v1").unwrap(),
            weight: 100,
            endpoints: targets.to_vec(),
        }],
        header_routes: Vec::new(),
        mirror: None,
        stickiness: None,
        health_check: HealthCheck::default(),
        preview: None,
        experiment: None,
        tls,
        upstream_tls: up,
    }
}

fn host() -> ProxyHost {
    let config = ProxyConfig {
        tls_reload_interval: Duration::from_millis(20),
        ..ProxyConfig::default()
    };
    ProxyHost::new(
        config,
        Arc::new(Telemetry::new()),
        None,
        Duration::from_millis(200),
    )
}

/// Makes `table` the only one `host` serves (as app `shop`).
async fn sync(host: &ProxyHost, table: AppTable) {
    host.sync(&BTreeMap::from([(name("shop"), table)]))
        .await
        .unwrap();
}

/// [`sync`], and the address `shop` is bound to.
async fn serve(host: &ProxyHost, table: AppTable) -> SocketAddr {
    sync(host, table).await;
    match shop_listener(host).await {
        ListenerState::Bound(addr) => addr,
        other => panic!("not bound: {other:?}"),
    }
}

async fn shop_listener(host: &ProxyHost) -> ListenerState {
    host.listeners().await[&name("shop")].main.clone()
}

async fn tls_problem(host: &ProxyHost) -> Option<String> {
    host.listeners().await[&name("shop")].tls_problem.clone()
}

/// Waits until `check` holds (each try a fresh connection or state read).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn terminates_tls_with_the_certificate_the_client_names_and_speaks_h2_by_alpn() {
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    let shop = pki.issue("shop", &["shop.test"]);
    let admin = pki.issue("admin", &["*.admin.test"]);
    let host = host();
    let tls = pki.listener_tls(&["shop", "admin"]);
    let addr = serve(&host, app_table(&[backend.addr], Some(tls), None)).await;

    let a = connect(&pki, addr, "shop.test", &["http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_certificate(&a), shop);
    let mut a = http1_over(a).await;
    let (status, body) = get1(&mut a, "/headers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("x-forwarded-proto: https"), "{body}");

    let b = connect(&pki, addr, "ops.admin.test", &["h2", "http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_certificate(&b), admin, "the wildcard certificate");
    assert_eq!(b.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(b))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://ops.admin.test/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"v1");

    // A name no certificate covers gets the first one, which the client then refuses.
    let e = connect(&pki, addr, "other.test", &[]).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    // Plain HTTP on a TLS listener is not served.
    let answer = raw(addr, b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n").await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn a_changed_certificate_is_served_to_new_connections_and_open_ones_keep_going() {
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    let first = pki.issue("shop", &["shop.test"]);
    let host = host();
    let addr = serve(
        &host,
        app_table(&[backend.addr], Some(pki.listener_tls(&["shop"])), None),
    )
    .await;
    let open = connect(&pki, addr, "shop.test", &["http/1.1"])
        .await
        .unwrap();
    assert_eq!(served_certificate(&open), first);
    let mut open = http1_over(open).await;
    assert_eq!(get1(&mut open, "/").await.0, StatusCode::OK);

    let second = pki.issue("shop", &["shop.test"]);
    until("the new certificate is served", || async {
        let tls = connect(&pki, addr, "shop.test", &[]).await.unwrap();
        served_certificate(&tls) == second
    })
    .await;
    // The connection opened before the reload is still served, on the same connection.
    assert_eq!(get1(&mut open, "/").await, (StatusCode::OK, "v1".into()));
    assert_eq!(tls_problem(&host).await, None);
}

#[tokio::test]
async fn bad_files_keep_the_certificate_in_use_and_say_what_is_wrong() {
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    let good = pki.issue("shop", &["shop.test"]);
    let host = host();
    let addr = serve(
        &host,
        app_table(&[backend.addr], Some(pki.listener_tls(&["shop"])), None),
    )
    .await;

    // A key that belongs to another certificate.
    let stray = KeyPair::generate().unwrap();
    pki.write("shop.key", &stray.serialize_pem());
    until("the reload is refused", || async {
        tls_problem(&host).await.is_some()
    })
    .await;
    let problem = tls_problem(&host).await.unwrap();
    assert!(
        problem.contains("the key does not belong to the certificate"),
        "{problem}"
    );
    assert!(
        problem.contains(&pki.path("shop.key").display().to_string()),
        "{problem}"
    );
    let tls = connect(&pki, addr, "shop.test", &[]).await.unwrap();
    assert_eq!(
        served_certificate(&tls),
        good,
        "the old certificate still serves"
    );
    assert_eq!(
        get1(&mut http1_over(tls).await, "/").await.0,
        StatusCode::OK
    );

    // Not PEM at all.
    pki.write("shop.pem", "not a certificate");
    until("the second refusal", || async {
        tls_problem(&host)
            .await
            .is_some_and(|p| p.contains("no certificate"))
    })
    .await;
    let problem = tls_problem(&host).await.unwrap();
    let pem = pki.path("shop.pem").display().to_string();
    assert!(
        problem.contains(&format!("{pem}: no certificate")),
        "{problem}"
    );

    // Fixed files are served, and the problem is gone.
    let fixed = pki.issue("shop", &["shop.test"]);
    until("the fixed certificate is served", || async {
        tls_problem(&host).await.is_none()
    })
    .await;
    let tls = connect(&pki, addr, "shop.test", &[]).await.unwrap();
    assert_eq!(served_certificate(&tls), fixed);
}

#[tokio::test]
async fn a_listener_whose_certificate_cannot_be_read_does_not_serve_and_says_why() {
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    let host = host();
    let missing = pki.listener_tls(&["absent"]);
    let table = app_table(&[backend.addr], Some(missing), None);
    sync(&host, table).await;
    match shop_listener(&host).await {
        ListenerState::Failed(why) => {
            let path = pki.path("absent.pem");
            assert!(
                why.contains(&format!("{}: cannot be read", path.display())),
                "{why}"
            );
        }
        other => panic!("bound without its certificate: {other:?}"),
    }
}

#[tokio::test]
async fn new_files_in_the_table_that_do_not_load_leave_the_listener_as_it_was() {
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    let good = pki.issue("shop", &["shop.test"]);
    let host = host();
    let addr = serve(
        &host,
        app_table(&[backend.addr], Some(pki.listener_tls(&["shop"])), None),
    )
    .await;
    let broken = app_table(&[backend.addr], Some(pki.listener_tls(&["absent"])), None);
    sync(&host, broken).await;
    let problem = tls_problem(&host).await.unwrap();
    assert!(problem.contains("absent.pem"), "{problem}");
    let tls = connect(&pki, addr, "shop.test", &[]).await.unwrap();
    assert_eq!(served_certificate(&tls), good);
    // Back to the files that load: no problem left.
    let table = app_table(&[backend.addr], Some(pki.listener_tls(&["shop"])), None);
    sync(&host, table).await;
    assert_eq!(tls_problem(&host).await, None);
}

/// A backend that speaks only TLS, with `cert` from `pki`; answers its name.
async fn tls_backend(pki: &Pki, file: &str) -> SocketAddr {
    let tls = pki.listener_tls(&[file]);
    let config = switchyard_proxy::tls::server_config(&tls).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let proto = req.headers().get("x-forwarded-proto").cloned();
                        let mut r =
                            http::Response::new(http_body_util::Full::new(Bytes::from("secure")));
                        if let Some(p) = proto {
                            r.headers_mut().insert("x-seen-proto", p);
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn speaks_tls_to_upstreams_and_verifies_them() {
    let pki = Pki::new();
    pki.issue("backend", &["backend.internal", "127.0.0.1"]);
    let upstream = tls_backend(&pki, "backend").await;
    let host = host();
    // Verified for the instance's address (an IP in the certificate).
    let addr = serve(
        &host,
        app_table(&[upstream], None, Some(pki.upstream_tls(None))),
    )
    .await;
    assert_eq!(
        get(&client(), addr, "/").await,
        (StatusCode::OK, "secure".into())
    );
    // Verified for a name.
    let named = app_table(
        &[upstream],
        None,
        Some(pki.upstream_tls(Some("backend.internal"))),
    );
    sync(&host, named).await;
    assert_eq!(
        get(&client(), addr, "/").await,
        (StatusCode::OK, "secure".into())
    );
    // A name the certificate does not cover: the instance is not trusted.
    let wrong = app_table(
        &[upstream],
        None,
        Some(pki.upstream_tls(Some("elsewhere.internal"))),
    );
    sync(&host, wrong).await;
    let (status, body) = get(&client(), addr, "/").await;
    assert!(untrusted(status), "{status} {body}");
    // Another CA: not trusted either.
    let other = Pki::new();
    let strange = app_table(&[upstream], None, Some(other.upstream_tls(None)));
    sync(&host, strange).await;
    let (status, body) = get(&client(), addr, "/").await;
    assert!(untrusted(status), "{status} {body}");
}

/// The proxy's answer when no instance can be trusted: 502, or 503 once health checks (which
/// fail the same way) took the instance out.
fn untrusted(status: StatusCode) -> bool {
    status == StatusCode::BAD_GATEWAY || status == StatusCode::SERVICE_UNAVAILABLE
}

#[tokio::test]
async fn an_unreadable_upstream_ca_is_a_listener_failure_naming_the_file() {
    let backend = TestBackend::start("v1").await;
    let host = host();
    let up: UpstreamTls =
        serde_json::from_value(serde_json::json!({ "ca": "/nonexistent/ca.pem" })).unwrap();
    let table = app_table(&[backend.addr], None, Some(up));
    sync(&host, table).await;
    match shop_listener(&host).await {
        ListenerState::Failed(why) => {
            assert!(
                why.contains("upstream TLS: /nonexistent/ca.pem: cannot be read"),
                "{why}"
            );
        }
        other => panic!("bound without its CA: {other:?}"),
    }
}

/// An answer that closes the connection ends with TLS's `close_notify`: a client reading to the
/// end gets the whole answer and a clean end, not a truncation error.
#[tokio::test]
async fn a_closing_answer_over_tls_ends_with_close_notify() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = TestBackend::start("v1").await;
    let pki = Pki::new();
    pki.issue("shop", &["shop.test"]);
    let host = host();
    let addr = serve(
        &host,
        app_table(&[backend.addr], Some(pki.listener_tls(&["shop"])), None),
    )
    .await;
    let mut tls = connect(&pki, addr, "shop.test", &["http/1.1"])
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let read = tls.read_to_string(&mut answer).await;
    assert!(read.is_ok(), "{read:?}: {answer}");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nv1"), "{answer}");
}
