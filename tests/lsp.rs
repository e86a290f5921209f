//! End-to-end tests of `palisade lsp`: a client speaks LSP over stdio to the real binary.
//! Fixtures are in `tests/lsp/`; positions are found by searching the fixture text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lsp_support;

use lsp_support::{Client, file_uri, pos, temp_dir};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn codes(diags: &[Value]) -> Vec<String> {
    let mut c: Vec<String> = diags.iter().map(|d| d["code"].as_str().unwrap_or("").to_owned()).collect();
    c.sort();
    c
}

fn at(uri: &str, p: Value) -> Value {
    json!({"textDocument": {"uri": uri}, "position": p})
}

fn hover_text(result: &Value) -> String {
    result["contents"]["value"].as_str().unwrap_or_default().to_owned()
}

fn labels(result: &Value) -> Vec<String> {
    let items = result.as_array().or_else(|| result["items"].as_array()).cloned().unwrap_or_default();
    items.iter().map(|i| i["label"].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn session_on_a_policy() {
    let dir = temp_dir("lsp-session");
    let text = fixture("require-team.yaml");
    let path = dir.join("require-team.yaml");
    std::fs::write(&path, &text).unwrap();
    let uri = file_uri(&path);
    let mut c = Client::start();
    let init = c.initialize(&dir);
    let caps = &init["capabilities"];
    for cap in ["hoverProvider", "completionProvider", "definitionProvider", "referencesProvider", "codeActionProvider", "documentSymbolProvider", "codeLensProvider"] {
        assert!(!caps[cap].is_null(), "missing capability {cap}: {caps}");
    }

    // Diagnostics on open: the checker's, with codes, notes and fixes as related information.
    c.open(&uri, &text);
    let diags = c.diagnostics(&uri, 1);
    assert_eq!(codes(&diags), ["P0101", "P0106", "P0205", "P0602"]);
    let unknown = diags.iter().find(|d| d["code"] == "P0101").unwrap();
    assert_eq!(unknown["range"]["start"], pos(&text, "patern", 0));
    assert_eq!(unknown["severity"], 1);
    let related = unknown["relatedInformation"].to_string();
    assert!(related.contains("did you mean `pattern`?"), "{related}");

    // Quick fixes: did-you-mean for the field and the function, and the deprecated field moved.
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": pos(&text, "patern", 1), "end": pos(&text, "patern", 1)}, "context": {"diagnostics": []}}),
    );
    let fix = &actions[0];
    assert_eq!(fix["title"], "did you mean `pattern`?");
    assert_eq!(fix["edit"]["changes"][&uri][0]["newText"], "pattern");
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": pos(&text, "to_uper", 2), "end": pos(&text, "to_uper", 2)}, "context": {"diagnostics": []}}),
    );
    assert_eq!(actions[0]["edit"]["changes"][&uri][0]["newText"], "to_upper");
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": pos(&text, "validationFailureAction", 3), "end": pos(&text, "validationFailureAction", 3)}, "context": {"diagnostics": []}}),
    );
    let moved = actions.as_array().unwrap().iter().find(|a| a["title"].as_str().unwrap_or("").starts_with("move")).expect("move action");
    let edits = moved["edit"]["changes"][&uri].to_string();
    assert!(edits.contains("      failureAction: Enforce\\n"), "{edits}");

    // Hover: field docs, variables, anchors, pattern operators, kinds.
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "background", 2)));
    assert!(hover_text(&h).contains("**background**: boolean"), "{h}");
    assert!(hover_text(&h).contains("background scans"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "object.metadata", 2)));
    assert!(hover_text(&h).contains("**request.object**: object"), "{h}");
    // Under the misspelt `patern` the anchor is plain data: no anchor documentation yet.
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "=(team)", 1)));
    assert!(!hover_text(&h).contains("Equality anchor"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "ClusterPolicy", 2)));
    assert!(hover_text(&h).contains("cluster-wide"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "teams.data", 1)));
    assert!(hover_text(&h).contains("context variable"), "{h}");

    // Definition and references of a context variable.
    let d = c.request("textDocument/definition", at(&uri, pos(&text, "teams.data", 1)));
    assert_eq!(d[0]["range"]["start"], pos(&text, "teams\n", 0));
    let r = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": pos(&text, "teams\n", 1), "context": {"includeDeclaration": true}}),
    );
    assert_eq!(r.as_array().map(Vec::len), Some(2), "{r}");

    // The outline: the policy and its rule.
    let s = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    assert_eq!(s[0]["name"], "require-team");
    assert_eq!(s[0]["detail"], "ClusterPolicy");
    assert_eq!(s[0]["children"][0]["name"], "check-team");
    assert_eq!(s[0]["children"][0]["children"][0]["name"], "teams");

    // An incremental change fixes two errors; diagnostics follow the new version.
    let changes = json!([
        {"range": {"start": pos(&text, "to_uper", 0), "end": pos(&text, "to_uper", 7)}, "text": "to_upper"},
        {"range": {"start": pos(&text, "patern", 0), "end": pos(&text, "patern", 6)}, "text": "pattern"},
    ]);
    // The second range is computed on the original text; it is on a later line than the first
    // edit, whose length changes only its own line, so it still points at `patern`.
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes}));
    let diags = c.diagnostics(&uri, 2);
    assert_eq!(codes(&diags), ["P0106"]);
    let fixed = text.replace("to_uper", "to_upper").replace("patern", "pattern");
    let h = c.request("textDocument/hover", at(&uri, pos(&fixed, "=(team)", 1)));
    assert!(hover_text(&h).contains("Equality anchor"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&fixed, "\"?*\"", 1)));
    assert!(hover_text(&h).contains("non-empty value"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&fixed, "to_upper", 2)));
    assert!(hover_text(&h).contains("to_upper(") && hover_text(&h).contains("Example"), "{h}");

    // Completion inside a template after `request.`.
    let typed = fixed.replace("{{ teams.data.allowed }}", "{{ request. }}");
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": typed}]}));
    let items = c.request("textDocument/completion", at(&uri, pos(&typed, "request. }}", 8)));
    let l = labels(&items);
    for expected in ["object", "oldObject", "operation", "userInfo", "namespace"] {
        assert!(l.contains(&expected.to_owned()), "{expected} missing from {l:?}");
    }
    assert!(c.shutdown(), "the server did not exit cleanly");
}

