//! End-to-end tests of `palisade serve`: the real binary, real HTTPS (rustls on both sides),
//! real AdmissionReviews.
//!
//! `tests/data/webhook/nginx-deployment.json` is the output of
//! `kubectl create deploy nginx --image=nginx --dry-run=client -o json` (kubectl v1.x, generated
//! once); the tests wrap it in an AdmissionReview as the API server would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support {
    pub mod server;
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::server::Server;

const PALISADE: &str = env!("CARGO_BIN_EXE_palisade");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    repo().join("examples/policies").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-webhook-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn nginx() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("tests/data/webhook/nginx-deployment.json")).unwrap()).unwrap()
}

/// Wraps an object in an AdmissionReview as the API server sends it (namespace filled in).
fn review(uid: &str, operation: &str, object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!("default");
    let (obj, old) = if operation == "DELETE" { (Value::Null, object.clone()) } else { (object.clone(), Value::Null) };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": false,
        }
    })
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let resp = client.post(url).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json_value().await
}

trait JsonBody {
    async fn json_value(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

fn labelled(image: &str) -> Value {
    let mut d = nginx();
    d["spec"]["template"]["metadata"]["labels"]["team"] = json!("payments");
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    d
}

fn example_policies() -> Vec<String> {
    ["require-team-label.yaml", "restrict-image-registries.yaml"].iter().map(|p| example(p).display().to_string()).collect()
}

#[test]
fn the_seed_story_over_https() {
    let dir = scratch("seed");
    let policies = example_policies();
    let mut args = vec!["--policies"];
    args.extend(policies.iter().map(String::as_str));
    let server = Server::start(&dir, &args);
    runtime().block_on(async {
        let client = server.client();
        let url = server.url("/validate/fail");

        // `kubectl create deploy nginx --image=nginx`: no team label, image from Docker Hub.
        let resp = client.post(&url).header("content-type", "application/json").body(review("7f3c-1", "CREATE", &nginx()).to_string()).send().await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN picks HTTP/2");
        let out = resp.json_value().await;
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(out["kind"], "AdmissionReview");
        assert_eq!(out["response"]["uid"], "7f3c-1");
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(out["response"]["status"]["status"], "Failure");
        assert_eq!(
            out["response"]["status"]["message"],
            "\n\nresource Deployment/default/nginx was blocked due to the following policies \n\n\
             require-team-label:\n  autogen-check-team: 'validation error: The label `team` is required. rule autogen-check-team\n    failed at path /spec/template/metadata/labels/team/'\n\
             restrict-image-registries:\n  autogen-approved-registry: 'validation error: Images must come from the approved\n    registry registry.acme.io. rule autogen-approved-registry failed at path /spec/template/spec/containers/0/image/'\n"
        );

        // Labelled, from the approved registry: allowed, nothing else said.
        let out = post(&client, &url, &review("7f3c-2", "CREATE", &labelled("registry.acme.io/nginx:1.27"))).await;
        assert_eq!(out["response"], json!({"uid": "7f3c-2", "allowed": true}));

        // Labelled, but from an unapproved registry: denied by the registry policy alone.
        let out = post(&client, &url, &review("7f3c-3", "CREATE", &labelled("docker.io/library/nginx:1.27"))).await;
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(
            out["response"]["status"]["message"],
            "\n\nresource Deployment/default/nginx was blocked due to the following policies \n\n\
             restrict-image-registries:\n  autogen-approved-registry: 'validation error: Images must come from the approved\n    registry registry.acme.io. rule autogen-approved-registry failed at path /spec/template/spec/containers/0/image/'\n"
        );

        // DELETE is judged on oldObject, dry-run requests are answered the same way.
        let out = post(&client, &url, &review("7f3c-4", "DELETE", &labelled("docker.io/nginx"))).await;
        assert_eq!(out["response"]["allowed"], false, "{out}");
        assert!(out["response"]["status"]["message"].as_str().unwrap().contains("resource Deployment/default/nginx was blocked"));
        let mut dry = review("7f3c-5", "CREATE", &nginx());
        dry["request"]["dryRun"] = json!(true);
        let out = post(&client, &url, &dry).await;
        assert_eq!(out["response"]["uid"], "7f3c-5");
        assert_eq!(out["response"]["allowed"], false);

        // The policies fail closed, so the ignore webhook has nothing to run and allows.
        let out = post(&client, &server.url("/validate/ignore"), &review("7f3c-6", "CREATE", &nginx())).await;
        assert_eq!(out["response"], json!({"uid": "7f3c-6", "allowed": true}));
        // No mutate rules: allowed, no patch.
        let out = post(&client, &server.url("/mutate/fail"), &review("7f3c-7", "CREATE", &nginx())).await;
        assert_eq!(out["response"], json!({"uid": "7f3c-7", "allowed": true}));

        // HTTP/1.1 with keep-alive works too.
        let h1 = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&server.ca).unwrap()).unwrap()])
            .http1_only()
            .build()
            .unwrap();
        for i in 0..3 {
            let resp = h1.post(&url).header("content-type", "application/json").body(review(&format!("h1-{i}"), "CREATE", &nginx()).to_string()).send().await.unwrap();
            assert_eq!(resp.version(), reqwest::Version::HTTP_11);
            assert_eq!(resp.json_value().await["response"]["allowed"], false);
        }

