//! Native matchers: the pattern IR compiled with Cranelift.
//!
//! This is the one module of Palisade that uses `unsafe`: it owns executable memory and calls
//! into it. The rest of the crate denies `unsafe_code`.
//!
//! A compiled pattern answers the fast-path question only: does the document pass, is the
//! rule skipped by an anchor, or does it not match. It builds no messages and no paths; when a
//! rule does not pass, the engine re-runs that rule in the interpreter (the reference), which
//! builds Kyverno's exact message and path. The three-way answer mirrors the interpreter's
//! internal classification (`Ok`, a skip, any other error) exactly, which the agreement tests
//! check on the corpus and on random patterns and documents.
//!
//! What is compiled: maps with inline field lookups (keys interned at compile time into the
//! [`KeyTable`] the document parser uses), array loops with Kyverno's skip accounting, every
//! validate anchor, the `"*"` presence check, inline boolean comparisons, and scalar
//! comparisons through one `extern "C"` helper over constants pre-parsed by the compiler
//! (numbers, quantities, durations, wildcards). What is not compiled is said by
//! [`Unsupported`], and the rule then runs in the interpreter.
//!
//! A policy set is compiled as one batch ([`Jit`]): its patterns are interned into a graph of
//! shapes ([`shape`]), so a sub-pattern that several rules or places share (autogen copies,
//! repeated container patterns) is compiled once and called. Code generation is what a server
//! pays at start and on every reload, so its cost matters as much as the code's speed.

#![allow(unsafe_code)]

mod codegen;
mod helpers;
mod shape;

use std::collections::HashMap;
use std::sync::Arc;

use cranelift_codegen::ir::{AbiParam, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

use palisade_compiler::ir::pattern::{Node, NodeId, Pattern};

use shape::{ShapeId, Shapes};

use crate::doc::{DNode, Doc, KeyTable, Member};

/// The fast-path answer of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A conditional or global anchor did not hold.
    Skip,
    /// The pattern does not match (a failure or an error; the interpreter tells which).
    NoMatch,
}

pub(crate) const OK: u32 = 0;
pub(crate) const SKIP: u32 = 1;
pub(crate) const ERR: u32 = 2;

/// How deep a pattern the JIT compiles. Real policies stay under 20 levels; deeper patterns
/// run in the interpreter, which keeps generated code small.
const MAX_JIT_DEPTH: usize = 64;

/// Texts that Kyverno's error classification searches for in messages. A pattern whose keys or
/// strings contain one could turn an ordinary mismatch into a skip through its message, which
/// the native code does not build, so such patterns stay in the interpreter.
const CLASSIFYING_TEXTS: [&str; 3] = ["conditional anchor mismatch", "global anchor mismatch", "negation anchor matched"];

/// Why a pattern is not compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    WildcardKeys,
    TooDeep,
    ClassifyingText,
    Codegen(String),
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsupported::WildcardKeys => f.write_str("a map key holds `*` or `?` (expanded against resource keys at run time)"),
            Unsupported::TooDeep => write!(f, "the pattern nests deeper than {MAX_JIT_DEPTH} levels"),
            Unsupported::ClassifyingText => {
                f.write_str("a key or value contains an anchor-error text that Kyverno's error classification searches for")
            }
            Unsupported::Codegen(e) => write!(f, "code generation failed: {e}"),
        }
    }
}

/// What native code and helpers receive: the document's arrays and the batch's constants.
/// `#[repr(C)]` because generated code loads these fields at fixed offsets.
#[repr(C)]
pub(crate) struct Env {
    nodes: *const DNode,
    members: *const Member,
    elems: *const u32,
    doc: *const std::ffi::c_void,
    consts: *const Node,
    consts_len: usize,
}

type MatchFn = unsafe extern "C" fn(env: *const Env, node: u32) -> u32;

/// A compiled pattern. It keeps the memory its code lives in alive (through `Arc<JitMemory>`)
/// and the constants of its batch, which the helpers read.
pub struct CompiledPattern {
    func: MatchFn,
    consts: Arc<[Node]>,
    _owner: Arc<JitMemory>,
}

impl std::fmt::Debug for CompiledPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPattern").finish_non_exhaustive()
    }
}

impl CompiledPattern {
    /// Matches the document node `node` (parsed with the key table this pattern was compiled
    /// against).
    pub fn run(&self, doc: &Doc, node: u32) -> Verdict {
        let env = Env {
            nodes: doc.nodes_ptr(),
            members: doc.members_ptr(),
            elems: doc.elems_ptr(),
            doc: (doc as *const Doc).cast(),
            consts: self.consts.as_ptr(),
            consts_len: self.consts.len(),
        };
        let node = if (node as usize) < doc.node_count() { node } else { 0 };
        // SAFETY: `func` was produced by `Jit::finish` for this pattern (or is
        // `helpers::defer`) and its code memory is kept alive by `_owner`. The generated code
        // only reads `env`'s arrays at indices the document parser produced (member and element
        // ranges of container nodes, node ids stored in them, and `node`, checked just above),
        // all in bounds by `Doc`'s construction; it calls only functions of the same batch,
        // which keep to the same rules, and `helpers::scalar`, which never unwinds and checks
        // the constant id it is given. `env`, `doc` and the constants outlive the call.
        let code = unsafe { (self.func)(&env, node) };
        match code {
            OK => Verdict::Pass,
            SKIP => Verdict::Skip,
            _ => Verdict::NoMatch,
        }
    }
}

