//! Kyverno's encoding functions: base64, hashes, and parsing JSON and YAML text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::strings::kyverno;
use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, ErrorKind, EvalError};

const STRING: &[Type] = &[Type::String];

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!("base64_decode", [Param::required("str", STRING)], Type::String,
        "Decodes standard, padded base64.", "base64_decode('aGk=') == 'hi'", base64_decode),
    kyverno!("base64_encode", [Param::required("str", STRING)], Type::String,
        "Encodes a string as standard, padded base64.", "base64_encode('hi') == 'aGk='", base64_encode),
    kyverno!("sha256", [Param::required("str", STRING)], Type::String,
        "Returns the SHA-256 digest of a string, in lower-case hex.", "length(sha256('a')) == `64`", sha256),
    kyverno!("sha1", [Param::required("str", STRING)], Type::String,
        "Returns the SHA-1 digest of a string, in lower-case hex.", "length(sha1('a')) == `40`", sha1),
    kyverno!("md5", [Param::required("str", STRING)], Type::String,
        "Returns the MD5 digest of a string, in lower-case hex.", "md5('') == 'd41d8cd98f00b204e9800998ecf8427e'", md5),
    kyverno!("parse_json", [Param::required("str", STRING)], Type::Any,
        "Parses JSON text into a value; the opposite of to_string.", "parse_json('{\"a\": 1}').a == `1`", parse_json),
    kyverno!("parse_yaml", [Param::required("str", STRING)], Type::Any,
        "Parses YAML text into a value, if it can be represented as JSON.", "parse_yaml('a: 1').a == `1`", parse_yaml),
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn failure(message: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::Function, message)
}

fn base64_decode(call: &mut Call) -> Result<Value, EvalError> {
    let bytes = STANDARD.decode(call.string(0)?).map_err(|e| {
        // Go names the offset of the first bad byte; so does Kyverno's error.
        let offset = match e {
            base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
            _ => call.string(0).map_or(0, str::len),
        };
        failure(format!("illegal base64 data at input byte {offset}"))
    })?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn base64_encode(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::String(STANDARD.encode(call.string(0)?)))
}

fn hex(bytes: &[u8]) -> Value {
    Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn sha256(call: &mut Call) -> Result<Value, EvalError> {
    Ok(hex(&Sha256::digest(call.string(0)?.as_bytes())))
}

fn sha1(call: &mut Call) -> Result<Value, EvalError> {
    Ok(hex(&Sha1::digest(call.string(0)?.as_bytes())))
}

fn md5(call: &mut Call) -> Result<Value, EvalError> {
    Ok(hex(&Md5::digest(call.string(0)?.as_bytes())))
}

fn parse_json(call: &mut Call) -> Result<Value, EvalError> {
    call.charge(call.string(0)?.len() as u64)?;
    let text = call.string(0)?;
    serde_json::from_str(text).map_err(|e| failure(e.to_string()))
}

fn parse_yaml(call: &mut Call) -> Result<Value, EvalError> {
    call.charge(call.string(0)?.len() as u64)?;
    let text = call.string(0)?;
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| failure(e.to_string()))
}
