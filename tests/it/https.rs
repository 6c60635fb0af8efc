//! HTTPS served by hookd: WhatsApp's mutual TLS judged per source after the handshake, and
//! the server certificate swapped without a restart (file change under load, SIGHUP) while a
//! broken new file leaves the old one serving. Certificates are made by the tests (rcgen).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use hookd::config::{META_CLIENT_CERT_NAME, SourceSettings};
use hookd::meta::signature::sign;
use hookd::startup::Application;

use crate::helpers::{
    ADMIN_KEY, HookdProcess, SECRET, VERIFY_TOKEN, free_port, test_settings, wait_ready,
    whatsapp_body,
};

/// A CA that signs certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate (PEM) and its key (PEM) for `names`, with common name `cn`.
    fn sign(&self, names: &[&str], cn: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client trusting `roots`, presenting `identity` (certificate and key PEM) when given.
fn client(roots: &[&str], identity: Option<&(String, String)>) -> HttpsClient {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).expect("root pem");
        store.add(cert).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert pem")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key pem"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// POSTs a signed unique WhatsApp body to `source` over HTTPS; the status, or the error.
async fn post(client: &HttpsClient, port: u16, source: &str, n: u64) -> Result<u16, String> {
    let body = whatsapp_body(&[format!("wamid.https-{n}-{}", rand::random::<u64>())]);
    let req = hyper::Request::post(format!("https://localhost:{port}/webhooks/{source}"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let res = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    Ok(status)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    // Written beside and renamed: a reload never reads half a file.
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    path.to_string_lossy().into_owned()
}

fn source(require_client_cert: bool) -> SourceSettings {
    SourceSettings {
        app_secrets: vec![SECRET.into()],
        verify_token: VERIFY_TOKEN.into(),
        require_client_cert,
        client_cert_name: META_CLIENT_CERT_NAME.into(),
        graph: Default::default(),
    }
}

#[actix_web::test]
async fn a_source_requiring_metas_client_certificate_refuses_every_other_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server_ca, meta_ca, other_ca) = (Ca::new("server"), Ca::new("meta"), Ca::new("other"));
    let (cert, key) = server_ca.sign(&["localhost"], "localhost");
    let redis = crate::helpers::RedisServer::start();
    let mut settings = test_settings(&redis.url());
    settings.server.tls.listen = Some("127.0.0.1:0".parse().expect("addr"));
    settings.server.tls.cert = write(dir.path(), "server.pem", &cert).into();
    settings.server.tls.key = write(dir.path(), "server.key", &key).into();
    settings.server.tls.client_ca = write(dir.path(), "meta-ca.pem", &meta_ca.pem).into();
    settings.sources.insert("wa".into(), source(true));
    settings.sources.insert("open".into(), source(false));
    let app = Application::build(settings).await.expect("hookd starts");
    let (port, tls) = (app.port(), app.tls_port().expect("an HTTPS listener"));
    actix_web::rt::spawn(app.run_until_stopped());

    let meta = meta_ca.sign(&[], META_CLIENT_CERT_NAME);
    let wrong_name = meta_ca.sign(&[], "client.example.com");
    let wrong_ca = other_ca.sign(&[], META_CLIENT_CERT_NAME);
    let roots = [server_ca.pem.as_str()];
    let as_meta = client(&roots, Some(&meta));
    assert_eq!(post(&as_meta, tls, "wa", 1).await, Ok(200));
    for (who, identity) in [
        ("no certificate", None),
        ("another name", Some(&wrong_name)),
        ("another CA", Some(&wrong_ca)),
    ] {
        let c = client(&roots, identity);
        assert_eq!(post(&c, tls, "wa", 2).await, Ok(403), "{who}");
        // The same client on a source that asks for no certificate is served.
        assert_eq!(post(&c, tls, "open", 3).await, Ok(200), "{who}");
    }

    // Each refusal is a rejection with its reason, and counted.
    let api = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reasons = loop {
        let page: serde_json::Value = api
            .get(format!("http://127.0.0.1:{port}/api/v1/rejected"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("rejected")
            .json()
            .await
            .expect("json");
        let mut reasons: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        reasons.sort();
        if reasons.len() >= 3 || Instant::now() > deadline {
            break reasons;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        reasons,
        [
            "client_certificate_missing",
            "client_certificate_name",
            "client_certificate_untrusted"
        ]
    );
    let metrics = api
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("outcome=\"client_certificate_untrusted\"")
                && l.contains("source=\"wa\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    // The plain-HTTP listener has no client certificate to show: the source refuses there too.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhooks/wa"))
        .body(whatsapp_body(&["wamid.plain".to_string()]))
        .send()
        .await
        .expect("plain");
    assert_eq!(plain.status(), 403);
}

#[actix_web::test]
async fn a_renewed_certificate_is_served_without_a_failed_request_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_ca, new_ca) = (Ca::new("old"), Ca::new("new"));
    let (cert, key) = old_ca.sign(&["localhost"], "localhost");
    let redis = crate::helpers::RedisServer::start();
    let mut settings = test_settings(&redis.url());
    settings.server.tls.listen = Some("127.0.0.1:0".parse().expect("addr"));
    settings.server.tls.cert = write(dir.path(), "server.pem", &cert).into();
    settings.server.tls.key = write(dir.path(), "server.key", &key).into();
    settings.server.tls.reload_interval = Duration::from_millis(100);
    let app = Application::build(settings).await.expect("hookd starts");
    let (port, tls) = (app.port(), app.tls_port().expect("an HTTPS listener"));
    actix_web::rt::spawn(app.run_until_stopped());

    // A client that trusts both keeps sending (one new connection per request) during the swap.
    let both = [old_ca.pem.clone(), new_ca.pem.clone()];
    let load = actix_web::rt::spawn(async move {
        let mut statuses = Vec::new();
        for n in 0..150 {
            let fresh = client(&[&both[0], &both[1]], None);
            statuses.push(post(&fresh, tls, "test", n).await);
        }
        statuses
    });
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let (new_cert, new_key) = new_ca.sign(&["localhost"], "localhost");
    // The key first: between the two writes the pair does not match and is not taken.
    write(dir.path(), "server.key", &new_key);
    write(dir.path(), "server.pem", &new_cert);
    let only_new = client(&[&new_ca.pem], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(&only_new, tls, "test", 1000).await != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "the new certificate is never served"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses = load.await.expect("load");
    assert!(statuses.iter().all(|s| *s == Ok(200)), "{statuses:?}");

    // A broken renewal: logged, and the certificate in service stays.
    write(
        dir.path(),
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    );
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let again = client(&[&new_ca.pem], None);
    assert_eq!(post(&again, tls, "test", 1001).await, Ok(200));
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hookd_tls_certificate_reloads_total{outcome=\"error\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        errors >= 1.0,
        "the broken file was tried and refused: {errors}"
    );
}

#[actix_web::test]
async fn sighup_reloads_the_certificate_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_ca, new_ca) = (Ca::new("old"), Ca::new("new"));
    let (cert, key) = old_ca.sign(&["localhost"], "localhost");
    let cert_path = write(dir.path(), "server.pem", &cert);
    let key_path = write(dir.path(), "server.key", &key);
    let redis = crate::helpers::RedisServer::start();
    let (port, tls) = (free_port(), free_port());
    let mut cmd = HookdProcess::command(&redis.url(), "hup:", port, "hup");
    let child = cmd
        .env("HOOKD_SERVER__TLS__LISTEN", format!("127.0.0.1:{tls}"))
        .env("HOOKD_SERVER__TLS__CERT", &cert_path)
        .env("HOOKD_SERVER__TLS__KEY", &key_path)
        // Only the signal can make it look again within the test.
        .env("HOOKD_SERVER__TLS__RELOAD_INTERVAL", "1h")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hookd starts");
    let hookd = HookdProcess::from_child(child);
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let (new_cert, new_key) = new_ca.sign(&["localhost"], "localhost");
    write(dir.path(), "server.key", &new_key);
    write(dir.path(), "server.pem", &new_cert);
    let only_new = client(&[&new_ca.pem], None);
    assert!(
        post(&only_new, tls, "test", 1).await.is_err(),
        "no reload before the signal"
    );
    hookd.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(&only_new, tls, "test", 2).await != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
