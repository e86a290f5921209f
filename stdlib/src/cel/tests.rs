//! Table tests: an expression, the bindings as JSON, and the expected result as JSON (or the
//! start of the expected error).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::json;

use super::*;

fn run(expr: &str, object: Json) -> Result<Json, String> {
    let program = compile(expr).map_err(|e| format!("compile: {e}"))?;
    let mut b = Bindings::new();
    b.bind_json("object", &object);
    let host = Arc::new(Host {
        resources: vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}, "data": {"k": "v"}})],
        images: vec![("nginx:1.2".into(), json!({"config": {"User": "nginx"}}))],
        ..Host::default()
    });
    with_host(&host, || program.eval(&b, &[])).map_err(|e| e.0).and_then(|v| value::to_json(&v))
}

#[test]
fn expressions() {
    let pod = json!({"spec": {"replicas": 3, "containers": [{"name": "a", "image": "nginx:1.2"}, {"name": "b", "image": "ghcr.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]}});
    let cases: &[(&str, Json)] = &[
        ("object.spec.replicas + 1", json!(4)),
        ("object.spec.containers.map(c, c.name).indexOf('b')", json!(1)),
        ("['a', 'b', 'a'].lastIndexOf('a')", json!(2)),
        ("[1, 2, 3].sum()", json!(6)),
        ("[3, 1, 2].min() + [3, 1, 2].max()", json!(4)),
        ("[1, 2, 2].isSorted() && ![2, 1].isSorted()", json!(true)),
        ("sets.contains([1, 2, 3], [2, 3]) && sets.intersects([1], [1, 5]) && sets.equivalent([1, 1, 2], [2, 1])", json!(true)),
        ("'abc 123 def 456'.findAll('[0-9]+')", json!(["123", "456"])),
        ("'abc 123'.find('[0-9]+')", json!("123")),
        ("jsonpatch.escapeKey('a/b~c')", json!("a~1b~0c")),
        ("cel.bind(x, object.spec.replicas * 2, x + x)", json!(12)),
        ("quantity('500m').isLessThan(quantity('1')) && quantity('2Gi').compareTo(quantity('2048Mi')) == 0", json!(true)),
        ("quantity('1k').asInteger()", json!(1000)),
        ("semver('1.2.3').isLessThan(semver('1.10.0')) && semver('1.2.3').major() == 1", json!(true)),
        ("cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1')) && isIP('::1')", json!(true)),
        ("url('https://example.com:8443/a/b?x=1&x=2').getPort() + url('https://example.com:8443/a').getHostname()", json!("8443example.com")),
        ("url('https://e.com/p?x=1&x=2').getQuery()", json!({"x": ["1", "2"]})),
        ("object.spec.containers.map(c, image(c.image).registry())", json!(["docker.io", "ghcr.io"])),
        ("image('nginx').repository() + ':' + image('nginx').tag()", json!("library/nginx:latest")),
        ("image(object.spec.containers[1].image).containsDigest()", json!(true)),
        ("parseServiceAccount('system:serviceaccount:ns1:sa1').Namespace", json!("ns1")),
        ("resource.Get('v1', 'configmaps', 'default', 'cm').data.k", json!("v")),
        ("size(resource.List('v1', 'configmaps', '').items)", json!(1)),
        ("json.unmarshal('{\"a\": [1]}').a[0] + yaml.parse('b: 2').b", json!(3)),
        ("sha256('abc')", json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")),
        ("object.spec.?missing.orValue('none')", json!("none")),
        ("{'a': 1, 'a': 2}['a']", json!(2)),
        ("Object{metadata: Object.metadata{labels: {'a': 'b'}}}", json!({"metadata": {"labels": {"a": "b"}}})),
        ("[JSONPatch{op: 'add', path: '/a', value: object.spec.replicas}]", json!([{"op": "add", "path": "/a", "value": 3}])),
        ("image.GetMetadata('docker.io/library/nginx:1.2').config.User", json!("nginx")),
        ("object.spec.containers.map(image, image.image.startsWith('nginx'))", json!([true, false])),
        ("object.spec.containers.orValue([]).size() + optional.none().orValue(5) + optional.of(1).orValue(7)", json!(8)),
    ];
    for (expr, want) in cases {
        assert_eq!(run(expr, pod.clone()).as_ref(), Ok(want), "{expr}");
    }
}

#[test]
fn errors() {
    let deep = format!("{}1{}", "(".repeat(60), ")".repeat(60));
    let cases: &[(&str, &str)] = &[
        ("object.spec.nope", "No such key: nope"),
        ("[].min()", "Error executing function 'min'"),
        ("resource.Get('v1', 'configmaps', 'default', 'other')", "Error executing function 'resource.Get': configmaps \"other\" not found"),
        ("quantity('12x')", "Error executing function 'quantity'"),
        ("frobnicate(1)", "compile: 1:1: undeclared reference to 'frobnicate'"),
        ("1 +", "compile: 1:"),
        (deep.as_str(), "compile: 1:49: the expression nests deeper than 48 levels"),
        // Three nested loops over the 100-item list this request carries would take 10^6
        // iterations: the evaluation is refused before it starts.
        ("object.spec.c.all(a, object.spec.c.all(b, object.spec.c.all(d, true)))", "operation cancelled: actual cost limit exceeded"),
    ];
    let wide = json!({"spec": {"c": (0..100).collect::<Vec<_>>()}});
    for (expr, want) in cases {
        let got = run(expr, wide.clone());
        assert!(got.as_ref().is_err_and(|e| e.starts_with(want)), "{expr}: {got:?}");
    }
}

#[test]
fn nested_loops_are_bounded_by_the_request() {
    let p = compile("object.spec.c.all(a, object.spec.c.all(b, a == b))").unwrap();
    let mut b = Bindings::new();
    b.bind_json("object", &json!({"spec": {"c": [1, 2, 3]}}));
    assert_eq!(p.eval(&b, &[]).unwrap(), Value::Bool(false));
    assert!(p.estimate(10.0).cost < p.estimate(100.0).cost / 50.0, "nesting grows with the square of the list size");
}

#[test]
fn compile_errors_point_into_the_expression() {
    let e = compile("object.a &&\n  nosuch(object.b)").err().unwrap();
    assert_eq!((e.line, e.column, e.message.as_str()), (2, 3, "undeclared reference to 'nosuch'"));
    let e = compile("object.a ==").err().unwrap();
    assert_eq!(e.line, 1);
}

#[test]
fn every_library_row_is_registered() {
    env().unwrap();
    for f in FUNCTIONS {
        assert!(library::is_known(f.name));
        assert!(!f.doc.is_empty());
    }
}
