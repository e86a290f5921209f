//! A running `palisade serve` for the end-to-end tests: started on a loopback port with a
//! self-managed certificate, its structured log collected, stopped (by its own pid) when dropped.
//! Each test binary uses the parts it needs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub addr: String,
    /// The self-managed CA certificate clients trust.
    pub ca: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `palisade serve ARGS` in `dir`, with its certificates under `dir/certs` and no
    /// Docker configuration of the machine's user, and waits until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let certs = dir.join("certs");
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0", "--self-managed-certs"])
            .arg(&certs)
            .env("DOCKER_CONFIG", dir.join("no-docker-config"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before announcing the address, so the log is complete when `start` returns.
                sink.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["msg"] == "listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Server { child, addr, ca: certs.join("ca.crt"), log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// An HTTPS client that trusts the server's CA only.
    pub fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        reqwest::Client::builder().tls_certs_only([ca]).tls_info(true).build().unwrap()
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
