//! The CEL libraries Kubernetes and Kyverno policies call, beyond the `cel` crate's standard
//! library and its strings, lists, math and encoders extensions.
//!
//! Every function is declared once in [`FUNCTIONS`]: the table registers the overloads on the
//! environment, and the checker and the language server read the same rows for names, arity and
//! documentation. Functions that read the outside world (`resource.Get`, `http.Get`, ...) answer
//! from the [`Host`] the caller installs for the evaluation, never from the network.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use cel::common::functions::Function;
use cel::common::types::{self, Type};
use cel::common::value::{CowVal, Val};
use cel::objects::{Key, Map};
use cel::{DeclarationError, Env, ExecutionError, Value};
use serde_json::Value as Json;

use super::value::{from_json, key_string, to_json};

/// One overload of a library function, with its documentation.
pub struct CelFunction {
    /// The name as written: `indexOf`, `jsonpatch.escapeKey`, `resource.Get`.
    pub name: &'static str,
    /// The receiver type of a member function (`list` for `list.indexOf(x)`), else `None`.
    pub receiver: Option<&'static str>,
    /// Parameter types, receiver excluded, as CEL writes them.
    pub params: &'static [&'static str],
    pub returns: &'static str,
    /// Which library it belongs to: `kubernetes.lists`, `kyverno.resource`, ...
    pub library: &'static str,
    pub doc: &'static str,
    implementation: Function,
}

/// Wraps a function over plain [`Value`]s into the crate's overload signature. The arguments
/// are converted once per call; library functions are rarely on the hot path of a policy.
macro_rules! bridge {
    ($f:path) => {{
        fn wrapper<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            let values = args.iter().map(|a| Value::try_from(a.as_ref())).collect::<Result<Vec<_>, _>>()?;
            let out = $f(&values)?;
            let boxed: Box<dyn Val> = Box::<dyn Val>::try_from(out)?;
            Ok(CowVal::Owned(boxed))
        }
        wrapper as Function
    }};
}

macro_rules! member {
    ($name:literal, $recv:literal, [$($p:literal),*], $ret:literal, $lib:literal, $doc:literal, $f:path) => {
        CelFunction { name: $name, receiver: Some($recv), params: &[$($p),*], returns: $ret, library: $lib, doc: $doc, implementation: bridge!($f) }
    };
}

macro_rules! global {
    ($name:literal, [$($p:literal),*], $ret:literal, $lib:literal, $doc:literal, $f:path) => {
        CelFunction { name: $name, receiver: None, params: &[$($p),*], returns: $ret, library: $lib, doc: $doc, implementation: bridge!($f) }
    };
}

