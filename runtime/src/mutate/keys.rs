//! The strategic-merge keys of built-in Kubernetes types, read from `merge_keys.tsv`.
//!
//! The table is generated from the Kubernetes OpenAPI data (see `runtime/tests/merge_keys_table.rs`)
//! and compiled into the binary; it is parsed once, on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

/// How a field's list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Not a merged list: a map on the way to one.
    Object,
    /// A list of maps merged by this key.
    Key(String),
    /// A list of scalars merged as a set.
    Set,
}

#[derive(Clone, Debug)]
pub struct FieldInfo {
    /// The field's type (element type for lists), `-` for scalars.
    pub ty: String,
    pub strategy: ListStrategy,
}

#[derive(Default)]
pub struct Table {
    kinds: HashMap<(String, String), String>,
    fields: HashMap<(String, String), FieldInfo>,
}

static TABLE: OnceLock<Table> = OnceLock::new();

const DATA: &str = include_str!("merge_keys.tsv");

pub fn table() -> &'static Table {
    TABLE.get_or_init(|| Table::parse(DATA))
}

impl Table {
    pub fn parse(text: &str) -> Table {
        let mut t = Table::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            match cols.as_slice() {
                ["kind", api, kind, ty] => {
                    t.kinds.insert(((*api).to_owned(), (*kind).to_owned()), (*ty).to_owned());
                }
                ["field", owner, field, ty, strategy] => {
                    let strategy = match *strategy {
                        "set" => ListStrategy::Set,
                        s => match s.strip_prefix("key=") {
                            Some(k) => ListStrategy::Key(k.to_owned()),
                            None => ListStrategy::Object,
                        },
                    };
                    t.fields.insert(((*owner).to_owned(), (*field).to_owned()), FieldInfo { ty: (*ty).to_owned(), strategy });
                }
                _ => {}
            }
        }
        t
    }

    /// The root type of a resource, when it is a built-in kind.
    pub fn root(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.kinds.get(&(api_version.to_owned(), kind.to_owned())).map(String::as_str)
    }

    pub fn field(&self, ty: &str, field: &str) -> Option<&FieldInfo> {
        self.fields.get(&(ty.to_owned(), field.to_owned()))
    }
}
