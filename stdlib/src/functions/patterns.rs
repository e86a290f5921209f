//! Kyverno's matching functions: regular expressions, wildcards, semantic versions, and `random`,
//! which generates a string matching a regular expression.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use regex::{NoExpand, Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::Value;

use super::collections::scalar_to_string;
use super::strings::kyverno;
use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, ErrorKind, EvalError};
use crate::semver::{Range, Version};
use crate::wildcard;

const STRING: &[Type] = &[Type::String];
const STRING_OR_NUMBER: &[Type] = &[Type::String, Type::Number];

/// The most memory one compiled regular expression may take. Patterns come from policies, and a
/// pattern like `(a{1000}){1000}` must fail rather than exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How many times `random` repeats an unbounded `*` or `+`, at most (the Go generator Kyverno
/// uses stops at 10 as well).
const RANDOM_REPEAT_LIMIT: u32 = 10;

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!("regex_replace_all", [Param::required("regex", STRING), Param::required("src", STRING_OR_NUMBER), Param::required("replace", STRING_OR_NUMBER)], Type::String,
        "Replaces every match of regex in src; `$1` and `${name}` in replace expand to groups.", "regex_replace_all('([0-9])', 'a1b2', '<$1>') == 'a<1>b<2>'", regex_replace_all),
    kyverno!("regex_replace_all_literal", [Param::required("regex", STRING), Param::required("src", STRING_OR_NUMBER), Param::required("replace", STRING_OR_NUMBER)], Type::String,
        "Replaces every match of regex in src with replace taken literally.", "regex_replace_all_literal('[0-9]', 'a1b2', '$') == 'a$b$'", regex_replace_all_literal),
    kyverno!("regex_match", [Param::required("regex", STRING), Param::required("src", STRING_OR_NUMBER)], Type::Boolean,
        "Returns whether regex matches anywhere in src.", "regex_match('^v[0-9]+$', 'v12') == `true`", regex_match),
    kyverno!("pattern_match", [Param::required("pattern", STRING), Param::required("src", STRING_OR_NUMBER)], Type::Boolean,
        "Returns whether the wildcard pattern matches all of src: `*` matches any run of characters, `?` one character.", "pattern_match('nginx:*', 'nginx:1.25') == `true`", pattern_match),
    kyverno!("semver_compare", [Param::required("version", STRING), Param::required("range", STRING)], Type::Boolean,
        "Returns whether a semantic version is in a range such as `>=1.2.0 <2.0.0`.", "semver_compare('1.2.3', '>1.0.0') == `true`", semver_compare),
    FunctionDecl {
        name: "random",
        params: &[Param::required("pattern", STRING)],
        returns: Type::String,
        purity: Purity::Impure,
        dialect: Dialect::Kyverno,
        doc: "Generates a random string matching a regular expression.",
        example: "length(random('[a-z]{8}')) == `8`",
        implementation: random,
    },
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

/// Compiled regular expressions by pattern. Policies use a few fixed patterns over and over, and
/// compiling one costs far more than matching it. The cache is emptied when it fills up, which
/// bounds its memory whatever patterns requests bring.
static REGEX_CACHE: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
const REGEX_CACHE_ENTRIES: usize = 512;

fn compile(name: &str, pattern: &str) -> Result<Regex, EvalError> {
    if let Ok(cache) = REGEX_CACHE.lock()
        && let Some(regex) = cache.get(pattern)
    {
        return Ok(regex.clone());
    }
    let regex = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| EvalError::function(name, e))?;
    if let Ok(mut cache) = REGEX_CACHE.lock() {
        if cache.len() >= REGEX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(pattern.to_string(), regex.clone());
    }
    Ok(regex)
}

/// A string or number argument as Kyverno converts it to text.
fn text_arg(call: &Call, index: usize) -> Result<String, EvalError> {
    scalar_to_string(call.value(index)).ok_or_else(|| {
        EvalError::function(call.decl.name, format!("{} argument is expected of String or Real type", index + 1))
    })
}

fn regex_replace_all(call: &mut Call) -> Result<Value, EvalError> {
    let regex = compile(call.decl.name, call.string(0)?)?;
    let (src, replacement) = (text_arg(call, 1)?, text_arg(call, 2)?);
    Ok(Value::String(regex.replace_all(&src, replacement.as_str()).into_owned()))
}

fn regex_replace_all_literal(call: &mut Call) -> Result<Value, EvalError> {
    let regex = compile(call.decl.name, call.string(0)?)?;
    let (src, replacement) = (text_arg(call, 1)?, text_arg(call, 2)?);
    Ok(Value::String(regex.replace_all(&src, NoExpand(&replacement)).into_owned()))
}

