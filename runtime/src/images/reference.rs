//! Image references as Kyverno normalises them: `nginx` is `docker.io/nginx:latest`,
//! `ghcr.io/a/b@sha256:..` keeps its digest, and a reference with both a tag and a digest is
//! written with the digest only. Image references in policies match this normal form.

use serde_json::Value;

/// One image found in a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub registry: String,
    pub path: String,
    pub tag: String,
    pub digest: String,
    /// The JSON pointer of the field holding the image, for the digest patch.
    pub pointer: String,
    /// The extractor group (`containers`, `initContainers`, ... or a custom name).
    pub group: String,
    /// The container name (or custom key), for the images context.
    pub name: String,
}

impl ImageInfo {
    /// Parses an image reference; `None` when it is not a valid reference.
    pub fn parse(image: &str, pointer: &str, group: &str, name: &str) -> Option<ImageInfo> {
        let image = image.trim();
        if image.is_empty() || image.chars().any(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => {
                let valid = d.split_once(':').is_some_and(|(alg, hex)| !alg.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
                if !valid {
                    return None;
                }
                (r, d.to_owned())
            }
            None => (image, String::new()),
        };
        // A tag is the part after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name_part, tag) = match rest.get(last_slash..).and_then(|tail| tail.rfind(':')) {
            Some(i) => {
                let cut = last_slash + i;
                (rest.get(..cut).unwrap_or(rest), rest.get(cut + 1..).unwrap_or_default().to_owned())
            }
            None => (rest, String::new()),
        };
        if name_part.is_empty() || name_part.ends_with('/') || name_part.starts_with('/') {
            return None;
        }
        let (registry, path) = match name_part.split_once('/') {
            Some((first, tail)) if first.contains('.') || first.contains(':') || first == "localhost" => (first.to_owned(), tail.to_owned()),
            _ => ("docker.io".to_owned(), name_part.to_owned()),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let tag = if tag.is_empty() && digest.is_empty() { "latest".to_owned() } else { tag };
        Some(ImageInfo { registry, path, tag, digest, pointer: pointer.to_owned(), group: group.to_owned(), name: name.to_owned() })
    }

    /// `registry/path`, without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    /// The reference as Kyverno prints it: with the digest when there is one, else the tag.
    pub fn reference(&self) -> String {
        if self.digest.is_empty() {
            format!("{}/{}:{}", self.registry, self.path, self.tag)
        } else {
            format!("{}/{}@{}", self.registry, self.path, self.digest)
        }
    }

    /// The reference with its tag, whatever the digest (the value a digest patch extends).
    pub fn tagged(&self) -> String {
        if self.tag.is_empty() {
            self.repository()
        } else {
            format!("{}/{}:{}", self.registry, self.path, self.tag)
        }
    }

    /// The `images` context entry Kyverno adds for this image.
    pub fn to_context(&self) -> Value {
        serde_json::json!({
            "registry": self.registry,
            "path": self.path,
            "name": self.path.rsplit('/').next().unwrap_or_default(),
            "tag": self.tag,
            "digest": self.digest,
            "reference": self.reference(),
            "referenceWithTag": self.tagged(),
        })
    }
}

impl std::fmt::Display for ImageInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reference())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageInfo::parse(s, "", "", "").map(|i| i.reference()).unwrap_or_else(|| "invalid".into())
    }

    #[test]
    fn normal_forms() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let cases = [
            ("nginx", "docker.io/nginx:latest".to_owned()),
            ("library/nginx:1.25", "docker.io/library/nginx:1.25".to_owned()),
            ("ghcr.io/kyverno/test:v1", "ghcr.io/kyverno/test:v1".to_owned()),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest".to_owned()),
            ("localhost/app:v2", "localhost/app:v2".to_owned()),
            (&*format!("127.0.0.1:5000/app:v1@{d}"), format!("127.0.0.1:5000/app@{d}")),
            ("ghcr.io/a@sha256:zz", "invalid".to_owned()),
            ("", "invalid".to_owned()),
            ("Upper/Case", "invalid".to_owned()),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "{input}");
        }
    }

    #[test]
    fn tagged_keeps_the_tag_of_a_pinned_reference() {
        let i = ImageInfo::parse("r.io/a:v1@sha256:00", "/spec/containers/0/image", "containers", "a").unwrap();
        assert_eq!(i.tagged(), "r.io/a:v1");
        assert_eq!(i.reference(), "r.io/a@sha256:00");
    }
}