/// The executable memory of compiled patterns. Freed when the last [`CompiledPattern`] that
/// points into it is dropped.
struct JitMemory {
    module: std::sync::Mutex<Option<JITModule>>,
}

impl Drop for JitMemory {
    fn drop(&mut self) {
        if let Ok(mut m) = self.module.lock() && let Some(module) = m.take() {
            // SAFETY: every function pointer into this module is held by a
            // `CompiledPattern`, each of which holds an `Arc` to this memory; we are in
            // the last `Arc`'s drop, so no pointer survives.
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: the module is only touched under the mutex (to free it); the finalized code it owns
// is immutable and callable from any thread.
unsafe impl Send for JitMemory {}
// SAFETY: as above.
unsafe impl Sync for JitMemory {}

/// Checks whether a pattern is within what the JIT compiles.
pub fn supported(pattern: &Pattern) -> Result<(), Unsupported> {
    fn walk(p: &Pattern, id: NodeId, depth: usize) -> Result<(), Unsupported> {
        if depth > MAX_JIT_DEPTH {
            return Err(Unsupported::TooDeep);
        }
        let has_text = |s: &str| CLASSIFYING_TEXTS.iter().any(|t| s.contains(t));
        match p.node(id) {
            Node::Map { start, len, wildcard_keys, .. } => {
                if *wildcard_keys {
                    return Err(Unsupported::WildcardKeys);
                }
                for e in p.entries(*start, *len) {
                    if has_text(&e.raw) || has_text(&e.key) {
                        return Err(Unsupported::ClassifyingText);
                    }
                    walk(p, e.value, depth + 1)?;
                }
                Ok(())
            }
            Node::Seq { start, len } => p.items(*start, *len).iter().try_for_each(|&i| walk(p, i, depth + 1)),
            Node::Str(s) if has_text(&s.raw) => Err(Unsupported::ClassifyingText),
            _ => Ok(()),
        }
    }
    walk(pattern, pattern.root(), 0)
}

/// A JIT compiler instance: a batch of patterns, interned into one graph of shapes by
/// [`Jit::add`] and compiled into one Cranelift module by [`Jit::finish`]. Compiling the batch
/// as a whole lets patterns share the code of the sub-patterns they have in common.
pub struct Jit {
    module: JITModule,
    shapes: Shapes,
    /// The root shape of each added pattern, by ticket.
    roots: Vec<ShapeId>,
}

/// A batch's compiled functions and the tickets whose code could not be generated.
pub struct Finished {
    pub patterns: Vec<CompiledPattern>,
    /// Tickets whose code generation failed, with the error; their [`CompiledPattern`] answers
    /// [`Verdict::NoMatch`], which sends the rule to the interpreter.
    pub failed: Vec<(usize, String)>,
}

impl Jit {
    pub fn new() -> Result<Jit, String> {
        let mut flags = settings::builder();
        flags.set("use_colocated_libcalls", "false").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        // No mid-end optimization (egraph, GVN, LICM): matcher code is loads, compares and
        // branches with little for it to find. On the pod-security + best-practices set it cut
        // code generation by about a quarter, and the native matchers ran as fast as with
        // `speed` (`cargo bench --bench jit`). The backtracking register allocator stays: the
        // single-pass one compiled about as fast but its code ran 3x slower.
        flags.set("opt_level", "none").map_err(|e| e.to_string())?;
        // Cranelift's IR verifier checks every function before code generation. Debug builds
        // (every test, the agreement suites included) keep it; release builds skip it, as
        // wasmtime does, because it is a large share of compile time and so of reload time.
        let verify = if cfg!(debug_assertions) { "true" } else { "false" };
        flags.set("enable_verifier", verify).map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("host machine is not supported: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Jit { module, shapes: Shapes::default(), roots: Vec::new() })
    }

    /// Adds one pattern to the batch; its key names are interned into `keys`. Returns a ticket
    /// for [`Jit::finish`]. Code is generated by `finish`, for the whole batch.
    pub fn add(&mut self, pattern: &Pattern, keys: &mut KeyTable) -> Result<usize, Unsupported> {
        supported(pattern)?;
        let root = self.shapes.intern_pattern(pattern, pattern.root(), keys);
        self.roots.push(root);
        Ok(self.roots.len() - 1)
    }

    /// Generates and finalizes the batch's code; returns the compiled patterns by ticket.
    pub fn finish(self) -> Result<Vec<CompiledPattern>, String> {
        self.finish_all().map(|f| f.patterns)
    }

    /// As [`Jit::finish`], and says which tickets' code generation failed (a Cranelift error:
    /// a defect, which the agreement tests look for; the rule still gets the interpreter's
    /// answer).
    pub fn finish_all(mut self) -> Result<Finished, String> {
        let shared = self.shapes.plan(&self.roots, shape::MIN_OUTLINED_SIZE);
        let ptr = self.module.target_config().pointer_type();
        let mut signature = self.module.make_signature();
        signature.params.push(AbiParam::new(ptr));
        signature.params.push(AbiParam::new(types::I32));
        signature.returns.push(AbiParam::new(types::I32));
        // One function per root (a pattern's entry) and per shared shape (called from each of
        // its uses).
        let mut wanted: Vec<ShapeId> = (0..shared.len() as ShapeId).filter(|&s| shared.get(s as usize) == Some(&true)).collect();
        wanted.extend(&self.roots);
        wanted.sort_unstable();
        wanted.dedup();
        let mut functions: HashMap<ShapeId, FuncId> = HashMap::new();
        for &id in &wanted {
            let func = self
                .module
                .declare_function(&format!("shape_{id}"), Linkage::Local, &signature)
                .map_err(|e| e.to_string())?;
            functions.insert(id, func);
        }
        let calls: HashMap<ShapeId, FuncId> =
            functions.iter().filter(|(s, _)| shared.get(**s as usize) == Some(&true)).map(|(&s, &f)| (s, f)).collect();
        // Shapes in id order: a function's callees (its children) are generated before it, so
        // a function whose callee failed is known to fail too and is not defined.
        let mut failed: HashMap<ShapeId, String> = HashMap::new();
        let mut ctx = self.module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        for &shape in &wanted {
            let Some(&func) = functions.get(&shape) else { continue };
            if let Some(callee) = self.callees(shape, &calls).into_iter().find(|c| failed.contains_key(c)) {
                let why = failed.get(&callee).cloned().unwrap_or_default();
                failed.insert(shape, why);
                continue;
            }
            ctx.func.signature = signature.clone();
            ctx.func.name = UserFuncName::user(0, func.as_u32());
            let batch = codegen::Batch { shapes: &self.shapes, calls: &calls, signature: &signature };
            codegen::build(&mut ctx.func, &mut fctx, self.module.target_config(), &batch, shape);
            if let Err(e) = self.module.define_function(func, &mut ctx) {
                failed.insert(shape, format!("{e:?}"));
            }
            self.module.clear_context(&mut ctx);
        }
        self.module.finalize_definitions().map_err(|e| e.to_string())?;
        let code: HashMap<ShapeId, *const u8> = functions
            .iter()
            .filter(|(s, _)| !failed.contains_key(s))
            .map(|(&s, &f)| (s, self.module.get_finalized_function(f)))
            .collect();
        let consts: Arc<[Node]> = std::mem::take(&mut self.shapes).into_consts().into();
        let owner = Arc::new(JitMemory { module: std::sync::Mutex::new(Some(self.module)) });
        let mut finished = Finished { patterns: Vec::with_capacity(self.roots.len()), failed: Vec::new() };
        for (ticket, root) in self.roots.iter().enumerate() {
            let func = match code.get(root) {
                // SAFETY: `code` is the finalized entry of a function declared with the
                // signature `(pointer, i32) -> i32` in the platform's default call convention,
                // which is `MatchFn`'s `extern "C"` ABI.
                Some(&code) => unsafe { std::mem::transmute::<*const u8, MatchFn>(code) },
                None => {
                    finished.failed.push((ticket, failed.get(root).cloned().unwrap_or_default()));
                    helpers::defer as MatchFn
                }
            };
            finished.patterns.push(CompiledPattern { func, consts: Arc::clone(&consts), _owner: Arc::clone(&owner) });
        }
        Ok(finished)
    }

    /// The shared shapes that the function of `shape` calls.
    fn callees(&self, shape: ShapeId, calls: &HashMap<ShapeId, FuncId>) -> Vec<ShapeId> {
        let mut out = Vec::new();
        let mut stack = self.shapes.children(shape);
        while let Some(s) = stack.pop() {
            if calls.contains_key(&s) {
                out.push(s);
            } else {
                stack.extend(self.shapes.children(s));
            }
        }
        out
    }
}

/// Compiles a single pattern (tests and tools).
pub fn compile_one(pattern: &Pattern, keys: &mut KeyTable) -> Result<CompiledPattern, Unsupported> {
    let mut jit = Jit::new().map_err(Unsupported::Codegen)?;
    jit.add(pattern, keys)?;
    let mut finished = jit.finish_all().map_err(Unsupported::Codegen)?;
    if let Some((_, e)) = finished.failed.pop() {
        return Err(Unsupported::Codegen(e));
    }
    finished.patterns.pop().ok_or_else(|| Unsupported::Codegen("no function".into()))
}