/// The library functions, one row per overload.
pub static FUNCTIONS: &[CelFunction] = &[
    // Kubernetes list library.
    member!("indexOf", "list", ["dyn"], "int", "kubernetes.lists", "The index of the first element equal to the argument, or -1.", list_index_of),
    member!("lastIndexOf", "list", ["dyn"], "int", "kubernetes.lists", "The index of the last element equal to the argument, or -1.", list_last_index_of),
    member!("sum", "list", [], "dyn", "kubernetes.lists", "The sum of a list of numbers (or durations); 0 for an empty list.", list_sum),
    member!("min", "list", [], "dyn", "kubernetes.lists", "The smallest element; an error on an empty list.", list_min),
    member!("max", "list", [], "dyn", "kubernetes.lists", "The largest element; an error on an empty list.", list_max),
    member!("isSorted", "list", [], "bool", "kubernetes.lists", "Whether the elements are in ascending order.", list_is_sorted),
    // Kubernetes sets library.
    global!("sets.contains", ["list", "list"], "bool", "kubernetes.sets", "Whether the first list contains every element of the second.", sets_contains),
    global!("sets.equivalent", ["list", "list"], "bool", "kubernetes.sets", "Whether both lists hold the same set of elements.", sets_equivalent),
    global!("sets.intersects", ["list", "list"], "bool", "kubernetes.sets", "Whether the lists share at least one element.", sets_intersects),
    // Kubernetes regex library.
    member!("find", "string", ["string"], "string", "kubernetes.regex", "The first match of the regular expression, or the empty string.", regex_find),
    member!("findAll", "string", ["string"], "list(string)", "kubernetes.regex", "Every match of the regular expression.", regex_find_all),
    member!("findAll", "string", ["string", "int"], "list(string)", "kubernetes.regex", "At most n matches of the regular expression (all of them when n < 0).", regex_find_all_n),
    // Kubernetes JSON patch helper.
    global!("jsonpatch.escapeKey", ["string"], "string", "kubernetes.jsonpatch", "Escapes a key for a JSON pointer: '~' becomes '~0' and '/' becomes '~1'.", escape_key),
    // Kubernetes quantity library.
    global!("quantity", ["string"], "Quantity", "kubernetes.quantity", "Parses a Kubernetes quantity such as '500m' or '2Gi'.", quantity_new),
    global!("isQuantity", ["string"], "bool", "kubernetes.quantity", "Whether the string is a valid Kubernetes quantity.", quantity_is),
    member!("compareTo", "Quantity", ["Quantity"], "int", "kubernetes.quantity", "-1, 0 or 1 as this quantity is less than, equal to or greater than the other.", quantity_compare),
    member!("isGreaterThan", "Quantity", ["Quantity"], "bool", "kubernetes.quantity", "Whether this quantity is greater than the other.", quantity_greater),
    member!("isLessThan", "Quantity", ["Quantity"], "bool", "kubernetes.quantity", "Whether this quantity is less than the other.", quantity_less),
    member!("add", "Quantity", ["Quantity"], "Quantity", "kubernetes.quantity", "The sum of two quantities.", quantity_add),
    member!("sub", "Quantity", ["Quantity"], "Quantity", "kubernetes.quantity", "The difference of two quantities.", quantity_sub),
    member!("asApproximateFloat", "Quantity", [], "double", "kubernetes.quantity", "The quantity as a floating point number.", quantity_float),
    member!("asInteger", "Quantity", [], "int", "kubernetes.quantity", "The quantity as an integer; an error when it has a fraction or overflows.", quantity_int),
    member!("isInteger", "Quantity", [], "bool", "kubernetes.quantity", "Whether the quantity is a whole number that fits an int.", quantity_is_int),
    member!("sign", "Quantity", [], "int", "kubernetes.quantity", "-1, 0 or 1 by the sign of the quantity.", quantity_sign),
    // Kubernetes semver library.
    global!("semver", ["string"], "Semver", "kubernetes.semver", "Parses a semantic version.", semver_new),
    global!("isSemver", ["string"], "bool", "kubernetes.semver", "Whether the string is a semantic version.", semver_is),
    member!("major", "Semver", [], "int", "kubernetes.semver", "The major version.", semver_major),
    member!("minor", "Semver", [], "int", "kubernetes.semver", "The minor version.", semver_minor),
    member!("patch", "Semver", [], "int", "kubernetes.semver", "The patch version.", semver_patch),
    member!("compareTo", "Semver", ["Semver"], "int", "kubernetes.semver", "-1, 0 or 1 by semantic version precedence.", semver_compare),
    member!("isGreaterThan", "Semver", ["Semver"], "bool", "kubernetes.semver", "Whether this version has higher precedence.", semver_greater),
    member!("isLessThan", "Semver", ["Semver"], "bool", "kubernetes.semver", "Whether this version has lower precedence.", semver_less),
    // Kubernetes IP and CIDR library.
    global!("isIP", ["string"], "bool", "kubernetes.net", "Whether the string is an IPv4 or IPv6 address.", ip_is),
    global!("ip", ["string"], "IP", "kubernetes.net", "Parses an IP address.", ip_new),
    global!("isCIDR", ["string"], "bool", "kubernetes.net", "Whether the string is a CIDR block.", cidr_is),
    global!("cidr", ["string"], "CIDR", "kubernetes.net", "Parses a CIDR block.", cidr_new),
    member!("family", "IP", [], "int", "kubernetes.net", "4 or 6.", ip_family),
    member!("isLoopback", "IP", [], "bool", "kubernetes.net", "Whether the address is a loopback address.", ip_loopback),
    member!("containsIP", "CIDR", ["dyn"], "bool", "kubernetes.net", "Whether the block contains the address (an IP or a string).", cidr_contains_ip),
    member!("prefixLength", "CIDR", [], "int", "kubernetes.net", "The prefix length of the block.", cidr_prefix),
    // Kubernetes URL library.
    global!("isURL", ["string"], "bool", "kubernetes.urls", "Whether the string is an absolute URL or an absolute path.", url_is),
    global!("url", ["string"], "URL", "kubernetes.urls", "Parses a URL.", url_new),
    member!("getScheme", "URL", [], "string", "kubernetes.urls", "The scheme, without ':'.", url_scheme),
    member!("getHost", "URL", [], "string", "kubernetes.urls", "The host, with the port if any.", url_host),
    member!("getHostname", "URL", [], "string", "kubernetes.urls", "The host name, without the port and IPv6 brackets.", url_hostname),
    member!("getPort", "URL", [], "string", "kubernetes.urls", "The port, or the empty string.", url_port),
    member!("getEscapedPath", "URL", [], "string", "kubernetes.urls", "The path, escaped.", url_path),
    member!("getQuery", "URL", [], "map(string, list(string))", "kubernetes.urls", "The query parameters.", url_query),
    // Kyverno image library.
    global!("image", ["string"], "Image", "kyverno.image", "Parses an image reference.", image_new),
    global!("isImage", ["string"], "bool", "kyverno.image", "Whether the string is a valid image reference.", image_is),
    member!("registry", "Image", [], "string", "kyverno.image", "The registry of the image (docker.io when none is written).", image_registry),
    member!("repository", "Image", [], "string", "kyverno.image", "The repository path of the image.", image_repository),
    member!("tag", "Image", [], "string", "kyverno.image", "The tag, or the empty string.", image_tag),
    member!("digest", "Image", [], "string", "kyverno.image", "The digest, or the empty string.", image_digest),
    member!("identifier", "Image", [], "string", "kyverno.image", "The digest when there is one, else the tag.", image_identifier),
    member!("containsDigest", "Image", [], "bool", "kyverno.image", "Whether the reference pins a digest.", image_contains_digest),
    global!("image.GetMetadata", ["string"], "map(string, dyn)", "kyverno.image", "The image's metadata (config, manifest, ...), from the test's context images offline.", image_metadata),
    // Kyverno user library.
    global!("parseServiceAccount", ["string"], "ServiceAccount", "kyverno.user", "Splits 'system:serviceaccount:<namespace>:<name>' into Namespace and Name.", parse_service_account),
    // Kyverno resource library, answered from the test's resources.
    global!("resource.Get", ["string", "string", "string", "string"], "map(string, dyn)", "kyverno.resource", "Gets a resource by apiVersion, resource (plural), namespace and name.", resource_get),
    global!("resource.List", ["string", "string", "string"], "map(string, dyn)", "kyverno.resource", "Lists resources by apiVersion, resource (plural) and namespace ('' for all).", resource_list),
    // Kyverno generator library: the resources are collected for the caller, never created.
    global!("generator.Apply", ["string", "list"], "bool", "kyverno.generator", "Generates the resources in the namespace (collected by the evaluation that runs the policy).", generator_apply),
    // Kyverno http library, answered from the test's recorded responses.
    global!("http.Get", ["string"], "dyn", "kyverno.http", "The recorded response of a GET request.", http_get),
    global!("http.Post", ["string", "dyn"], "dyn", "kyverno.http", "The recorded response of a POST request.", http_post),
    // Kyverno globalContext library.
    global!("globalContext.Get", ["string", "string"], "dyn", "kyverno.globalcontext", "A global context entry, projected by name ('' for the whole entry).", global_context_get),
    // Kyverno json, yaml, hash and time helpers.
    global!("json.unmarshal", ["string"], "dyn", "kyverno.json", "Parses a JSON document.", json_unmarshal),
    global!("yaml.parse", ["string"], "dyn", "kyverno.yaml", "Parses a YAML document.", yaml_parse),
    global!("md5", ["string"], "string", "kyverno.hash", "The hex MD5 digest of the string.", hash_md5),
    global!("sha1", ["string"], "string", "kyverno.hash", "The hex SHA-1 digest of the string.", hash_sha1),
    global!("sha256", ["string"], "string", "kyverno.hash", "The hex SHA-256 digest of the string.", hash_sha256),
    global!("time.now", [], "timestamp", "kyverno.time", "The current time (the host's clock, or the time the test pins).", time_now),
    // Kyverno image verification library (ImageValidatingPolicy), answered by the verifier the
    // evaluation installs.
    global!("verifyImageSignatures", ["string", "list"], "int", "kyverno.imageverify", "How many of the attestors verify a signature of the image (a signature that does not verify is not counted; an unreachable registry is an error).", verify_image_signatures),
    global!("verifyAttestationSignatures", ["string", "string", "list"], "int", "kyverno.imageverify", "How many of the attestors verify the named attestation of the image (one that does not verify is not counted; an unreachable registry is an error).", verify_attestation_signatures),
    global!("extractPayload", ["string", "string"], "dyn", "kyverno.imageverify", "The payload (predicate) of the named attestation of the image, once verified.", extract_payload),
];

