//! The matching document: a JSON text parsed once into flat arrays that native matchers walk
//! without chasing pointers or hashing.
//!
//! Every value is a 16-byte [`DNode`]; an object's members are a contiguous run of
//! [`Member`]s (key id, value node) and an array's elements a contiguous run of node ids.
//! Object keys are interned against a [`KeyTable`] built from the policy set at load: a key the
//! policies never look up gets [`NO_KEY`], so a field lookup is a scan comparing `u32`s. Strings
//! without escapes borrow the input bytes; only escaped strings are copied.
//!
//! The parser accepts exactly what `serde_json::from_slice::<Value>` accepts (UTF-8, RFC 8259,
//! nesting up to 128 levels, no lone surrogates, duplicate keys where the last one wins) and
//! [`Doc::to_value`] rebuilds the same `Value`, so the interpreter can take over at any point.
//! Node 0 is always a JSON `null`: the matchers use it for absent fields.

use serde_json::{Map, Number, Value};

use crate::interp::scalar::Scalar;
use crate::json_text::plain_run;

/// The key id of a key no policy looks up.
pub const NO_KEY: u32 = u32::MAX;

/// serde_json's default recursion limit; deeper documents are rejected the same way.
const MAX_DEPTH: usize = 128;

pub const TAG_NULL: u32 = 0;
pub const TAG_FALSE: u32 = 1;
pub const TAG_TRUE: u32 = 2;
/// An integer serde_json keeps as `i64`; `a`/`b` hold the low/high 32 bits.
pub const TAG_INT: u32 = 3;
/// A positive integer above `i64::MAX`.
pub const TAG_UINT: u32 = 4;
pub const TAG_FLOAT: u32 = 5;
/// A string borrowed from the input: `a` is the byte offset, `len` the length.
pub const TAG_STR: u32 = 6;
/// An unescaped string copied into the document's own text buffer.
pub const TAG_STR_OWNED: u32 = 7;
/// `a` is the first element in `elems`, `len` the count.
pub const TAG_ARRAY: u32 = 8;
/// `a` is the first member in `members`, `len` the count.
pub const TAG_OBJECT: u32 = 9;

/// One value. `#[repr(C)]` because native code reads `tag`, `len` and `a` at fixed offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DNode {
    pub tag: u32,
    pub len: u32,
    pub a: u32,
    pub b: u32,
}

/// One object member. `#[repr(C)]`: native code reads `key` and `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Member {
    pub key: u32,
    pub value: u32,
    /// Where the key's text sits (offset, length, owned flag in the top bit of `key_len`).
    pub key_at: u32,
    pub key_len: u32,
}

const OWNED_BIT: u32 = 1 << 31;

/// Whether two byte strings are equal. Field names are short, and comparing them as one or two
/// overlapping words inline is cheaper than a call into the C library's `memcmp` per member
/// (the lookups of the Pod Security checks and of selection compare a key with each member of
/// the same length).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match (a.first_chunk::<8>(), b.first_chunk::<8>(), a.last_chunk::<8>(), b.last_chunk::<8>()) {
        // Eight to sixteen bytes: the first and last eight cover every byte.
        (Some(ah), Some(bh), Some(at), Some(bt)) if a.len() <= 16 => ah == bh && at == bt,
        (Some(_), ..) => a == b,
        // Four to seven bytes: the first and last four, likewise.
        _ => match (a.first_chunk::<4>(), b.first_chunk::<4>(), a.last_chunk::<4>(), b.last_chunk::<4>()) {
            (Some(ah), Some(bh), Some(at), Some(bt)) => ah == bh && at == bt,
            _ => a.iter().zip(b).all(|(x, y)| x == y),
        },
    }
}