        let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for needle in [
            "palisade_admission_requests_total{endpoint=\"/validate/fail\",outcome=\"denied\"} 7",
            "palisade_admission_requests_total{endpoint=\"/validate/fail\",outcome=\"allowed\"} 1",
            "palisade_rule_results_total{policy=\"require-team-label\",rule=\"autogen-check-team\",status=\"fail\"}",
            "palisade_admission_request_duration_seconds_count{endpoint=\"/validate/fail\"} 8",
            "palisade_bundle_info{digest=\"",
        ] {
            assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
        }
        assert_eq!(client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(client.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    });
}

#[test]
fn mutations_come_back_as_a_base64_json_patch() {
    let dir = scratch("mutate");
    let policy = repo().join("tests/data/webhook/add-default-team.yaml");
    let server = Server::start(&dir, &["--policies", policy.to_str().unwrap()]);
    runtime().block_on(async {
        let client = server.client();
        let url = server.url("/mutate/fail");
        let out = post(&client, &url, &review("m-1", "CREATE", &nginx())).await;
        let resp = &out["response"];
        assert_eq!(resp["uid"], "m-1");
        assert_eq!(resp["allowed"], true);
        assert_eq!(resp["patchType"], "JSONPatch");
        let patch = decode_base64(resp["patch"].as_str().unwrap());
        let ops: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(ops, json!([{"op": "add", "path": "/metadata/labels/team", "value": "platform"}]));

        // Already labelled: nothing to patch.
        let mut d = nginx();
        d["metadata"]["labels"]["team"] = json!("payments");
        let out = post(&client, &url, &review("m-2", "CREATE", &d)).await;
        assert_eq!(out["response"], json!({"uid": "m-2", "allowed": true}));
        // Validate endpoints do not run mutate rules.
        let out = post(&client, &server.url("/validate/fail"), &review("m-3", "CREATE", &nginx())).await;
        assert_eq!(out["response"], json!({"uid": "m-3", "allowed": true}));
    });
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn hostile_requests_are_refused_and_the_server_keeps_serving() {
    let dir = scratch("hostile");
    let policies = example_policies();
    // One worker (the current-thread runtime): a slow client must not hold up the others.
    let mut args = vec!["--read-timeout-ms", "700", "--workers", "1", "--policies"];
    args.extend(policies.iter().map(String::as_str));
    let server = Server::start(&dir, &args);
    runtime().block_on(async {
        let client = server.client();
        let url = server.url("/validate/fail");
        let send = |body: Vec<u8>| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let r = client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(4 << 20)).into_bytes();
        let (status, text) = send(huge).await;
        assert_eq!(status, 413, "{text}");
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes();
        let (status, text) = send(deep).await;
        assert_eq!(status, 400);
        assert!(text.contains("not valid JSON"), "{text}");
        let (status, text) = send(b"{\"apiVersion\": ".to_vec()).await;
        assert_eq!(status, 400, "{text}");
        let wrong = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}});
        let (status, text) = send(wrong.to_string().into_bytes()).await;
        assert_eq!((status, text.trim()), (400, "expected an admission.k8s.io/v1 AdmissionReview, got apiVersion \"admission.k8s.io/v1beta1\" kind \"AdmissionReview\""));
        let (status, text) = send(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string().into_bytes()).await;
        assert_eq!((status, text.trim()), (400, "the AdmissionReview has no request object"));
        let r = client.post(&url).header("content-type", "text/yaml").body("a: b").send().await.unwrap();
        assert_eq!(r.status(), 415);
        assert_eq!(client.get(&url).send().await.unwrap().status(), 405);
        assert_eq!(client.post(server.url("/nope")).body("{}").send().await.unwrap().status(), 404);

        // A slow client: headers, then a body that never comes.
        let started = Instant::now();
        let reply = slow_client(&server).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Still serving.
        let out = post(&client, &url, &review("after", "CREATE", &nginx())).await;
        assert_eq!(out["response"]["allowed"], false);
        let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("palisade_bad_requests_total 7"), "{metrics}");
    });
}

