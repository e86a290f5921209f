//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry),
//! started on a free 127.0.0.1 port with a temporary config and storage, stopped on drop.
//! `scripts/test` installs the package when it is missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    dir: PathBuf,
    pub addr: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

/// A loopback address where nothing listens, for "registry down" cases.
pub fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    #[allow(dead_code)]
    /// A registry that requires HTTP basic authentication; `htpasswd` is the file's text
    /// (bcrypt entries, as `htpasswd -B` writes them).
    pub fn start_with_auth(htpasswd: &str) -> Registry {
        Registry::start_with(Some(htpasswd))
    }

    /// The registry's storage folder (blobs under `docker/registry/v2/blobs`), for tests that
    /// tamper with stored content.
    #[allow(dead_code)]
    pub fn storage(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start_with(htpasswd: Option<&str>) -> Registry {
        let binary = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap_or_else(|| {
            panic!("docker-registry is not installed; scripts/test installs it (apt-get install -y docker-registry)")
        });
        let dir = std::env::temp_dir().join(format!("palisade-registry-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let auth = match htpasswd {
            Some(text) => {
                std::fs::write(dir.join("htpasswd"), text).unwrap();
                format!("auth:\n  htpasswd:\n    realm: palisade-test\n    path: {}\n", dir.join("htpasswd").display())
            }
            None => String::new(),
        };
        // A few attempts: another process may take the port between probing and binding.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.join("data").display()
            );
            let config_path = dir.join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let mut child = Command::new(binary)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if answers(&addr) {
                    return Registry { child, dir, addr };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start on 127.0.0.1");
    }

    /// Stops the registry now (for "registry down" cases).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