/// Names of the standard library, the crate's extensions and the macros, for the checker.
pub static STANDARD: &[&str] = &[
    "has", "all", "exists", "exists_one", "map", "filter", "size", "int", "uint", "double", "string", "bytes", "bool",
    "dyn", "type", "duration", "timestamp", "matches", "contains", "startsWith", "endsWith", "getDate",
    "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes",
    "getMonth", "getSeconds", "optional.of", "optional.none", "optional.ofNonZeroValue", "hasValue", "value",
    "orValue", "or", "charAt", "indexOf", "lastIndexOf", "lowerAscii", "upperAscii", "replace", "split",
    "substring", "trim", "join", "quote", "reverse", "format", "strings.quote", "slice", "flatten", "distinct",
    "sort", "sortBy", "lists.range", "math.ceil", "math.floor", "math.round", "math.trunc", "math.isInf",
    "math.isNaN", "math.isFinite", "math.abs", "math.sign", "math.bitAnd", "math.bitOr", "math.bitXor",
    "math.bitNot", "math.bitShiftLeft", "math.bitShiftRight", "math.sqrt", "math.greatest", "math.least",
    "base64.encode", "base64.decode", "cel.bind", "transformList", "transformMap",
];

/// Kyverno functions that need a registry or a signature service. Expressions may name them
/// (the policy is valid), but evaluating them offline is an error that says so.
pub static NEEDS_NETWORK: &[&str] = &["resource.Post"];

/// Whether `name` is a function or macro an expression may call.
pub fn is_known(name: &str) -> bool {
    STANDARD.contains(&name) || NEEDS_NETWORK.contains(&name) || FUNCTIONS.iter().any(|f| f.name == name)
}

/// Registers every row of [`FUNCTIONS`] and the `cel.bind` macro on `env`.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let mut seen: Vec<(&str, Option<&str>, Vec<&str>)> = Vec::new();
    for (i, f) in FUNCTIONS.iter().enumerate() {
        let args: Vec<Type> = f.params.iter().map(|p| type_of(p)).collect();
        // Rows that differ only in an opaque type (Quantity.compareTo, Semver.compareTo) share
        // one overload, whose implementation dispatches on the value.
        let key = (f.name, f.receiver.map(dispatch_name), f.params.iter().map(|p| dispatch_name(p)).collect());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let id = format!("palisade.{i}.{}", f.name);
        match f.receiver {
            Some(recv) => env.add_member_overload(f.name, &id, type_of(recv), args, f.implementation)?,
            None => env.add_overload(f.name, &id, args, f.implementation)?,
        }
    }
    env.add_macro(cel::parser::Macro::receiver("bind", 3, bind_macro))?;
    env.add_overload(OR_VALUE, "palisade.orValue", vec![types::DYN_TYPE, types::DYN_TYPE], bridge!(or_value))?;
    env.add_macro(cel::parser::Macro::receiver("orValue", 1, or_value_macro))?;
    Ok(())
}

/// The overload `x.orValue(d)` is rewritten to; its name cannot be written in CEL.
const OR_VALUE: &str = "@orValue";

/// `x.orValue(d)` as Kyverno evaluates it: on an optional, its value or `d`; on any other
/// value, that value. Kyverno's policies rely on the second form (`x.items.orValue([])`),
/// which the `cel` crate's optional overload rejects, so the call is rewritten at parse time.
fn or_value_macro(
    helper: &mut cel::parser::MacroExprHelper<'_>,
    target: &mut Option<cel::IdedExpr>,
    args: &mut Vec<cel::IdedExpr>,
) -> Result<Option<cel::IdedExpr>, cel::ParseError> {
    use cel::common::ast::{CallExpr, Expr};
    let (Some(t), Some(d)) = (target.take(), args.pop()) else { return Ok(None) };
    Ok(Some(helper.next_expr(Expr::Call(CallExpr { func_name: OR_VALUE.to_owned(), target: None, args: vec![t, d] }))))
}

fn or_value(args: &[Value]) -> Result<Value, ExecutionError> {
    let x = arg(args, 0, "orValue")?;
    let d = arg(args, 1, "orValue")?;
    if let Value::Opaque(o) = x && let Some(opt) = o.downcast_ref::<cel::objects::OptionalValue>() {
        return Ok(opt.value().cloned().unwrap_or_else(|| d.clone()));
    }
    Ok(x.clone())
}

/// The name of the type an overload dispatches on (see [`type_of`]).
fn dispatch_name(name: &str) -> &str {
    match name {
        "list" | "string" | "int" | "bool" | "double" | "map" => name,
        _ => "dyn",
    }
}

/// The crate type an overload dispatches on. Opaque library types (Quantity, Image, ...) are
/// declared `dyn` and checked inside the function, since the crate matches opaque values by
/// their runtime name only.
fn type_of(name: &str) -> Type {
    match name {
        "list" => types::LIST_TYPE,
        "string" => types::STRING_TYPE,
        "int" => types::INT_TYPE,
        "bool" => types::BOOL_TYPE,
        "double" => types::DOUBLE_TYPE,
        "map" => types::MAP_TYPE,
        _ => types::DYN_TYPE,
    }
}

/// `cel.bind(name, init, body)`: evaluates `init` once, binds it to `name` and evaluates
/// `body`, written as the one-pass comprehension cel-go expands it to.
fn bind_macro(
    helper: &mut cel::parser::MacroExprHelper<'_>,
    target: &mut Option<cel::IdedExpr>,
    args: &mut Vec<cel::IdedExpr>,
) -> Result<Option<cel::IdedExpr>, cel::ParseError> {
    use cel::common::ast::{ComprehensionExpr, Expr, ListExpr, LiteralValue};
    let is_cel = matches!(target.as_ref().map(|t| &t.expr), Some(Expr::Ident(n)) if n == "cel");
    if !is_cel {
        return Ok(None);
    }
    let (Some(body), Some(init), Some(var)) = (args.pop(), args.pop(), args.pop()) else {
        return Ok(None);
    };
    let Expr::Ident(name) = &var.expr else {
        return Err(helper.new_error(var.id, "cel.bind() variable name must be a simple identifier"));
    };
    let name = name.clone();
    let step = helper.next_expr(Expr::Ident(name.clone()));
    let bind = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: name,
        accu_init: init,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: step,
        result: body,
    };
    Ok(Some(helper.next_expr(Expr::Comprehension(Box::new(bind)))))
}

// ---- helpers ------------------------------------------------------------------------------

fn err(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn arg<'a>(args: &'a [Value], i: usize, function: &str) -> Result<&'a Value, ExecutionError> {
    args.get(i).ok_or_else(|| err(function, format!("missing argument {}", i + 1)))
}