#[test]
fn half_typed_document_still_gets_completion_and_hover() {
    let dir = temp_dir("lsp-half");
    let text = fixture("half-typed.yaml");
    let uri = file_uri(&dir.join("half-typed.yaml"));
    let mut c = Client::start();
    c.initialize(&dir);
    c.open(&uri, &text);
    let diags = c.diagnostics(&uri, 1);
    assert!(codes(&diags).contains(&"P0001".to_owned()), "expected a syntax error: {diags:?}");

    // Fields of `validate` by position, though the document does not parse.
    let items = c.request("textDocument/completion", at(&uri, pos(&text, "failureAc", 9)));
    let l = labels(&items);
    assert!(l.contains(&"failureAction".to_owned()) && l.contains(&"pattern".to_owned()), "{l:?}");
    // Hover on a key above and inside the broken part.
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "match", 1)));
    assert!(hover_text(&h).contains("Which requests the rule applies to"), "{h}");
    let h = c.request("textDocument/hover", at(&uri, pos(&text, "request.object", 9)));
    assert!(hover_text(&h).contains("**request.object**"), "{h}");

    // Enum values, kinds, JMESPath functions and variables while typing.
    let typed = text.replace("failureAc", "failureAction: ");
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": typed}]}));
    let items = c.request("textDocument/completion", at(&uri, pos(&typed, "failureAction: ", 15)));
    assert_eq!(labels(&items), ["Audit", "Enforce"]);
    let typed = text.replace("failureAc", "message: \"{{ to_");
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": typed}]}));
    let items = c.request("textDocument/completion", at(&uri, pos(&typed, "{{ to_", 6)));
    let l = labels(&items);
    assert!(l.contains(&"to_upper".to_owned()) && l.contains(&"request".to_owned()), "{l:?}");
    assert!(!l.contains(&"element".to_owned()), "element is only offered inside foreach");
    let doc = items.as_array().unwrap().iter().find(|i| i["label"] == "to_upper").unwrap();
    assert!(doc["detail"].as_str().unwrap_or("").starts_with("to_upper("), "{doc}");
    // This client declared no snippet support: plain text, no `$0`.
    assert_eq!(doc["textEdit"]["newText"], "to_upper(");
    assert_eq!(doc["insertTextFormat"], 1);

    // Kinds at the top level.
    let typed = text.replace("kind: ClusterPolicy", "kind: Clu");
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": typed}]}));
    let items = c.request("textDocument/completion", at(&uri, pos(&typed, "kind: Clu", 9)));
    assert!(labels(&items).contains(&"ClusterCleanupPolicy".to_owned()));
    assert!(c.shutdown());
}