/// Keys the policy set looks up, each with a dense id. Built once per compiled set.
///
/// The parser asks for every key of every object in a request, so [`KeyTable::get`] is on the
/// hottest path there is. A key is summarised by its length and its first and last eight
/// bytes ([`Summary`]), which for keys of up to sixteen bytes (nearly every Kubernetes field
/// name) is the whole key: such a lookup is one multiply and a probe comparing integers, with
/// no byte comparison and no SipHash. Longer keys compare their bytes after the summary matches.
#[derive(Clone, Debug, Default)]
pub struct KeyTable {
    names: Vec<Box<str>>,
    /// Open addressing with linear probing; an empty slot has `id` [`NO_KEY`]. The length is a
    /// power of two at least twice the number of keys, so every probe ends at an empty slot.
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    summary: Summary,
    id: u32,
}

/// A key's length with its first and last eight bytes (overlapping for short keys; keys
/// shorter than eight bytes are packed whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Summary {
    head: u64,
    tail: u64,
    len: usize,
}

impl Summary {
    fn of(key: &[u8]) -> Summary {
        let short = || match (key.first_chunk::<4>(), key.last_chunk::<4>()) {
            (Some(h), Some(t)) => u64::from(u32::from_le_bytes(*h)) | u64::from(u32::from_le_bytes(*t)) << 32,
            _ => key.iter().enumerate().fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * (i & 7))),
        };
        let head = key.first_chunk::<8>().map_or_else(short, |w| u64::from_le_bytes(*w));
        let tail = key.last_chunk::<8>().map_or(head, |w| u64::from_le_bytes(*w));
        Summary { head, tail, len: key.len() }
    }

    /// Whether the summary is the whole key, so that equal summaries mean equal keys.
    fn is_whole(&self) -> bool {
        self.len <= 16
    }

    fn hash(&self) -> usize {
        let mixed = u128::from(self.head ^ 0x9E37_79B9_7F4A_7C15) * u128::from(self.tail ^ (self.len as u64).rotate_left(32) ^ 0xD6E8_FEB8_6659_FD93);
        ((mixed >> 64) as u64 ^ mixed as u64) as usize
    }
}

const EMPTY_SLOT: Slot = Slot { summary: Summary { head: 0, tail: 0, len: 0 }, id: NO_KEY };

impl KeyTable {
    pub fn intern(&mut self, key: &str) -> u32 {
        let found = self.get(key);
        if found != NO_KEY {
            return found;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NO_KEY - 1).min(NO_KEY - 1);
        if id == NO_KEY - 1 {
            return id;
        }
        self.names.push(key.into());
        if self.slots.len() < 2 * self.names.len() {
            self.rebuild();
        } else {
            self.place(id);
        }
        id
    }

    pub fn get(&self, key: &str) -> u32 {
        if self.slots.is_empty() {
            return NO_KEY;
        }
        let summary = Summary::of(key.as_bytes());
        let mask = self.slots.len() - 1;
        let mut at = summary.hash() & mask;
        while let Some(slot) = self.slots.get(at) {
            if slot.id == NO_KEY {
                return NO_KEY;
            }
            if slot.summary == summary && (summary.is_whole() || self.names.get(slot.id as usize).is_some_and(|n| n.as_bytes() == key.as_bytes())) {
                return slot.id;
            }
            at = (at + 1) & mask;
        }
        NO_KEY
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn rebuild(&mut self) {
        let size = (self.names.len() * 2).next_power_of_two().max(16);
        self.slots = vec![EMPTY_SLOT; size];
        for id in 0..self.names.len() {
            self.place(id as u32);
        }
    }

    fn place(&mut self, id: u32) {
        let Some(name) = self.names.get(id as usize) else { return };
        let summary = Summary::of(name.as_bytes());
        let mask = self.slots.len() - 1;
        let mut at = summary.hash() & mask;
        while let Some(slot) = self.slots.get_mut(at) {
            if slot.id == NO_KEY {
                *slot = Slot { summary, id };
                return;
            }
            at = (at + 1) & mask;
        }
    }
}

/// The vectors of the last document a thread dropped, cleared, for the next parse on that
/// thread: a server parses one request after another, and reusing the buffers saves the
/// allocations, the regrowth and the page faults of fresh ones on every request.
#[derive(Default)]
struct Spare {
    text: String,
    nodes: Vec<DNode>,
    members: Vec<Member>,
    elems: Vec<u32>,
    scratch_members: Vec<Member>,
    scratch_elems: Vec<u32>,
}

thread_local! {
    static SPARE: std::cell::Cell<Spare> = const {
        std::cell::Cell::new(Spare {
            text: String::new(),
            nodes: Vec::new(),
            members: Vec::new(),
            elems: Vec::new(),
            scratch_members: Vec::new(),
            scratch_elems: Vec::new(),
        })
    };
}

/// Buffers larger than this many entries (a document of several MiB) are freed rather than kept
/// for the next parse, so one huge request does not pin its memory on a worker thread.
const RETAIN: usize = 1 << 16;

impl Drop for Doc<'_> {
    fn drop(&mut self) {
        if self.nodes.capacity() > RETAIN || self.members.capacity() > RETAIN || self.elems.capacity() > RETAIN || self.text.capacity() > RETAIN * 16 {
            return;
        }
        let mut spare = SPARE.take();
        (spare.text, spare.nodes, spare.members, spare.elems) =
            (std::mem::take(&mut self.text), std::mem::take(&mut self.nodes), std::mem::take(&mut self.members), std::mem::take(&mut self.elems));
        spare.text.clear();
        spare.nodes.clear();
        spare.members.clear();
        spare.elems.clear();
        SPARE.set(spare);
    }
}