fn str_arg<'a>(args: &'a [Value], i: usize, function: &str) -> Result<&'a str, ExecutionError> {
    match arg(args, i, function)? {
        Value::String(s) => Ok(s.as_str()),
        other => Err(err(function, format!("argument {} must be a string, got {}", i + 1, other.type_of()))),
    }
}

fn list_arg<'a>(args: &'a [Value], i: usize, function: &str) -> Result<&'a [Value], ExecutionError> {
    match arg(args, i, function)? {
        Value::List(l) => Ok(l.as_slice()),
        other => Err(err(function, format!("argument {} must be a list, got {}", i + 1, other.type_of()))),
    }
}

fn string(s: impl Into<String>) -> Value {
    Value::String(Arc::new(s.into()))
}

fn map_of(entries: Vec<(&str, Value)>) -> Value {
    let map: HashMap<Key, Value> = entries.into_iter().map(|(k, v)| (Key::String(Arc::new(k.to_owned())), v)).collect();
    Value::Map(Map { map: Arc::new(map) })
}

/// CEL equality across numeric kinds (`1 == 1u == 1.0`), as list functions compare.
fn cel_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::UInt(y)) | (Value::UInt(y), Value::Int(x)) => u64::try_from(*x).is_ok_and(|x| x == *y),
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::UInt(x), Value::Float(y)) | (Value::Float(y), Value::UInt(x)) => (*x as f64) == *y,
        _ => a == b,
    }
}

fn cel_cmp(function: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, ExecutionError> {
    use std::cmp::Ordering;
    let as_f = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::UInt(x), Value::UInt(y)) => Ok(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Ok(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Ok(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Ok(x.cmp(y)),
        _ => match (as_f(a), as_f(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).ok_or_else(|| err(function, "NaN is not comparable")).or(Ok(Ordering::Equal)),
            _ => Err(err(function, format!("{} and {} are not comparable", a.type_of(), b.type_of()))),
        },
    }
}

// ---- lists ---------------------------------------------------------------------------------

fn list_index_of(args: &[Value]) -> Result<Value, ExecutionError> {
    let list = list_arg(args, 0, "indexOf")?;
    let x = arg(args, 1, "indexOf")?;
    Ok(Value::Int(list.iter().position(|e| cel_eq(e, x)).map_or(-1, |i| i as i64)))
}

fn list_last_index_of(args: &[Value]) -> Result<Value, ExecutionError> {
    let list = list_arg(args, 0, "lastIndexOf")?;
    let x = arg(args, 1, "lastIndexOf")?;
    Ok(Value::Int(list.iter().rposition(|e| cel_eq(e, x)).map_or(-1, |i| i as i64)))
}

fn list_sum(args: &[Value]) -> Result<Value, ExecutionError> {
    let list = list_arg(args, 0, "sum")?;
    let mut acc: Option<Value> = None;
    for e in list {
        acc = Some(match (acc, e) {
            (None, v) => v.clone(),
            (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a.checked_add(*b).ok_or_else(|| err("sum", "integer overflow"))?),
            (Some(Value::UInt(a)), Value::UInt(b)) => Value::UInt(a.checked_add(*b).ok_or_else(|| err("sum", "integer overflow"))?),
            (Some(Value::Float(a)), Value::Float(b)) => Value::Float(a + b),
            (Some(Value::Duration(a)), Value::Duration(b)) => Value::Duration(a + *b),
            (Some(a), b) => return Err(err("sum", format!("cannot add {} and {}", a.type_of(), b.type_of()))),
        });
    }
    Ok(acc.unwrap_or(Value::Int(0)))
}

fn extreme(args: &[Value], function: &str, want: std::cmp::Ordering) -> Result<Value, ExecutionError> {
    let list = list_arg(args, 0, function)?;
    let mut best: Option<&Value> = None;
    for e in list {
        best = Some(match best {
            None => e,
            Some(b) if cel_cmp(function, e, b)? == want => e,
            Some(b) => b,
        });
    }
    best.cloned().ok_or_else(|| err(function, format!("{function} of an empty list")))
}

fn list_min(args: &[Value]) -> Result<Value, ExecutionError> {
    extreme(args, "min", std::cmp::Ordering::Less)
}

fn list_max(args: &[Value]) -> Result<Value, ExecutionError> {
    extreme(args, "max", std::cmp::Ordering::Greater)
}

fn list_is_sorted(args: &[Value]) -> Result<Value, ExecutionError> {
    let list = list_arg(args, 0, "isSorted")?;
    for pair in list.windows(2) {
        if let [a, b] = pair && cel_cmp("isSorted", a, b)? == std::cmp::Ordering::Greater {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

// ---- sets ----------------------------------------------------------------------------------

fn sets_contains(args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list_arg(args, 0, "sets.contains")?, list_arg(args, 1, "sets.contains")?);
    Ok(Value::Bool(b.iter().all(|x| a.iter().any(|y| cel_eq(x, y)))))
}

fn sets_equivalent(args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list_arg(args, 0, "sets.equivalent")?, list_arg(args, 1, "sets.equivalent")?);
    let within = |p: &[Value], q: &[Value]| p.iter().all(|x| q.iter().any(|y| cel_eq(x, y)));
    Ok(Value::Bool(within(a, b) && within(b, a)))
}

fn sets_intersects(args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (list_arg(args, 0, "sets.intersects")?, list_arg(args, 1, "sets.intersects")?);
    Ok(Value::Bool(a.iter().any(|x| b.iter().any(|y| cel_eq(x, y)))))
}

// ---- regex ---------------------------------------------------------------------------------

fn compile_regex(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| err(function, format!("invalid regular expression {pattern:?}: {e}")))
}

fn regex_find(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "find")?;
    let re = compile_regex("find", str_arg(args, 1, "find")?)?;
    Ok(string(re.find(s).map(|m| m.as_str()).unwrap_or_default()))
}

fn find_all(args: &[Value], limit: i64) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "findAll")?;
    let re = compile_regex("findAll", str_arg(args, 1, "findAll")?)?;
    let take = if limit < 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
    Ok(Value::List(Arc::new(re.find_iter(s).take(take).map(|m| string(m.as_str())).collect())))
}

fn regex_find_all(args: &[Value]) -> Result<Value, ExecutionError> {
    find_all(args, -1)
}

fn regex_find_all_n(args: &[Value]) -> Result<Value, ExecutionError> {
    match arg(args, 2, "findAll")? {
        Value::Int(n) => find_all(args, *n),
        other => Err(err("findAll", format!("the limit must be an int, got {}", other.type_of()))),
    }
}

fn escape_key(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(str_arg(args, 0, "jsonpatch.escapeKey")?.replace('~', "~0").replace('/', "~1")))
}

// ---- opaque library values -----------------------------------------------------------------