fn regex_match(call: &mut Call) -> Result<Value, EvalError> {
    let regex = compile(call.decl.name, call.string(0)?)?;
    Ok(Value::Bool(regex.is_match(&text_arg(call, 1)?)))
}

fn pattern_match(call: &mut Call) -> Result<Value, EvalError> {
    Ok(Value::Bool(wildcard::matches(call.string(0)?, &text_arg(call, 1)?)))
}

fn semver_compare(call: &mut Call) -> Result<Value, EvalError> {
    // Kyverno ignores a version that does not parse and compares 0.0.0 instead.
    let version = Version::parse(call.string(0)?).unwrap_or_else(|_| Version::zero());
    let range = Range::parse(call.string(1)?).map_err(|e| EvalError::new(ErrorKind::Function, e.to_string()))?;
    Ok(Value::Bool(range.matches(&version)))
}

fn random(call: &mut Call) -> Result<Value, EvalError> {
    let pattern = call.string(0)?;
    if pattern.is_empty() {
        return Err(EvalError::new(ErrorKind::Function, "no pattern provided"));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(pattern)
        .map_err(|e| EvalError::function("random", e))?;
    let mut generator = Generator { state: seed(), out: String::new(), budget: 100_000 };
    generator.generate(&hir)?;
    call.charge(generator.out.len() as u64)?;
    Ok(Value::String(generator.out))
}

/// A fresh seed per call: the process's random hasher keys plus a counter and the clock.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    hasher.finish() | 1
}

/// Walks a parsed regular expression and emits one string it matches. Randomness comes from
/// xorshift: this is for generating names, not secrets.
struct Generator {
    state: u64,
    out: String,
    /// Characters still allowed, so nested repetitions cannot build huge strings.
    budget: usize,
}

impl Generator {
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// A uniform choice in `0..n`; `n` must not be 0.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn push(&mut self, c: char) -> Result<(), EvalError> {
        if self.budget == 0 {
            return Err(EvalError::function("random", "the pattern generates too long a string"));
        }
        self.budget -= 1;
        self.out.push(c);
        Ok(())
    }

    fn generate(&mut self, hir: &Hir) -> Result<(), EvalError> {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => Ok(()),
            HirKind::Literal(literal) => {
                for c in String::from_utf8_lossy(&literal.0).chars() {
                    self.push(c)?;
                }
                Ok(())
            }
            HirKind::Class(Class::Unicode(class)) => {
                let total: u64 = class.ranges().iter().map(|r| u64::from(r.end()) - u64::from(r.start()) + 1).sum();
                if total == 0 {
                    return Ok(());
                }
                let mut pick = self.below(total);
                for range in class.ranges() {
                    let size = u64::from(range.end()) - u64::from(range.start()) + 1;
                    if pick < size {
                        let code = u32::try_from(u64::from(range.start()) + pick).unwrap_or(0);
                        return self.push(char::from_u32(code).unwrap_or(range.start()));
                    }
                    pick -= size;
                }
                Ok(())
            }
            HirKind::Class(Class::Bytes(class)) => {
                let total: u64 = class.ranges().iter().map(|r| u64::from(r.end()) - u64::from(r.start()) + 1).sum();
                let mut pick = self.below(total);
                for range in class.ranges() {
                    let size = u64::from(range.end()) - u64::from(range.start()) + 1;
                    if pick < size {
                        let byte = u8::try_from(u64::from(range.start()) + pick).unwrap_or(b'?');
                        return self.push(char::from(byte));
                    }
                    pick -= size;
                }
                Ok(())
            }
            HirKind::Repetition(repetition) => {
                let min = repetition.min;
                let max = repetition.max.unwrap_or(min.saturating_add(RANDOM_REPEAT_LIMIT)).max(min);
                let count = min + u32::try_from(self.below(u64::from(max - min) + 1)).unwrap_or(0);
                for _ in 0..count {
                    self.generate(&repetition.sub)?;
                }
                Ok(())
            }
            HirKind::Capture(capture) => self.generate(&capture.sub),
            HirKind::Concat(parts) => parts.iter().try_for_each(|part| self.generate(part)),
            HirKind::Alternation(options) => {
                let index = usize::try_from(self.below(options.len() as u64)).unwrap_or(0);
                match options.get(index) {
                    Some(option) => self.generate(option),
                    None => Ok(()),
                }
            }
        }
    }
}
