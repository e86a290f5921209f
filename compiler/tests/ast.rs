//! The typed AST built from policy text, summarised as text with line:column positions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use expect_test::{Expect, expect};
use palisade_compiler::ast::kyverno::{ContextSource, RuleBody};
use palisade_compiler::ast::{self, Policy, Str};
use palisade_compiler::source::{SourceMap, Span};
use palisade_compiler::syntax;

fn summarise(text: &str, expect: Expect) {
    let mut sources = SourceMap::new();
    let file = sources.add("p.yaml", text);
    let (docs, diags) = syntax::parse(file, text);
    assert!(diags.is_empty(), "{diags:?}");
    let at = |span: Span| {
        let (s, _) = sources.resolve(span).unwrap();
        format!("{}:{}", s.line, s.column)
    };
    let s = |v: &Option<Str>| {
        v.as_ref()
            .map_or("-".to_owned(), |s| format!("{}@{}", s.text, at(s.span)))
    };
    let mut out = String::new();
    for doc in &docs {
        let Some(policy) = ast::build(doc) else {
            out.push_str("not a policy\n");
            continue;
        };
        let h = policy.header();
        out.push_str(&format!(
            "{:?} {} name={}\n",
            h.kind,
            h.api_version.text,
            s(&h.name)
        ));
        match &policy {
            Policy::Kyverno(p) => {
                out.push_str(&format!(
                    "  background={} action={}\n",
                    p.spec.background(),
                    s(&p.spec.validation_failure_action)
                ));
                for rule in &p.spec.rules {
                    out.push_str(&format!("  rule {}\n", s(&rule.name)));
                    if let Some(m) = &rule.match_ {
                        for f in m.filters() {
                            let kinds: Vec<String> = f
                                .resources
                                .iter()
                                .flat_map(|r| &r.kinds)
                                .map(|k| k.text.clone())
                                .collect();
                            out.push_str(&format!("    match kinds={kinds:?}\n"));
                        }
                    }
                    for c in &rule.context {
                        let source = match &c.source {
                            ContextSource::ConfigMap { name, .. } => {
                                format!("configMap {}", s(name))
                            }
                            ContextSource::ApiCall {
                                url_path,
                                jmes_path,
                                ..
                            } => {
                                format!("apiCall {} {}", s(url_path), s(jmes_path))
                            }
                            ContextSource::Variable { jmes_path, .. } => {
                                format!("variable {}", s(jmes_path))
                            }
                            other => format!("{other:?}"),
                        };
                        out.push_str(&format!("    context {} = {source}\n", s(&c.name)));
                    }
                    for cond in rule.preconditions.iter().flat_map(|c| c.iter()) {
                        out.push_str(&format!("    precondition {}\n", s(&cond.operator)));
                    }
                    for body in &rule.bodies {
                        match body {
                            RuleBody::Validate(v) => {
                                out.push_str(&format!("    validate message={}\n", s(&v.message)));
                                for f in &v.foreach {
                                    out.push_str(&format!("      foreach list={}\n", s(&f.list)));
                                    for inner in &f.foreach {
                                        out.push_str(&format!(
                                            "        foreach list={}\n",
                                            s(&inner.list)
                                        ));
                                    }
                                }
                            }
                            RuleBody::Mutate(m) => out.push_str(&format!(
                                "    mutate psm={} json6902={}\n",
                                m.patch_strategic_merge.is_some(),
                                s(&m.patches_json6902)
                            )),
                            RuleBody::Generate(g) => out.push_str(&format!(
                                "    generate {} {} sync={:?}\n",
                                s(&g.kind),
                                s(&g.name),
                                g.synchronize.map(|b| b.value)
                            )),
                            RuleBody::VerifyImages(v) => {
                                for iv in v {
                                    let refs: Vec<&str> =
                                        iv.image_references.iter().map(Str::as_str).collect();
                                    out.push_str(&format!(
                                        "    verifyImages {refs:?} attestors={} mutateDigest={:?}\n",
                                        iv.attestors.len(),
                                        iv.mutate_digest.map(|b| b.value)
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            Policy::Cel(c) => {
                for v in &c.validations {
                    out.push_str(&format!("  validation {}\n", s(&v.expression)));
                }
            }
            other => out.push_str(&format!("  {:?}\n", other.header().kind)),
        }
    }
    expect.assert_eq(&out);
}

#[test]
fn cluster_policy_with_every_rule_type() {
    summarise(
        r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: everything
spec:
  validationFailureAction: Enforce
  background: false
  rules:
    - name: containers
      match:
        any:
          - resources:
              kinds: [Pod]
      context:
        - name: cm
          configMap: {name: settings, namespace: default}
        - name: count
          apiCall:
            urlPath: /api/v1/pods
            jmesPath: "items | length(@)"
      preconditions:
        all:
          - key: "{{ request.operation }}"
            operator: AnyIn
            value: [CREATE]
      validate:
        message: no latest
        foreach:
          - list: request.object.spec.containers
            foreach:
              - list: element.ports
                deny:
                  conditions:
                    any:
                      - key: "{{ element.containerPort }}"
                        operator: Equals
                        value: 22
    - name: label
      match:
        resources:
          kinds: [Deployment]
      mutate:
        patchesJson6902: |-
          - op: add
            path: /metadata/labels/a
            value: b
    - name: quota
      match:
        all:
          - resources:
              kinds: [Namespace]
      generate:
        apiVersion: v1
        kind: ResourceQuota
        name: default
        synchronize: true
        data: {spec: {hard: {pods: "10"}}}
    - name: images
      match:
        any:
          - resources:
              kinds: [Pod]
      verifyImages:
        - imageReferences: ["ghcr.io/*"]
          mutateDigest: false
          attestors:
            - entries:
                - keys: {publicKeys: "k8s://ns/key"}
---
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: cel
spec:
  validations:
    - expression: "object.spec.replicas <= 5"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-a-policy
"#,
        expect![[r#"
            ClusterPolicy kyverno.io/v1 name=everything@4:9
              background=false action=Enforce@6:28
              rule containers@9:13
                match kinds=["Pod"]
                context cm@15:17 = configMap settings@16:29
                context count@17:17 = apiCall /api/v1/pods@19:22 items | length(@)@20:23
                precondition AnyIn@24:23
                validate message=no latest@27:18
                  foreach list=request.object.spec.containers@29:19
                    foreach list=element.ports@31:23
              rule label@38:13
                match kinds=["Deployment"]
                mutate psm=false json6902=- op: add
              path: /metadata/labels/a
              value: b@44:11
              rule quota@47:13
                match kinds=["Namespace"]
                generate ResourceQuota@54:15 default@55:15 sync=Some(true)
              rule images@58:13
                match kinds=["Pod"]
                verifyImages ["ghcr.io/*"] attestors=1 mutateDigest=Some(false)
            Cel(Validating { namespaced: false }) policies.kyverno.io/v1 name=cel@73:9
              validation object.spec.replicas <= 5@76:19
            not a policy
        "#]],
    );
}