/// A library value CEL sees as an opaque type: a quantity, a semantic version, an IP, a CIDR
/// block, a URL or an image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Quantity(crate::quantity::Quantity),
    Semver(String),
    Ip(std::net::IpAddr),
    Cidr(std::net::IpAddr, u8),
    Url(UrlParts),
    Image(ImageRef),
}

impl cel::objects::Opaque for Object {
    fn runtime_type_name(&self) -> &str {
        match self {
            Object::Quantity(_) => "kubernetes.Quantity",
            Object::Semver(_) => "kubernetes.Semver",
            Object::Ip(_) => "net.IP",
            Object::Cidr(..) => "net.CIDR",
            Object::Url(_) => "kubernetes.URL",
            Object::Image(_) => "kyverno.Image",
        }
    }
}

impl Object {
    /// The string form Kubernetes gives the value when it is converted to JSON.
    pub fn to_json(&self) -> Json {
        Json::String(match self {
            Object::Quantity(q) => q.to_string(),
            Object::Semver(s) => s.clone(),
            Object::Ip(ip) => ip.to_string(),
            Object::Cidr(ip, len) => format!("{ip}/{len}"),
            Object::Url(u) => u.raw.clone(),
            Object::Image(i) => i.raw.clone(),
        })
    }
}

fn object(o: Object) -> Value {
    Value::Opaque(Arc::new(o))
}

fn object_arg<'a>(args: &'a [Value], i: usize, function: &str) -> Result<&'a Object, ExecutionError> {
    match arg(args, i, function)? {
        Value::Opaque(o) => o.downcast_ref::<Object>().ok_or_else(|| err(function, "unexpected argument type")),
        other => Err(err(function, format!("no such overload for {}", other.type_of()))),
    }
}

fn quantity_arg<'a>(args: &'a [Value], i: usize, function: &str) -> Result<&'a crate::quantity::Quantity, ExecutionError> {
    match object_arg(args, i, function)? {
        Object::Quantity(q) => Ok(q),
        _ => Err(err(function, "expected a Quantity")),
    }
}

fn quantity_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "quantity")?;
    crate::quantity::Quantity::parse(s).map(|q| object(Object::Quantity(q))).map_err(|e| err("quantity", e))
}

fn quantity_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(crate::quantity::Quantity::parse(str_arg(args, 0, "isQuantity")?).is_ok()))
}

/// Compares two quantities or two semantic versions.
fn opaque_cmp(args: &[Value], function: &str) -> Result<std::cmp::Ordering, ExecutionError> {
    match object_arg(args, 0, function)? {
        Object::Semver(_) => Ok(semver_arg(args, 0, function)?.compare(&semver_arg(args, 1, function)?)),
        _ => Ok(quantity_arg(args, 0, function)?.cmp(quantity_arg(args, 1, function)?)),
    }
}

fn quantity_compare(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(opaque_cmp(args, "compareTo")? as i64))
}

fn quantity_greater(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(opaque_cmp(args, "isGreaterThan")?.is_gt()))
}

fn quantity_less(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(opaque_cmp(args, "isLessThan")?.is_lt()))
}

fn quantity_add(args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (quantity_arg(args, 0, "add")?, quantity_arg(args, 1, "add")?);
    a.checked_add(b).map(|q| object(Object::Quantity(q))).ok_or_else(|| err("add", "quantity overflow"))
}

fn quantity_sub(args: &[Value]) -> Result<Value, ExecutionError> {
    let (a, b) = (quantity_arg(args, 0, "sub")?, quantity_arg(args, 1, "sub")?);
    a.checked_sub(b).map(|q| object(Object::Quantity(q))).ok_or_else(|| err("sub", "quantity overflow"))
}

fn quantity_float(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Float(quantity_arg(args, 0, "asApproximateFloat")?.as_approximate_f64()))
}

/// The quantity as a whole number of units, when it is one.
fn quantity_whole(q: &crate::quantity::Quantity) -> Option<i64> {
    let nanos = q.nanos();
    if nanos % 1_000_000_000 != 0 {
        return None;
    }
    i64::try_from(nanos / 1_000_000_000).ok()
}

fn quantity_int(args: &[Value]) -> Result<Value, ExecutionError> {
    quantity_whole(quantity_arg(args, 0, "asInteger")?).map(Value::Int).ok_or_else(|| err("asInteger", "cannot convert value to integer"))
}

fn quantity_is_int(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(quantity_whole(quantity_arg(args, 0, "isInteger")?).is_some()))
}

fn quantity_sign(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(quantity_arg(args, 0, "sign")?.nanos().signum() as i64))
}

fn semver_parse(function: &str, s: &str) -> Result<crate::semver::Version, ExecutionError> {
    crate::semver::Version::parse(s).map_err(|e| err(function, e))
}

fn semver_arg(args: &[Value], i: usize, function: &str) -> Result<crate::semver::Version, ExecutionError> {
    match object_arg(args, i, function)? {
        Object::Semver(s) => semver_parse(function, s),
        _ => Err(err(function, "expected a Semver")),
    }
}

fn semver_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "semver")?;
    semver_parse("semver", s)?;
    Ok(object(Object::Semver(s.to_owned())))
}

fn semver_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(crate::semver::Version::parse(str_arg(args, 0, "isSemver")?).is_ok()))
}

fn semver_field(args: &[Value], function: &str, i: usize) -> Result<Value, ExecutionError> {
    let v = semver_arg(args, 0, function)?;
    let n = [v.major, v.minor, v.patch].get(i).copied().unwrap_or_default();
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn semver_major(args: &[Value]) -> Result<Value, ExecutionError> {
    semver_field(args, "major", 0)
}

fn semver_minor(args: &[Value]) -> Result<Value, ExecutionError> {
    semver_field(args, "minor", 1)
}

fn semver_patch(args: &[Value]) -> Result<Value, ExecutionError> {
    semver_field(args, "patch", 2)
}

fn semver_compare(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(semver_arg(args, 0, "compareTo")?.compare(&semver_arg(args, 1, "compareTo")?) as i64))
}

fn semver_greater(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(semver_arg(args, 0, "isGreaterThan")?.compare(&semver_arg(args, 1, "isGreaterThan")?).is_gt()))
}

fn semver_less(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(semver_arg(args, 0, "isLessThan")?.compare(&semver_arg(args, 1, "isLessThan")?).is_lt()))
}

fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    // Kubernetes rejects IPv4-mapped IPv6 and zones; the standard parser rejects zones already.
    s.parse::<std::net::IpAddr>().ok().filter(|ip| !matches!(ip, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
}

fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip = parse_ip(ip)?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn ip_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_ip(str_arg(args, 0, "isIP")?).is_some()))
}

fn ip_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "ip")?;
    parse_ip(s).map(|ip| object(Object::Ip(ip))).ok_or_else(|| err("ip", format!("IP Address {s:?} parse error")))
}

