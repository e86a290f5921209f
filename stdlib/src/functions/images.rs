//! Kyverno's functions about references to the outside world: image references and URLs.

use std::net::{IpAddr, ToSocketAddrs};

use serde_json::Value;

use super::strings::kyverno;
use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, ErrorKind, EvalError};

const STRING: &[Type] = &[Type::String];

/// Kyverno's default registry and the repository prefix Docker Hub gives one-part names.
const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

static FUNCTIONS: &[FunctionDecl] = &[
    kyverno!("image_normalize", [Param::required("image", STRING)], Type::String,
        "Normalizes an image reference: adds the default registry docker.io (and library/) and the tag latest when there is no digest.",
        "image_normalize('nginx') == 'docker.io/library/nginx:latest'", image_normalize),
    FunctionDecl {
        name: "is_external_url",
        params: &[Param::required("url", STRING)],
        returns: Type::Boolean,
        // It resolves host names through DNS, so its answer can change between calls.
        purity: Purity::Impure,
        dialect: Dialect::Kyverno,
        doc: "Returns whether a URL's host is outside the cluster: not a loopback or private address (host names are resolved).",
        example: "is_external_url('http://10.0.0.1/') == `false`",
        implementation: is_external_url,
    },
];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn image_normalize(call: &mut Call) -> Result<Value, EvalError> {
    let image = call.string(0)?;
    normalize_image(image).map(Value::String).map_err(|reason| {
        EvalError::function("image_normalize", format!("bad image: {image}: invalid reference format: {reason}"))
    })
}

/// Splits `[registry/]path[:tag][@digest]` and fills in Kyverno's defaults, Docker Hub's
/// `library/` prefix included.
pub fn normalize_image(image: &str) -> Result<String, &'static str> {
    let r = ImageRef::parse(image)?;
    let path = if r.registry == DEFAULT_REGISTRY && !r.path.contains('/') { format!("library/{}", r.path) } else { r.path };
    Ok(match (r.digest, r.tag) {
        (Some(digest), _) => format!("{}/{path}@{digest}", r.registry),
        (_, tag) => format!("{}/{path}:{}", r.registry, tag.as_deref().unwrap_or(DEFAULT_TAG)),
    })
}

/// An image reference split as Kyverno's `images` variable shows it: the registry defaults to
/// `docker.io` (without Docker Hub's `library/`), and the tag to `latest` when there is neither
/// a tag nor a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    /// The repository path, e.g. `some-repository/busybox`.
    pub path: String,
    /// The last component of the path, e.g. `busybox`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> Result<ImageRef, &'static str> {
        if image.is_empty() {
            return Err("empty reference");
        }
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (image, None),
        };
        if let Some(digest) = digest {
            let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
                !algorithm.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !valid {
                return Err("invalid digest");
            }
        }
        // The registry is the first component if it looks like a host: it has a dot or a port,
        // or is `localhost`, or has upper-case letters (which a repository may not).
        let (registry, remainder) = match rest.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, remainder)
            }
            _ => (DEFAULT_REGISTRY, rest),
        };
        // A tag follows the last colon after the last slash.
        let last_slash = remainder.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match remainder.get(last_slash..).and_then(|tail| tail.rfind(':')) {
            Some(i) => (remainder.get(..last_slash + i).unwrap_or(remainder), remainder.get(last_slash + i + 1..)),
            None => (remainder, None),
        };
        if path.is_empty() || path.split('/').any(|part| !valid_path_component(part)) {
            return Err("repository name must be lowercase letters, digits and separators");
        }
        if let Some(tag) = tag
            && (tag.is_empty()
                || tag.len() > 128
                || !tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                || tag.starts_with(['.', '-']))
        {
            return Err("invalid tag");
        }
        let tag = match (tag, digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            path: path.to_owned(),
            name: path.rsplit('/').next().unwrap_or(path).to_owned(),
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// `registry/path@digest`, or `registry/path:tag` without a digest.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}/{}@{digest}", self.registry, self.path),
            (None, tag) => format!("{}/{}:{}", self.registry, self.path, tag.as_deref().unwrap_or_default()),
        }
    }

    /// `registry/path:tag` (the tag may be empty when the image is pinned by digest only).
    pub fn reference_with_tag(&self) -> String {
        format!("{}/{}:{}", self.registry, self.path, self.tag.as_deref().unwrap_or_default())
    }

    /// The object Kyverno's `images.<type>.<container>` variables hold.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("registry".into(), Value::String(self.registry.clone()));
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("path".into(), Value::String(self.path.clone()));
        if let Some(tag) = &self.tag {
            m.insert("tag".into(), Value::String(tag.clone()));
        }
        if let Some(digest) = &self.digest {
            m.insert("digest".into(), Value::String(digest.clone()));
        }
        m.insert("reference".into(), Value::String(self.reference()));
        m.insert("referenceWithTag".into(), Value::String(self.reference_with_tag()));
        Value::Object(m)
    }
}

/// A repository path component: lower-case alphanumerics separated by `.`, `_`, `__` or dashes.
fn valid_path_component(part: &str) -> bool {
    let starts_and_ends_alnum = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().last().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    starts_and_ends_alnum(part)
        && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn is_external_url(call: &mut Call) -> Result<Value, EvalError> {
    let host = url_host(call.string(0)?);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Value::Bool(!is_internal(ip)));
    }
    let addresses = (host.as_str(), 0)
        .to_socket_addrs()
        .map_err(|e| EvalError::new(ErrorKind::Function, format!("lookup {host}: {e}")))?;
    Ok(Value::Bool(!addresses.into_iter().any(|address| is_internal(address.ip()))))
}

/// The host of a URL as Go's `url.Parse(..).Hostname()` gives it: empty without `//`, without
/// port, user information and IPv6 brackets.
fn url_host(url: &str) -> String {
    let Some((_, after)) = url.split_once("//") else { return String::new() };
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default().to_string();
    }
    host_port.split(':').next().unwrap_or_default().to_string()
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments().first().is_some_and(|s| s & 0xfe00 == 0xfc00))
        }
    }
}
