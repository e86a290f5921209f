//! End-to-end with a real editor: headless Neovim opens a policy, attaches `palisade lsp` with
//! its built-in LSP client, and the test reads back the diagnostics (and a hover) Neovim
//! received. `scripts/test` installs Debian's `neovim` when it is missing; if it still cannot be
//! found, this test says so loudly and skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lsp_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn nvim_available() -> bool {
    Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn neovim_receives_diagnostics_from_palisade_lsp() {
    if !nvim_available() {
        eprintln!("\n!!!!! SKIPPED neovim_receives_diagnostics_from_palisade_lsp: `nvim` is not installed.");
        eprintln!("!!!!! Run scripts/test (it installs Debian's neovim) or `apt-get install -y neovim`.\n");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = lsp_support::temp_dir("lsp-nvim");
    let policy = dir.join("require-team.yaml");
    std::fs::copy(root.join("tests/lsp/require-team.yaml"), &policy).unwrap();
    let result = dir.join("result.json");
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-u", "NONE", "-i", "NONE", "-n"])
        .arg("-c")
        .arg(format!("luafile {}", root.join("tests/lsp/nvim.lua").display()))
        // Reached only if the script failed before quitting: exit with an error.
        .args(["-c", "cquit 3"])
        .env("PALISADE_BIN", env!("CARGO_BIN_EXE_palisade"))
        .env("POLICY_FILE", &policy)
        .env("RESULT_FILE", &result)
        .env("HOME", &dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nvim");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("headless Neovim did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "nvim exited with {status}: {stderr}");
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(got["attached"], true, "{got}");
    let mut seen: Vec<(u64, String)> = got["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["code"].as_str().unwrap_or("").to_owned()))
        .collect();
    seen.sort();
    // The same findings `palisade check` reports, at the same lines (0-based here).
    let expected: Vec<(u64, String)> =
        [(5, "P0106"), (20, "P0205"), (20, "P0602"), (21, "P0101")].iter().map(|(l, c)| (*l, (*c).to_owned())).collect();
    assert_eq!(seen, expected, "{got}");
    let message = got["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "P0101").unwrap()["message"].clone();
    assert_eq!(message, "unknown field `patern` in `spec.rules[0].validate`");
    assert!(got["hover"].as_str().unwrap_or("").contains("**background**: boolean"), "{got}");
}