fn cidr_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_cidr(str_arg(args, 0, "isCIDR")?).is_some()))
}

fn cidr_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "cidr")?;
    parse_cidr(s).map(|(ip, l)| object(Object::Cidr(ip, l))).ok_or_else(|| err("cidr", format!("network address {s:?} parse error")))
}

fn ip_arg(args: &[Value], i: usize, function: &str) -> Result<std::net::IpAddr, ExecutionError> {
    match arg(args, i, function)? {
        Value::String(s) => parse_ip(s).ok_or_else(|| err(function, format!("IP Address {s:?} parse error"))),
        _ => match object_arg(args, i, function)? {
            Object::Ip(ip) => Ok(*ip),
            _ => Err(err(function, "expected an IP")),
        },
    }
}

fn ip_family(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Int(if ip_arg(args, 0, "family")?.is_ipv4() { 4 } else { 6 }))
}

fn ip_loopback(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(ip_arg(args, 0, "isLoopback")?.is_loopback()))
}

fn cidr_contains_ip(args: &[Value]) -> Result<Value, ExecutionError> {
    let Object::Cidr(net, len) = object_arg(args, 0, "containsIP")? else {
        return Err(err("containsIP", "expected a CIDR"));
    };
    let ip = ip_arg(args, 1, "containsIP")?;
    let inside = match (net, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
            let mask = if *len == 0 { 0 } else { u32::MAX << (32 - u32::from(*len)) };
            u32::from(*n) & mask == u32::from(a) & mask
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
            let mask = if *len == 0 { 0 } else { u128::MAX << (128 - u32::from(*len)) };
            u128::from(*n) & mask == u128::from(a) & mask
        }
        _ => false,
    };
    Ok(Value::Bool(inside))
}

fn cidr_prefix(args: &[Value]) -> Result<Value, ExecutionError> {
    match object_arg(args, 0, "prefixLength")? {
        Object::Cidr(_, len) => Ok(Value::Int(i64::from(*len))),
        _ => Err(err("prefixLength", "expected a CIDR")),
    }
}

/// The parts of a URL the Kubernetes URL library exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts {
    raw: String,
    scheme: String,
    host: String,
    path: String,
    query: String,
}

fn parse_url(s: &str) -> Option<UrlParts> {
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            (scheme.to_owned(), rest)
        }
        _ if s.starts_with('/') => (String::new(), s),
        _ => return None,
    };
    let (before_query, query) = rest.split_once('?').map_or((rest, ""), |(a, b)| (a, b));
    let before_query = before_query.split('#').next().unwrap_or_default();
    let (host, path) = if scheme.is_empty() {
        (String::new(), before_query.to_owned())
    } else {
        match before_query.find('/') {
            Some(i) => (before_query.get(..i).unwrap_or_default().to_owned(), before_query.get(i..).unwrap_or_default().to_owned()),
            None => (before_query.to_owned(), String::new()),
        }
    };
    let host = host.rsplit_once('@').map_or(host.clone(), |(_, h)| h.to_owned());
    Some(UrlParts { raw: s.to_owned(), scheme, host, path, query: query.split('#').next().unwrap_or_default().to_owned() })
}

fn url_arg(args: &[Value], function: &str) -> Result<UrlParts, ExecutionError> {
    match object_arg(args, 0, function)? {
        Object::Url(u) => Ok(u.clone()),
        _ => Err(err(function, "expected a URL")),
    }
}

fn url_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_url(str_arg(args, 0, "isURL")?).is_some()))
}

fn url_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "url")?;
    parse_url(s).map(|u| object(Object::Url(u))).ok_or_else(|| err("url", format!("URL {s:?} parse error")))
}

fn split_host_port(host: &str) -> (&str, &str) {
    if let Some(rest) = host.strip_prefix('[') && let Some((h, p)) = rest.split_once(']') {
        return (h, p.strip_prefix(':').unwrap_or_default());
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p),
        _ => (host, ""),
    }
}

fn url_scheme(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(url_arg(args, "getScheme")?.scheme))
}

fn url_host(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(url_arg(args, "getHost")?.host))
}

fn url_hostname(args: &[Value]) -> Result<Value, ExecutionError> {
    let u = url_arg(args, "getHostname")?;
    Ok(string(split_host_port(&u.host).0))
}

fn url_port(args: &[Value]) -> Result<Value, ExecutionError> {
    let u = url_arg(args, "getPort")?;
    Ok(string(split_host_port(&u.host).1))
}

fn url_path(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(url_arg(args, "getEscapedPath")?.path))
}

fn url_query(args: &[Value]) -> Result<Value, ExecutionError> {
    let u = url_arg(args, "getQuery")?;
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for pair in u.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match out.iter_mut().find(|(key, _)| key == k) {
            Some((_, vals)) => vals.push(string(v)),
            None => out.push((k.to_owned(), vec![string(v)])),
        }
    }
    let map: HashMap<Key, Value> = out.into_iter().map(|(k, v)| (Key::String(Arc::new(k)), Value::List(Arc::new(v)))).collect();
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

/// An image reference split the way Kyverno's image library splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    raw: String,
    registry: String,
    repository: String,
    tag: String,
    digest: String,
}

fn parse_image(s: &str) -> Option<ImageRef> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase() && !s.contains('@')) {
        return None;
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, d.to_owned()),
        None => (s, String::new()),
    };
    if !digest.is_empty() && !digest.split_once(':').is_some_and(|(a, h)| !a.is_empty() && h.len() >= 32 && h.chars().all(|c| c.is_ascii_hexdigit())) {
        return None;
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest.get(i..).unwrap_or_default().contains('/') => {
            (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default().to_owned())
        }
        _ => (rest, String::new()),
    };
    if name.is_empty() {
        return None;
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => (first.to_owned(), path.to_owned()),
        Some(_) => ("docker.io".to_owned(), name.to_owned()),
        None => ("docker.io".to_owned(), format!("library/{name}")),
    };
    let tag = if tag.is_empty() && digest.is_empty() { "latest".to_owned() } else { tag };
    Some(ImageRef { raw: s.to_owned(), registry, repository, tag, digest })
}

fn image_arg(args: &[Value], function: &str) -> Result<ImageRef, ExecutionError> {
    match object_arg(args, 0, function)? {
        Object::Image(i) => Ok(i.clone()),
        _ => Err(err(function, "expected an Image")),
    }
}

fn image_new(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "image")?;
    parse_image(s).map(|i| object(Object::Image(i))).ok_or_else(|| err("image", format!("could not parse image reference {s:?}")))
}

fn image_is(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(parse_image(str_arg(args, 0, "isImage")?).is_some()))
}

fn image_registry(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(image_arg(args, "registry")?.registry))
}

