//! `rediss://`: hookd journals and splits through a redis-server that speaks only TLS, with a
//! private CA given by `redis.tls_ca_file`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::helpers::{SECRET, TestApp, free_port, test_settings, whatsapp_body};

/// A CA, and a server certificate for 127.0.0.1 it signed, written as PEM files into `dir`.
fn make_certificates(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca");
    std::fs::write(dir.join("server.pem"), server.pem()).expect("write cert");
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).expect("write key");
}

/// redis-server with TLS on a free port and no plain-text port.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(dir: &Path) -> TlsRedis {
        let port = free_port();
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server with TLS did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn hookd_journals_and_splits_through_a_tls_only_redis_trusting_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let redis = TlsRedis::start(dir.path());
    let url = format!("rediss://127.0.0.1:{}", redis.port);

    // Negative control: without the CA, the server's certificate is not trusted.
    let mut untrusting = test_settings(&url);
    untrusting.redis.connect_timeout = Duration::from_millis(500);
    let refused = hookd::startup::Application::build(untrusting).await;
    assert!(
        refused.is_err(),
        "a certificate of an unknown CA was accepted"
    );

    let mut settings = test_settings(&url);
    settings.redis.tls_ca_file = dir.path().join("ca.pem").to_string_lossy().into_owned();
    let app = TestApp::spawn(settings).await;
    let body = whatsapp_body(&["wamid.tls".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    // Polled through the API: the test's own Redis helpers do not speak TLS.
    let stats = app
        .get_until("/api/v1/stats", crate::helpers::ADMIN_KEY, |s| {
            s["events"] == 1
        })
        .await;
    assert_eq!(stats["received"], 1, "{stats}");
    app.stop().await;
}
