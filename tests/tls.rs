//! TLS served directly from PEM files, and SIGHUP swapping the certificate without dropping a
//! connection in progress (the real binary, signalled with `kill -HUP`).

use std::path::Path;
use std::time::Duration;

use crate::support::child::serve;
use crate::support::server::TOKEN;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

fn der(pem_file: &str) -> Vec<u8> {
    let pem = std::fs::read(fixture(pem_file)).expect("read pem");
    let first = rustls_pemfile::certs(&mut pem.as_slice()).next().expect("a cert").expect("pem");
    first.to_vec()
}

fn client() -> reqwest::Client {
    let mut b = reqwest::Client::builder().use_rustls_tls().tls_info(true).pool_max_idle_per_host(1);
    for c in ["cert-a.pem", "cert-b.pem"] {
        let pem = std::fs::read(fixture(c)).expect("read");
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("cert"));
    }
    b.build().expect("client")
}

async fn served_cert(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = client.get(url).bearer_auth(TOKEN).send().await.expect("https request");
    assert_eq!(r.status(), 200);
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().cloned().expect("tls info");
    let cert = info.peer_certificate().expect("peer certificate").to_vec();
    let _ = r.bytes().await;
    cert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_from_pem_files_and_sighup_swaps_the_certificate_without_dropping_connections() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::copy(fixture("cert-a.pem"), &cert).expect("copy");
    std::fs::copy(fixture("key-a.pem"), &key).expect("copy");
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(&cfg, format!("[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", cert.display(), key.display()))
        .expect("config");
    let served = serve(&tmp.path().join("data"), Some(&cfg), &[]).await;
    let url = served.base.replacen("http://", "https://", 1).replacen("127.0.0.1", "localhost", 1) + "/Users";

    let kept = client();
    assert_eq!(served_cert(&kept, &url).await, der("cert-a.pem"));
    let r = reqwest::Client::new().get(url.replacen("https://", "http://", 1)).bearer_auth(TOKEN).send().await;
    assert!(r.is_err() || r.is_ok_and(|r| r.status() != 200), "plain HTTP is not served on a TLS listener");

    // Rotate the files, then SIGHUP.
    std::fs::copy(fixture("cert-b.pem"), &cert).expect("copy");
    std::fs::copy(fixture("key-b.pem"), &key).expect("copy");
    let pid = served.child.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    let fresh_cert = {
        let mut got = Vec::new();
        for _ in 0..100 {
            got = served_cert(&client(), &url).await;
            if got == der("cert-b.pem") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        got
    };
    assert_eq!(fresh_cert, der("cert-b.pem"), "new connections get the new certificate");
    // The connection opened before the reload is still alive and still on the old certificate.
    assert_eq!(served_cert(&kept, &url).await, der("cert-a.pem"));

    // A broken reload keeps serving the last good certificate.
    std::fs::write(&key, "not a key").expect("write");
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(served_cert(&client(), &url).await, der("cert-b.pem"));
}

#[test]
fn check_config_refuses_unreadable_or_mismatched_tls_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            fixture("cert-a.pem").display(),
            fixture("key-b.pem").display()
        ),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(["check-config", "--config", cfg.to_str().expect("utf8")])
        .env_remove("SCIMBRIDGE_CONFIG")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.cert_file"), "{err}");
}