fn image_repository(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(image_arg(args, "repository")?.repository))
}

fn image_tag(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(image_arg(args, "tag")?.tag))
}

fn image_digest(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(image_arg(args, "digest")?.digest))
}

fn image_identifier(args: &[Value]) -> Result<Value, ExecutionError> {
    let i = image_arg(args, "identifier")?;
    Ok(string(if i.digest.is_empty() { i.tag } else { i.digest }))
}

fn image_contains_digest(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(Value::Bool(!image_arg(args, "containsDigest")?.digest.is_empty()))
}

fn image_metadata(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "image.GetMetadata";
    let reference = str_arg(args, 0, f)?;
    let host = host();
    let canonical = |r: &str| parse_image(r).map(|i| (i.registry, i.repository, i.tag, i.digest));
    let want = canonical(reference);
    host.images
        .iter()
        .find(|(r, _)| r == reference || (want.is_some() && canonical(r) == want))
        .map(|(_, m)| from_json(m))
        .ok_or_else(|| err(f, format!("failed to fetch image metadata for {reference:?}: no registry access (images come from the test context)")))
}

fn parse_service_account(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "parseServiceAccount")?;
    let (ns, name) = s
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .map_or(("", ""), |(ns, name)| (ns, name));
    Ok(map_of(vec![("Namespace", string(ns)), ("Name", string(name))]))
}

// ---- image verification ---------------------------------------------------------------------

/// What `verifyImageSignatures`, `verifyAttestationSignatures` and `extractPayload` call: the
/// runtime implements it for one ImageValidatingPolicy (its attestors and attestations) and
/// installs it with [`with_image_verifier`] while the policy's validations run.
pub trait ImageVerifier: std::fmt::Debug + Send + Sync {
    /// How many of the named attestors verify a signature of the image.
    fn verify_signatures(&self, image: &str, attestors: &[String]) -> Result<i64, String>;
    /// How many of the named attestors verify the named attestation of the image.
    fn verify_attestations(&self, image: &str, attestation: &str, attestors: &[String]) -> Result<i64, String>;
    /// The payload of the named attestation of the image.
    fn payload(&self, image: &str, attestation: &str) -> Result<Json, String>;
}

thread_local! {
    static IMAGE_VERIFIER: RefCell<Option<Arc<dyn ImageVerifier>>> = const { RefCell::new(None) };
}

/// Runs `f` with `verifier` answering the image verification functions on this thread.
pub fn with_image_verifier<R>(verifier: Arc<dyn ImageVerifier>, f: impl FnOnce() -> R) -> R {
    let previous = IMAGE_VERIFIER.with(|v| v.replace(Some(verifier)));
    let out = f();
    IMAGE_VERIFIER.with(|v| *v.borrow_mut() = previous);
    out
}

fn image_verifier(function: &str) -> Result<Arc<dyn ImageVerifier>, ExecutionError> {
    IMAGE_VERIFIER
        .with(|v| v.borrow().clone())
        .ok_or_else(|| err(function, "image verification is only available in an ImageValidatingPolicy"))
}

/// Attestor names from a list of attestor names or attestor objects (`attestors.x`).
fn attestor_names(args: &[Value], i: usize, function: &str) -> Result<Vec<String>, ExecutionError> {
    let mut names = Vec::new();
    for item in list_arg(args, i, function)? {
        match item {
            Value::String(s) => names.push(s.as_str().to_owned()),
            Value::Map(_) => match to_json(item).ok().and_then(|j| j.get("name").and_then(Json::as_str).map(str::to_owned)) {
                Some(n) => names.push(n),
                None => return Err(err(function, "an attestor must be a name or an attestor with a name")),
            },
            other => return Err(err(function, format!("an attestor must be a name or an attestor, got {}", other.type_of()))),
        }
    }
    Ok(names)
}

/// An attestation name, from its name or from `attestations.x`.
fn attestation_name(args: &[Value], i: usize, function: &str) -> Result<String, ExecutionError> {
    match arg(args, i, function)? {
        Value::String(s) => Ok(s.as_str().to_owned()),
        item @ Value::Map(_) => to_json(item)
            .ok()
            .and_then(|j| j.get("name").and_then(Json::as_str).map(str::to_owned))
            .ok_or_else(|| err(function, "an attestation must be a name or an attestation with a name")),
        other => Err(err(function, format!("an attestation must be a name, got {}", other.type_of()))),
    }
}

fn verify_image_signatures(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "verifyImageSignatures";
    let image = str_arg(args, 0, f)?;
    let attestors = attestor_names(args, 1, f)?;
    image_verifier(f)?.verify_signatures(image, &attestors).map(Value::Int).map_err(|e| err(f, e))
}

fn verify_attestation_signatures(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "verifyAttestationSignatures";
    let image = str_arg(args, 0, f)?;
    let attestation = attestation_name(args, 1, f)?;
    let attestors = attestor_names(args, 2, f)?;
    image_verifier(f)?.verify_attestations(image, &attestation, &attestors).map(Value::Int).map_err(|e| err(f, e))
}

fn extract_payload(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "extractPayload";
    let image = str_arg(args, 0, f)?;
    let attestation = attestation_name(args, 1, f)?;
    image_verifier(f)?.payload(image, &attestation).map(|j| from_json(&j)).map_err(|e| err(f, e))
}

// ---- host-backed functions -----------------------------------------------------------------

/// What the outside world looks like to one evaluation: the resources a test declares (for
/// `resource.Get/List`), recorded HTTP responses and global context entries. Offline, always.
#[derive(Clone, Debug, Default)]
pub struct Host {
    pub resources: Vec<Json>,
    /// `(method, url)` -> response body.
    pub http: Vec<(String, String, Json)>,
    pub global_context: Vec<(String, Json)>,
    /// Image metadata by reference (a test context's `spec.images`), for `image.GetMetadata`.
    pub images: Vec<(String, Json)>,
    /// The time `time.now()` answers, when a test pins it.
    pub now: Option<chrono::DateTime<chrono::FixedOffset>>,
}

