//! Cost of the language server's work per keystroke on a 1,000-line policy file: diagnostics
//! (the whole checker, run on every change), completion and hover at the end of the file.
//!
//! Run with `cargo bench -p palisade-benches --bench lsp`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_lsp::ls_types::Uri;
use palisade_lsp::text::LineIndex;
use palisade_lsp::{completion, diagnostics, hover};
use std::hint::black_box;

/// A ClusterPolicy of `rules` realistic validate rules (context, match, preconditions,
/// templates, anchors and operators), 25 lines each.
fn policy(rules: usize) -> String {
    let mut text = String::from(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: big\n  annotations:\n    policies.kyverno.io/title: Big\nspec:\n  background: false\n  rules:\n",
    );
    for i in 0..rules {
        text.push_str(&format!(
            "  - name: rule-{i}
    context:
    - name: cfg{i}
      configMap:
        name: settings
        namespace: kyverno
    match:
      any:
      - resources:
          kinds: [Pod, Deployment]
          namespaces: [\"team-*\"]
    preconditions:
      all:
      - key: \"{{{{ request.operation }}}}\"
        operator: AnyIn
        value: [CREATE, UPDATE]
    validate:
      failureAction: Enforce
      message: \"container {{{{ request.object.metadata.name }}}} needs {{{{ to_upper(cfg{i}.data.level) }}}}\"
      pattern:
        spec:
          =(securityContext):
            runAsNonRoot: true
          containers:
          - image: \"!*:latest | registry.example.com/*\"
"
        ));
    }
    text
}

fn bench(c: &mut Criterion) {
    let text = policy(40);
    let lines = text.lines().count();
    assert!((1000..1100).contains(&lines), "{lines} lines");
    let uri: Uri = "file:///big.yaml".parse().unwrap();
    let index = LineIndex::new(&text);
    // Diagnostics are computed on every change; the index is rebuilt then too.
    c.bench_function("lsp/diagnostics_1000_lines", |b| {
        b.iter(|| {
            let index = LineIndex::new(black_box(&text));
            diagnostics::compute(&uri, &text, &index)
        })
    });
    let end = text.rfind("runAsNonRoot").unwrap();
    c.bench_function("lsp/completion_1000_lines", |b| b.iter(|| completion::complete(black_box(&text), &index, end)));
    let template = text.rfind("to_upper").unwrap() + 2;
    c.bench_function("lsp/hover_1000_lines", |b| b.iter(|| hover::hover(black_box(&text), &index, template)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