#[test]
fn foreach_cel_and_anchor_completion() {
    let dir = temp_dir("lsp-complete");
    let uri = file_uri(&dir.join("p.yaml"));
    let text = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      foreach:\n      - list: request.object.spec.containers\n        deny:\n          conditions:\n            any:\n            - key: \"{{ ele\"\n              operator: An\n      pattern:\n        spec:\n          \n";
    let mut c = Client::start();
    c.initialize(&dir);
    c.open(&uri, text);
    let items = c.request("textDocument/completion", at(&uri, pos(text, "{{ ele", 6)));
    assert!(labels(&items).contains(&"element".to_owned()), "{:?}", labels(&items));
    let items = c.request("textDocument/completion", at(&uri, pos(text, "operator: An", 12)));
    assert!(labels(&items).contains(&"AnyIn".to_owned()));
    let items = c.request("textDocument/completion", at(&uri, pos(text, "spec:\n          \n", 16)));
    let l = labels(&items);
    assert!(l.contains(&"=(key)".to_owned()) && l.contains(&"X(key)".to_owned()), "{l:?}");
    // `list` holds JMESPath without braces.
    let items = c.request("textDocument/completion", at(&uri, pos(text, "list: request.", 14)));
    assert!(labels(&items).contains(&"object".to_owned()), "{:?}", labels(&items));

    // A CEL field offers the CEL environment.
    let cel = "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: v\nspec:\n  variables:\n  - name: isProd\n    expression: \"true\"\n  validations:\n  - expression: \"variables.\"\n    message: no\n  - expression: \"md5('a') != '' && json.\"\n";
    let cel_uri = file_uri(&dir.join("v.yaml"));
    c.open(&cel_uri, cel);
    let items = c.request("textDocument/completion", at(&cel_uri, pos(cel, "variables.\"", 10)));
    assert_eq!(labels(&items), ["isProd"]);
    let items = c.request("textDocument/completion", at(&cel_uri, pos(cel, "\"true\"", 1)));
    let l = labels(&items);
    assert!(l.contains(&"object".to_owned()) && l.contains(&"has".to_owned()), "{l:?}");
    // The stdlib's CEL library table: namespaced and global functions.
    let items = c.request("textDocument/completion", at(&cel_uri, pos(cel, "json.\"", 5)));
    assert!(labels(&items).contains(&"unmarshal".to_owned()), "{:?}", labels(&items));
    let h = c.request("textDocument/hover", at(&cel_uri, pos(cel, "md5(", 1)));
    assert!(hover_text(&h).contains("MD5"), "{h}");
    let h = c.request("textDocument/hover", at(&cel_uri, pos(cel, "variables.\"", 2)));
    assert!(hover_text(&h).contains("named `variables`"), "{h}");
    assert!(c.shutdown());
}

#[test]
fn policies_named_in_exceptions_and_tests() {
    let dir = temp_dir("lsp-navigation");
    for (from, to) in [("require-team.yaml", "require-team.yaml"), ("exception.yaml", "exception.yaml"), ("navigation-test.yaml", "kyverno-test.yaml")] {
        std::fs::write(dir.join(to), fixture(from)).unwrap();
    }
    let exception = fixture("exception.yaml");
    let exception_uri = file_uri(&dir.join("exception.yaml"));
    let policy_uri = file_uri(&dir.join("require-team.yaml"));
    let policy = fixture("require-team.yaml");
    let mut c = Client::start();
    c.initialize(&dir);
    c.open(&exception_uri, &exception);
    // From the PolicyException to the policy on disk (not open in the editor).
    let d = c.request("textDocument/definition", at(&exception_uri, pos(&exception, "policyName: require-team", 14)));
    assert_eq!(d[0]["uri"], policy_uri);
    assert_eq!(d[0]["range"]["start"], pos(&policy, "require-team", 0));
    // From the test file too.
    let test_text = fixture("navigation-test.yaml");
    let test_uri = file_uri(&dir.join("kyverno-test.yaml"));
    c.open(&test_uri, &test_text);
    let d = c.request("textDocument/definition", at(&test_uri, pos(&test_text, "policy: require-team", 10)));
    assert_eq!(d[0]["uri"], policy_uri);
    // Rules named in the test result and in the exception go to the rule in the policy.
    let d = c.request("textDocument/definition", at(&test_uri, pos(&test_text, "rule: check-team", 8)));
    assert_eq!(d[0]["uri"], policy_uri);
    assert_eq!(d[0]["range"]["start"], pos(&policy, "check-team", 0));
    let d = c.request("textDocument/definition", at(&exception_uri, pos(&exception, "- check-team", 4)));
    assert_eq!(d[0]["range"]["start"], pos(&policy, "check-team", 0));
    // References of the policy name: the exception and the test result.
    c.open(&policy_uri, &policy);
    let r = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": policy_uri}, "position": pos(&policy, "require-team", 2), "context": {"includeDeclaration": false}}),
    );
    let mut uris: Vec<String> = r.as_array().unwrap().iter().map(|l| l["uri"].as_str().unwrap().to_owned()).collect();
    uris.sort();
    let mut expected = vec![exception_uri.clone(), test_uri.clone()];
    expected.sort();
    assert_eq!(uris, expected);
    assert!(c.shutdown());
}

#[test]
fn code_lens_runs_the_nearby_tests() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let path = examples.join("policies/require-team-label.yaml");
    let uri = file_uri(&path);
    let mut c = Client::start();
    c.initialize(&examples);
    c.open(&uri, &std::fs::read_to_string(&path).unwrap());
    let lenses = c.request("textDocument/codeLens", json!({"textDocument": {"uri": uri}}));
    let title = lenses[0]["command"]["title"].as_str().unwrap_or_default().to_owned();
    // examples/kyverno-test.yaml has 8 results; all pass (as `palisade test examples` says).
    assert_eq!(title, "✔ kyverno tests: 8 passed (run again)", "{lenses}");
    let command = lenses[0]["command"].clone();
    let result = c.request("workspace/executeCommand", json!({"command": command["command"], "arguments": command["arguments"]}));
    assert_eq!(result["passed"], 8);
    assert_eq!(result["failed"], 0);
    assert!(c.shutdown());
}
