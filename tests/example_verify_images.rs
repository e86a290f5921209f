//! The offline verifyImages example end to end: `scripts/example-verify-images` starts a
//! docker-registry on 127.0.0.1, pushes and signs images with `palisade image`, and runs
//! `palisade apply` with the verify-image-signatures policy; the signed image must pass and be
//! pinned, the unsigned one must fail with Kyverno's message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

#[test]
fn the_example_script_passes_the_signed_image_and_refuses_the_unsigned_one() {
    let out = Command::new("bash")
        .arg("scripts/example-verify-images")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PALISADE", env!("CARGO_BIN_EXE_palisade"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ok: the signed image passed and was pinned; the unsigned image was refused"), "{stdout}");
    // Both image phases count, as in Kyverno's CLI: the verification and the digest check.
    assert!(stdout.contains("pass: 2, fail: 2, warn: 0, error: 0, skip: 0"), "{stdout}");
    assert!(stdout.contains("2 - check-signature missing digest for 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("kyverno.io/verify-images"), "{stdout}");
}