/// A parsed document. Fields are private: the native matchers rely on every index in `members`
/// and `elems` being in bounds, which only [`Doc::parse`] establishes.
#[derive(Debug)]
pub struct Doc<'a> {
    input: &'a str,
    text: String,
    nodes: Vec<DNode>,
    members: Vec<Member>,
    elems: Vec<u32>,
    root: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocError {
    pub message: String,
    pub offset: usize,
}

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl<'a> Doc<'a> {
    /// Parses JSON bytes. Keys are interned against `keys`.
    pub fn parse(bytes: &'a [u8], keys: &KeyTable) -> Result<Doc<'a>, DocError> {
        let input = std::str::from_utf8(bytes)
            .map_err(|e| DocError { message: "invalid UTF-8".into(), offset: e.valid_up_to() })?;
        if u32::try_from(input.len()).is_err() {
            return Err(DocError { message: "document larger than 4 GiB".into(), offset: 0 });
        }
        let mut spare = SPARE.take();
        spare.nodes.reserve(input.len() / 12 + 4);
        spare.members.reserve(input.len() / 24 + 4);
        let mut p = Parser {
            src: input.as_bytes(),
            pos: 0,
            keys,
            doc: Doc {
                input,
                text: std::mem::take(&mut spare.text),
                nodes: std::mem::take(&mut spare.nodes),
                members: std::mem::take(&mut spare.members),
                elems: std::mem::take(&mut spare.elems),
                root: 0,
            },
            scratch_members: std::mem::take(&mut spare.scratch_members),
            scratch_elems: std::mem::take(&mut spare.scratch_elems),
        };
        let root = p.document();
        // The scratch vectors go back now; the document's own vectors when it is dropped.
        let (mut members, mut elems) = (std::mem::take(&mut p.scratch_members), std::mem::take(&mut p.scratch_elems));
        if members.capacity() <= RETAIN && elems.capacity() <= RETAIN {
            members.clear();
            elems.clear();
            let mut spare = SPARE.take();
            (spare.scratch_members, spare.scratch_elems) = (members, elems);
            SPARE.set(spare);
        }
        p.doc.root = root?;
        Ok(p.doc)
    }

    pub fn root(&self) -> u32 {
        self.root
    }

    pub fn node(&self, id: u32) -> DNode {
        self.nodes.get(id as usize).copied().unwrap_or_default()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn nodes_ptr(&self) -> *const DNode {
        self.nodes.as_ptr()
    }

    pub(crate) fn members_ptr(&self) -> *const Member {
        self.members.as_ptr()
    }

    pub(crate) fn elems_ptr(&self) -> *const u32 {
        self.elems.as_ptr()
    }

    /// The text of a string node, `None` for other nodes.
    pub fn str(&self, id: u32) -> Option<&str> {
        let n = self.node(id);
        let (a, len) = (n.a as usize, n.len as usize);
        match n.tag {
            TAG_STR => self.input.get(a..a + len),
            TAG_STR_OWNED => self.text.get(a..a + len),
            _ => None,
        }
    }

    pub fn key_of(&self, m: &Member) -> &str {
        let (a, len) = (m.key_at as usize, (m.key_len & !OWNED_BIT) as usize);
        let src = if m.key_len & OWNED_BIT != 0 { self.text.as_str() } else { self.input };
        src.get(a..a + len).unwrap_or_default()
    }

    pub fn members(&self, id: u32) -> &[Member] {
        let n = self.node(id);
        if n.tag != TAG_OBJECT {
            return &[];
        }
        self.members.get(n.a as usize..(n.a + n.len) as usize).unwrap_or(&[])
    }

    pub fn elems(&self, id: u32) -> &[u32] {
        let n = self.node(id);
        if n.tag != TAG_ARRAY {
            return &[];
        }
        self.elems.get(n.a as usize..(n.a + n.len) as usize).unwrap_or(&[])
    }

    /// The value of member `key` of object `id` (the last one if the key repeats).
    pub fn get(&self, id: u32, key: &str) -> Option<u32> {
        // Lengths first: most members differ in length from the key, and comparing them needs
        // no slicing of the text.
        let len = u32::try_from(key.len()).ok()?;
        self.members(id).iter().rev().find(|m| m.key_len & !OWNED_BIT == len && same_bytes(self.key_of(m).as_bytes(), key.as_bytes())).map(|m| m.value)
    }

    /// The value of the member whose key has id `key` in the table the document was parsed
    /// with (the last one if the key repeats): a scan comparing ids, no text. [`NO_KEY`] finds
    /// nothing.
    pub fn get_id(&self, id: u32, key: u32) -> Option<u32> {
        if key == NO_KEY {
            return None;
        }
        self.members(id).iter().rev().find(|m| m.key == key).map(|m| m.value)
    }

    /// Whether two members have the same key. Interned keys compare by id (an interned key's
    /// text always gets its id, so a member without one has another text); only two keys
    /// the table does not know compare their text.
    pub fn same_key(&self, a: &Member, b: &Member) -> bool {
        match (a.key, b.key) {
            (NO_KEY, NO_KEY) => self.key_of(a) == self.key_of(b),
            (x, y) => x == y,
        }
    }

    /// Follows a path of keys from `id`.
    pub fn path(&self, id: u32, keys: &[&str]) -> Option<u32> {
        keys.iter().try_fold(id, |at, k| self.get(at, k))
    }

    pub fn get_str(&self, id: u32, keys: &[&str]) -> Option<&str> {
        self.path(id, keys).and_then(|n| self.str(n))
    }

    /// The scalar view of a node, as pattern comparisons see it.
    pub fn scalar(&self, id: u32) -> Scalar<'_> {
        let n = self.node(id);
        match n.tag {
            TAG_FALSE => Scalar::Bool(false),
            TAG_TRUE => Scalar::Bool(true),
            TAG_INT => Scalar::Int(bits(n) as i64),
            TAG_UINT => Scalar::UInt(bits(n)),
            TAG_FLOAT => Scalar::Float(f64::from_bits(bits(n))),
            TAG_STR | TAG_STR_OWNED => Scalar::Str(self.str(id).unwrap_or_default()),
            TAG_ARRAY => Scalar::Array,
            TAG_OBJECT => Scalar::Object,
            _ => Scalar::Null,
        }
    }

    /// The `serde_json::Value` of a node, identical to what `serde_json` parses from the same
    /// text.
    pub fn to_value(&self, id: u32) -> Value {
        self.to_value_at(id, 0)
    }

    fn to_value_at(&self, id: u32, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let n = self.node(id);
        match n.tag {
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_INT => Value::Number(Number::from(bits(n) as i64)),
            TAG_UINT => Value::Number(Number::from(bits(n))),
            TAG_FLOAT => Number::from_f64(f64::from_bits(bits(n))).map_or(Value::Null, Value::Number),
            TAG_STR | TAG_STR_OWNED => Value::String(self.str(id).unwrap_or_default().to_owned()),
            TAG_ARRAY => Value::Array(self.elems(id).iter().map(|&e| self.to_value_at(e, depth + 1)).collect()),
            TAG_OBJECT => {
                let mut map = Map::new();
                for m in self.members(id) {
                    map.insert(self.key_of(m).to_owned(), self.to_value_at(m.value, depth + 1));
                }
                Value::Object(map)
            }
            _ => Value::Null,
        }
    }
}

fn bits(n: DNode) -> u64 {
    u64::from(n.a) | (u64::from(n.b) << 32)
}

fn with_bits(tag: u32, v: u64) -> DNode {
    DNode { tag, len: 0, a: v as u32, b: (v >> 32) as u32 }
}

struct Parser<'a, 'k> {
    src: &'a [u8],
    pos: usize,
    keys: &'k KeyTable,
    doc: Doc<'a>,
    /// Members and elements of the containers being parsed, moved into the document as each
    /// container closes so that every container's children end up contiguous.
    scratch_members: Vec<Member>,
    scratch_elems: Vec<u32>,
}

impl<'a> Parser<'a, '_> {
    fn document(&mut self) -> Result<u32, DocError> {
        self.doc.nodes.push(DNode::default());
        self.ws();
        let root = self.value(0)?;
        self.ws();
        if self.pos != self.src.len() {
            return Err(self.err("trailing characters"));
        }
        Ok(root)
    }

    fn err(&self, message: &str) -> DocError {
        DocError { message: message.into(), offset: self.pos }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.src.get(self.pos) {
            self.pos += 1;
            // Indentation of pretty-printed JSON: skip runs of spaces eight at a time.
            while let Some(&[b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ']) = self.src.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
                self.pos += 8;
            }
        }
    }

    fn push(&mut self, n: DNode) -> u32 {
        let id = self.doc.nodes.len() as u32;
        self.doc.nodes.push(n);
        id
    }

    fn value(&mut self, depth: usize) -> Result<u32, DocError> {
        match self.src.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let (at, len, owned) = self.string()?;
                Ok(self.push(DNode { tag: if owned { TAG_STR_OWNED } else { TAG_STR }, len, a: at, b: 0 }))
            }
            Some(b't') => self.literal(b"true", DNode { tag: TAG_TRUE, ..DNode::default() }),
            Some(b'f') => self.literal(b"false", DNode { tag: TAG_FALSE, ..DNode::default() }),
            Some(b'n') => self.literal(b"null", DNode::default()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected value")),
            None => Err(self.err("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &[u8], node: DNode) -> Result<u32, DocError> {
        if self.src.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.err("expected ident"));
        }
        self.pos += word.len();
        Ok(self.push(node))
    }

    fn number(&mut self) -> Result<u32, DocError> {
        let start = self.pos;
        let neg = self.src.get(self.pos) == Some(&b'-');
        if neg {
            self.pos += 1;
        }
        let digits_start = self.pos;
        match self.src.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.src.get(self.pos) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        let int_end = self.pos;
        let mut float = false;
        if self.src.get(self.pos) == Some(&b'.') {
            float = true;
            self.pos += 1;
            if !matches!(self.src.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.src.get(self.pos) {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.src.get(self.pos) {
            float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.src.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.src.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.src.get(self.pos) {
                self.pos += 1;
            }
        }
        let text = self.doc.input.get(start..self.pos).unwrap_or_default();
        if !float {
            let digits = self.doc.input.get(digits_start..int_end).unwrap_or_default();
            // serde_json keeps integers that fit: negative ones as i64, others as u64.
            if let Ok(u) = digits.parse::<u64>() {
                if !neg {
                    let tag = if i64::try_from(u).is_ok() { TAG_INT } else { TAG_UINT };
                    return Ok(self.push(with_bits(tag, u)));
                }
                // serde_json turns `-0` into the float -0.0.
                if u == 0 {
                    return Ok(self.push(with_bits(TAG_FLOAT, (-0.0f64).to_bits())));
                }
                if let Ok(i) = text.parse::<i64>() {
                    return Ok(self.push(with_bits(TAG_INT, i as u64)));
                }
            }
        }
        // Floats go through serde_json's own number parser so that rounding is identical.
        match serde_json::from_str::<Number>(text).ok().and_then(|n| n.as_f64()) {
            Some(f) => Ok(self.push(with_bits(TAG_FLOAT, f.to_bits()))),
            None => Err(DocError { message: "number out of range".into(), offset: start }),
        }
    }

    /// Parses a string at `pos`; returns (offset, length, owned).
    fn string(&mut self) -> Result<(u32, u32, bool), DocError> {
        self.pos += 1;
        let start = self.pos;
        self.pos = plain_run(self.src, self.pos);
        loop {
            match self.src.get(self.pos) {
                Some(b'"') => {
                    let len = (self.pos - start) as u32;
                    self.pos += 1;
                    return Ok((start as u32, len, false));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => return Err(self.err("control character while parsing a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.err("EOF while parsing a string")),
            }
        }
        // An escape: copy into the document's text buffer.
        let at = self.doc.text.len();
        self.doc.text.push_str(self.doc.input.get(start..self.pos).unwrap_or_default());
        loop {
            match self.src.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    let len = self.doc.text.len() - at;
                    return Ok((at as u32, len as u32, true));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.src.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.src.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.err("lone leading surrogate in hex escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone leading surrogate in hex escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("lone trailing surrogate in hex escape"));
                            } else {
                                hi
                            };
                            let ch = char::from_u32(code).ok_or_else(|| self.err("invalid unicode code point"))?;
                            self.doc.text.push(ch);
                            continue;
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.pos += 1;
                    self.doc.text.push(c);
                }
                Some(&c) if c < 0x20 => return Err(self.err("control character while parsing a string")),
                Some(_) => {
                    let run = self.pos;
                    self.pos = plain_run(self.src, self.pos);
                    self.doc.text.push_str(self.doc.input.get(run..self.pos).unwrap_or_default());
                }
                None => return Err(self.err("EOF while parsing a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, DocError> {
        let digits = self.src.get(self.pos..self.pos + 4).ok_or_else(|| self.err("EOF while parsing a string"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char).to_digit(16).ok_or_else(|| self.err("invalid escape"))?;
            v = v * 16 + x;
        }
        self.pos += 4;
        Ok(v)
    }

    fn object(&mut self, depth: usize) -> Result<u32, DocError> {
        if depth + 1 >= MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.pos += 1;
        let mark = self.scratch_members.len();
        self.ws();
        if self.src.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.src.get(self.pos) != Some(&b'"') {
                    return Err(self.err("key must be a string"));
                }
                let (at, len, owned) = self.string()?;
                let text = if owned { self.doc.text.get(at as usize..(at + len) as usize) } else { self.doc.input.get(at as usize..(at + len) as usize) };
                let key = self.keys.get(text.unwrap_or_default());
                self.ws();
                if self.src.get(self.pos) != Some(&b':') {
                    return Err(self.err("expected `:`"));
                }
                self.pos += 1;
                self.ws();
                let value = self.value(depth + 1)?;
                let key_len = if owned { len | OWNED_BIT } else { len };
                self.scratch_members.push(Member { key, value, key_at: at, key_len });
                self.ws();
                match self.src.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        self.ws();
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected `,` or `}`")),
                }
            }
        }
        let start = self.doc.members.len() as u32;
        let count = (self.scratch_members.len() - mark) as u32;
        self.doc.members.extend(self.scratch_members.drain(mark..));
        Ok(self.push(DNode { tag: TAG_OBJECT, len: count, a: start, b: 0 }))
    }

    fn array(&mut self, depth: usize) -> Result<u32, DocError> {
        if depth + 1 >= MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.pos += 1;
        let mark = self.scratch_elems.len();
        self.ws();
        if self.src.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                let v = self.value(depth + 1)?;
                self.scratch_elems.push(v);
                self.ws();
                match self.src.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        self.ws();
                    }
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected `,` or `]`")),
                }
            }
        }
        let start = self.doc.elems.len() as u32;
        let count = (self.scratch_elems.len() - mark) as u32;
        self.doc.elems.extend(self.scratch_elems.drain(mark..));
        Ok(self.push(DNode { tag: TAG_ARRAY, len: count, a: start, b: 0 }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn same_as_serde(text: &str) {
        let ours = Doc::parse(text.as_bytes(), &KeyTable::default()).map(|d| d.to_value(d.root()));
        let theirs = serde_json::from_str::<Value>(text);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        for text in [
            r#"{"a":1,"b":[true,false,null,-0,0.5,1e3,-12,18446744073709551615,18446744073709551616,-9223372036854775808]}"#,
            r#"{"a":"x\"y\\z\u00e9\ud83d\ude00","a":2}"#,
            r#"  [ ]  "#,
            r#"{}"#,
            r#"{"a":}"#,
            r#"[1,]"#,
            r#"01"#,
            r#"1."#,
            r#""\ud800""#,
            r#""tab	""#,
            r#"{"k":"v"} x"#,
            r#"-"#,
            r#"1e400"#,
            r#"[1.7976931348623157e308, 2.2250738585072014e-308, 0.1, 123456789012345678901234567890]"#,
        ] {
            same_as_serde(text);
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        same_as_serde(&deep);
        for n in [126, 127, 128, 129] {
            same_as_serde(&("[".repeat(n) + &"]".repeat(n)));
            same_as_serde(&("{\"a\":".repeat(n) + "1" + &"}".repeat(n)));
        }
    }

    #[test]
    fn key_table_finds_every_key_and_only_those() {
        let mut keys = KeyTable::default();
        let names: Vec<String> = (0..2000).map(|i| format!("{}{i}", ["", "a", "spec.template.", "x"][i % 4])).chain(["", "k", "kind", "metadata", "aaaaaaaaXbbbbbbbb", "aaaaaaaaYbbbbbbbb"].map(String::from)).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(keys.intern(name), i as u32);
        }
        assert_eq!(keys.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(keys.get(name), i as u32, "{name}");
            assert_eq!(keys.intern(name), i as u32, "{name}");
        }
        for absent in ["kinds", "metadatA", "spec.template.2001", "b1", "\u{e9}", "aaaaaaaaZbbbbbbbb"] {
            assert_eq!(keys.get(absent), NO_KEY, "{absent}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_run_stops_where_a_byte_loop_stops(bytes in proptest::collection::vec(proptest::prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b'"'), proptest::strategy::Just(b'\\'), 0u8..0x20], 0..40), from in 0usize..40) {
            let from = from.min(bytes.len());
            let naive = bytes.iter().skip(from).position(|&c| c == b'"' || c == b'\\' || c < 0x20).map_or(bytes.len(), |p| p + from);
            proptest::prop_assert_eq!(plain_run(&bytes, from), naive);
        }
    }

    /// The inline comparison of keys agrees with `==` on every length it splits at.
    #[test]
    fn same_bytes_is_equality() {
        let words = ["", "a", "ab", "abc", "abcd", "abce", "abcde", "xbcde", "abcdefg", "abcdefgh", "abcdefgi", "abcdefghijklmnop", "abcdefghijklmnoq", "Abcdefghijklmnop", "abcdefghijklmnopq", "abcdefghijklmnopr"];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn keys_are_interned_and_last_duplicate_wins() {
        let mut keys = KeyTable::default();
        let id = keys.intern("spec");
        let doc = Doc::parse(br#"{"spec":1,"other":2,"spec":3}"#, &keys).unwrap();
        let members = doc.members(doc.root());
        assert_eq!(members.iter().map(|m| m.key).collect::<Vec<_>>(), vec![id, NO_KEY, id]);
        assert_eq!(doc.get(doc.root(), "spec").map(|n| doc.to_value(n)), Some(serde_json::json!(3)));
    }
}