thread_local! {
    static HOST: RefCell<Option<Arc<Host>>> = const { RefCell::new(None) };
    /// What `generator.Apply` produced during the current evaluation on this thread.
    static GENERATED: RefCell<Vec<Json>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` and returns, with its result, the resources `generator.Apply` produced meanwhile.
pub fn collect_generated<R>(f: impl FnOnce() -> R) -> (R, Vec<Json>) {
    let previous = GENERATED.with(|g| std::mem::take(&mut *g.borrow_mut()));
    let out = f();
    let produced = GENERATED.with(|g| std::mem::replace(&mut *g.borrow_mut(), previous));
    (out, produced)
}

fn generator_apply(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "generator.Apply";
    let ns = str_arg(args, 0, f)?.to_owned();
    let mut resources = Vec::new();
    for item in list_arg(args, 1, f)? {
        let mut r = to_json(item).map_err(|e| err(f, e))?;
        let Some(obj) = r.as_object_mut() else { return Err(err(f, "every resource must be an object")) };
        let meta = obj.entry("metadata").or_insert_with(|| Json::Object(serde_json::Map::new()));
        if let Some(m) = meta.as_object_mut() && !ns.is_empty() {
            m.insert("namespace".into(), Json::String(ns.clone()));
        }
        resources.push(r);
    }
    GENERATED.with(|g| g.borrow_mut().extend(resources));
    Ok(Value::Bool(true))
}

/// Runs `f` with `host` answering the host-backed functions on this thread. The evaluation is
/// synchronous, so a thread-local is enough and keeps the overloads plain functions.
pub fn with_host<R>(host: &Arc<Host>, f: impl FnOnce() -> R) -> R {
    let previous = HOST.with(|h| h.replace(Some(Arc::clone(host))));
    let out = f();
    HOST.with(|h| *h.borrow_mut() = previous);
    out
}

/// The host installed on this thread (an empty one when none is).
pub fn current_host() -> Arc<Host> {
    host()
}

fn host() -> Arc<Host> {
    HOST.with(|h| h.borrow().clone()).unwrap_or_default()
}

/// The plural resource name Kubernetes uses for a kind (`Pod` -> `pods`, `Ingress` ->
/// `ingresses`, `NetworkPolicy` -> `networkpolicies`).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with("x") || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

fn resource_matches(r: &Json, api_version: &str, resource: &str, namespace: &str) -> bool {
    let kind = r.get("kind").and_then(Json::as_str).unwrap_or_default();
    let api = r.get("apiVersion").and_then(Json::as_str).unwrap_or_default();
    let ns = r.pointer("/metadata/namespace").and_then(Json::as_str).unwrap_or_default();
    (api_version.is_empty() || api == api_version)
        && (plural(kind) == resource.to_ascii_lowercase() || kind.eq_ignore_ascii_case(resource))
        && (namespace.is_empty() || ns == namespace || ns.is_empty() && namespace == "default")
}

fn resource_get(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "resource.Get";
    let (api, res, ns, name) = (str_arg(args, 0, f)?, str_arg(args, 1, f)?, str_arg(args, 2, f)?, str_arg(args, 3, f)?);
    let host = host();
    host.resources
        .iter()
        .find(|r| resource_matches(r, api, res, ns) && r.pointer("/metadata/name").and_then(Json::as_str) == Some(name))
        .map(from_json)
        .ok_or_else(|| err(f, format!("{res} {name:?} not found")))
}

fn resource_list(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "resource.List";
    let (api, res, ns) = (str_arg(args, 0, f)?, str_arg(args, 1, f)?, str_arg(args, 2, f)?);
    let host = host();
    let items: Vec<Value> = host.resources.iter().filter(|r| resource_matches(r, api, res, ns)).map(from_json).collect();
    Ok(map_of(vec![
        ("apiVersion", string(api)),
        ("kind", string("List")),
        ("items", Value::List(Arc::new(items))),
    ]))
}

fn http_lookup(method: &str, url: &str) -> Result<Value, ExecutionError> {
    let host = host();
    host.http
        .iter()
        .find(|(m, u, _)| m.eq_ignore_ascii_case(method) && u == url)
        .map(|(_, _, body)| from_json(body))
        .ok_or_else(|| err(&format!("http.{method}"), format!("no recorded response for {method} {url} (requests never leave the machine)")))
}

fn http_get(args: &[Value]) -> Result<Value, ExecutionError> {
    http_lookup("Get", str_arg(args, 0, "http.Get")?)
}

fn http_post(args: &[Value]) -> Result<Value, ExecutionError> {
    http_lookup("Post", str_arg(args, 0, "http.Post")?)
}

fn global_context_get(args: &[Value]) -> Result<Value, ExecutionError> {
    let f = "globalContext.Get";
    let (name, projection) = (str_arg(args, 0, f)?, str_arg(args, 1, f)?);
    let host = host();
    let entry = host.global_context.iter().find(|(n, _)| n == name).map(|(_, v)| v).ok_or_else(|| err(f, format!("global context entry {name:?} not found")))?;
    if projection.is_empty() {
        return Ok(from_json(entry));
    }
    entry.get(projection).map(from_json).ok_or_else(|| err(f, format!("projection {projection:?} not found in entry {name:?}")))
}

fn json_unmarshal(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "json.unmarshal")?;
    serde_json::from_str::<Json>(s).map(|v| from_json(&v)).map_err(|e| err("json.unmarshal", e))
}

fn yaml_parse(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "yaml.parse")?;
    serde_yaml_ng::from_str::<Json>(s).map(|v| from_json(&v)).map_err(|e| err("yaml.parse", e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_md5(args: &[Value]) -> Result<Value, ExecutionError> {
    use md5::Digest;
    Ok(string(hex(&md5::Md5::digest(str_arg(args, 0, "md5")?.as_bytes()))))
}

fn hash_sha1(args: &[Value]) -> Result<Value, ExecutionError> {
    use sha1::Digest;
    Ok(string(hex(&sha1::Sha1::digest(str_arg(args, 0, "sha1")?.as_bytes()))))
}

fn hash_sha256(args: &[Value]) -> Result<Value, ExecutionError> {
    use sha2::Digest;
    Ok(string(hex(&sha2::Sha256::digest(str_arg(args, 0, "sha256")?.as_bytes()))))
}

fn time_now(_args: &[Value]) -> Result<Value, ExecutionError> {
    let now = host().now.unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    Ok(Value::Timestamp(now))
}

/// A duration as Go prints it (`1h2m3s`), which is how Kubernetes renders durations in JSON.
pub fn format_duration(d: chrono::Duration) -> String {
    let total = d.num_nanoseconds().unwrap_or(i64::MAX);
    if total == 0 {
        return "0s".into();
    }
    let sign = if total < 0 { "-" } else { "" };
    let mut n = total.unsigned_abs();
    let h = n / 3_600_000_000_000;
    n %= 3_600_000_000_000;
    let m = n / 60_000_000_000;
    n %= 60_000_000_000;
    let s = n as f64 / 1e9;
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// The text of a value in a message: strings as they are, other values as CEL's `string()`
/// would render them, falling back to JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().to_owned(),
        Value::Map(m) => {
            let mut keys: Vec<String> = m.map.keys().map(key_string).collect();
            keys.sort();
            to_json(v).map(|j| j.to_string()).unwrap_or_else(|_| keys.join(","))
        }
        other => to_json(other).map(|j| j.to_string()).unwrap_or_else(|_| format!("{other:?}")),
    }
}