/// Sends headers announcing a body and then stalls, over a raw rustls connection.
async fn slow_client(server: &Server) -> String {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(&server.ca).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"POST /validate/fail HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{\"api")
        .await
        .unwrap();
    let mut buf = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn hot_reload_swaps_bundles_and_survives_a_broken_one() {
    let dir = scratch("reload");
    let bundle = dir.join("policies.plb");
    let compile = |policies: &[&str]| {
        let tmp = dir.join("next.plb");
        let out = Command::new(PALISADE)
            .arg("compile")
            .args(policies.iter().map(|p| example(p)))
            .arg("-o")
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Rename so the server never sees a half-written file.
        std::fs::rename(&tmp, &bundle).unwrap();
    };
    compile(&["require-team-label.yaml"]);
    // One worker: the current-thread runtime reloads as the multi-threaded one does.
    let server = Server::start(&dir, &["--bundle", bundle.to_str().unwrap(), "--watch-interval-ms", "100", "--workers", "1"]);
    runtime().block_on(async {
        let client = server.client();
        let url = server.url("/validate/fail");
        let req = review("r", "CREATE", &labelled("docker.io/nginx"));
        assert_eq!(post(&client, &url, &req).await["response"]["allowed"], true);

        compile(&["require-team-label.yaml", "restrict-image-registries.yaml"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while post(&client, &url, &req).await["response"]["allowed"] == true {
            assert!(Instant::now() < deadline, "the new bundle was not picked up:\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A corrupted bundle is refused; the last good one keeps serving.
        let mut bytes = std::fs::read(&bundle).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(dir.join("bad.plb"), &bytes).unwrap();
        std::fs::rename(dir.join("bad.plb"), &bundle).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.logs().contains("digest mismatch") {
            assert!(Instant::now() < deadline, "the broken bundle was not noticed:\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(post(&client, &url, &req).await["response"]["allowed"], false);
        assert_eq!(client.get(server.url("/readyz")).send().await.unwrap().status(), 200);
        let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("palisade_bundle_reloads_total{result=\"failed\"} 1"), "{metrics}");
    });
}

#[test]
fn self_managed_certificates_rotate_before_expiry() {
    let dir = scratch("rotate");
    let policy = example("require-team-label.yaml");
    let server = Server::start(
        &dir,
        &["--cert-validity-secs", "4", "--cert-renew-before-secs", "3", "--policies", policy.to_str().unwrap()],
    );
    runtime().block_on(async {
        let peer = || async {
            // A new client per call: a fresh TLS handshake shows the certificate served now.
            let resp = server.client().get(server.url("/healthz")).send().await.unwrap();
            let info = resp.extensions().get::<reqwest::tls::TlsInfo>().cloned().unwrap();
            info.peer_certificate().unwrap().to_vec()
        };
        let first = peer().await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if peer().await != first {
                break;
            }
            assert!(Instant::now() < deadline, "the serving certificate was not rotated:\n{}", server.logs());
        }
        assert!(server.logs().contains("serving certificate renewed"));
    });
}

#[test]
fn webhook_config_lists_the_kinds_after_autogen() {
    let dir = scratch("config");
    let bundle = dir.join("b.plb");
    let out = Command::new(PALISADE)
        .arg("compile")
        .args(example_policies())
        .arg(repo().join("tests/data/webhook/add-default-team.yaml"))
        .arg("-o")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join("ca.crt"), "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").unwrap();
    let out = Command::new(PALISADE)
        .args(["webhook-config", "--bundle"])
        .arg(&bundle)
        .arg("--ca-bundle")
        .arg(dir.join("ca.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::to_value(serde_yaml_value(&String::from_utf8(out.stdout).unwrap())).unwrap();
    let validating = &list["items"][0];
    assert_eq!(validating["kind"], "ValidatingWebhookConfiguration");
    let hook = &validating["webhooks"][0];
    assert_eq!(hook["name"], "validate.palisade.svc-fail");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/validate/fail");
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["timeoutSeconds"], 10);
    let apps = hook["rules"].as_array().unwrap().iter().find(|r| r["apiGroups"][0] == "apps").unwrap();
    assert_eq!(apps["resources"], json!(["daemonsets", "deployments", "replicasets", "statefulsets"]));
    let core = hook["rules"].as_array().unwrap().iter().find(|r| r["apiGroups"][0] == "").unwrap();
    assert_eq!(core["resources"], json!(["pods", "replicationcontrollers"]));
    assert!(hook["clientConfig"]["caBundle"].as_str().unwrap().starts_with("LS0tLS1CRUdJTi"));
    let mutating = &list["items"][1];
    assert_eq!(mutating["webhooks"][0]["name"], "mutate.palisade.svc-fail");
    assert_eq!(mutating["webhooks"][0]["rules"][0]["resources"], json!(["deployments"]));
    assert_eq!(mutating["webhooks"][0]["reinvocationPolicy"], "IfNeeded");
}

/// The YAML printed by `webhook-config`, read back (it is plain block YAML of maps, lists and
/// scalars, which JSON-compatible YAML readers accept; the test parses it with the same loader
/// the CLI uses for resources).
fn serde_yaml_value(text: &str) -> Value {
    let dir = scratch("yaml");
    let p = dir.join("c.yaml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(PALISADE).args(["jp", "query", "-i"]).arg(&p).arg("@").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cel_policies_are_served_on_the_cel_endpoints() {
    let dir = scratch("cel");
    let policies = repo().join("tests/data/webhook/cel-policies.yaml");
    let server = Server::start(&dir, &["--policies", policies.to_str().unwrap()]);
    runtime().block_on(async {
        let client = server.client();
        // No team label, image by tag: denied by the Deny policy, warned by the Warn policy.
        let out = post(&client, &server.url("/vpol/fail"), &review("c-1", "CREATE", &nginx())).await;
        assert_eq!(
            out["response"],
            json!({"uid": "c-1", "allowed": false,
                   "status": {"status": "Failure", "message": "Policy require-team-label failed: The label `team` is required on the Pod template."},
                   "warnings": ["Policy prefer-pinned-images failed: images should be pinned by digest: nginx"]})
        );
        // Labelled: allowed, still warned; Kyverno's `/policies/...` form of the path works too.
        let out = post(&client, &server.url("/policies/vpol/validate/fail"), &review("c-2", "CREATE", &labelled("nginx:1.27"))).await;
        assert_eq!(
            out["response"],
            json!({"uid": "c-2", "allowed": true, "warnings": ["Policy prefer-pinned-images failed: images should be pinned by digest: nginx:1.27"]})
        );
        // The policies fail closed, so the ignore endpoint has nothing to run.
        let out = post(&client, &server.url("/vpol/ignore"), &review("c-3", "CREATE", &nginx())).await;
        assert_eq!(out["response"], json!({"uid": "c-3", "allowed": true}));
        // The MutatingPolicy answers on the mutating CEL endpoint with a JSON patch.
        let out = post(&client, &server.url("/mpol/fail"), &review("c-4", "CREATE", &nginx())).await;
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        let ops: Value = serde_json::from_slice(&decode_base64(out["response"]["patch"].as_str().unwrap())).unwrap();
        assert_eq!(ops, json!([{"op": "add", "path": "/metadata/labels/team", "value": "platform"}]));
        // Already labelled: the match condition leaves it alone.
        let mut d = nginx();
        d["metadata"]["labels"]["team"] = json!("payments");
        let out = post(&client, &server.url("/mpol/fail"), &review("c-5", "CREATE", &d)).await;
        assert_eq!(out["response"], json!({"uid": "c-5", "allowed": true}));
        // The kyverno.io endpoints do not run CEL policies.
        let out = post(&client, &server.url("/validate/fail"), &review("c-6", "CREATE", &nginx())).await;
        assert_eq!(out["response"], json!({"uid": "c-6", "allowed": true}));
    });
}

#[test]
fn webhook_config_routes_cel_policies_to_the_server() {
    // `webhook-config --policies` compiles like `serve --policies`; the CEL webhooks' paths name
    // their policies, and the server answers on exactly those paths.
    let policies = repo().join("tests/data/webhook/cel-policies.yaml");
    let out = Command::new(PALISADE).args(["webhook-config", "--policies"]).arg(&policies).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = serde_yaml_value(&String::from_utf8(out.stdout).unwrap());
    let find = |config: usize, name: &str| -> Value {
        list["items"][config]["webhooks"].as_array().unwrap().iter().find(|h| h["name"] == name).cloned().unwrap_or_else(|| panic!("no {name} in {list}"))
    };
    let vpol = find(0, "vpol.validate.palisade.svc-fail");
    assert_eq!(vpol["clientConfig"]["service"]["path"], "/vpol/fail/prefer-pinned-images/require-team-label");
    assert_eq!(vpol["rules"], json!([{"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "operations": ["CREATE", "UPDATE"], "scope": "*"}]));
    let mpol = find(1, "mpol.mutate.palisade.svc-fail-finegrained-default-team");
    assert_eq!(mpol["clientConfig"]["service"]["path"], "/mpol/fail/default-team");
    assert!(mpol["matchConditions"].as_array().is_some_and(|c| !c.is_empty()), "{mpol}");

    let dir = scratch("cel-routes");
    let server = Server::start(&dir, &["--policies", policies.to_str().unwrap()]);
    runtime().block_on(async {
        let client = server.client();
        let vpol_path = vpol["clientConfig"]["service"]["path"].as_str().unwrap();
        let out = post(&client, &server.url(vpol_path), &review("r-1", "CREATE", &nginx())).await;
        assert_eq!(out["response"]["allowed"], false, "{out}");
        // A path naming only the Warn policy runs only that one.
        let out = post(&client, &server.url("/vpol/fail/prefer-pinned-images"), &review("r-2", "CREATE", &nginx())).await;
        assert_eq!(
            out["response"],
            json!({"uid": "r-2", "allowed": true, "warnings": ["Policy prefer-pinned-images failed: images should be pinned by digest: nginx"]})
        );
        let mpol_path = mpol["clientConfig"]["service"]["path"].as_str().unwrap();
        let out = post(&client, &server.url(mpol_path), &review("r-3", "CREATE", &nginx())).await;
        assert_eq!(out["response"]["patchType"], "JSONPatch", "{out}");
    });
}
