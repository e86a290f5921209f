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

#![allow(unsafe_code)]

mod codegen;
mod helpers;

use std::sync::Arc;

use cranelift_codegen::ir::{AbiParam, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

use palisade_compiler::ir::pattern::{Node, NodeId, Pattern};

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

/// What native code and helpers receive: the document's arrays and the pattern's constants.
/// `#[repr(C)]` because generated code loads these fields at fixed offsets.
#[repr(C)]
pub(crate) struct Env {
    nodes: *const DNode,
    members: *const Member,
    elems: *const u32,
    doc: *const std::ffi::c_void,
    pattern: *const Pattern,
}

type MatchFn = unsafe extern "C" fn(env: *const Env, node: u32) -> u32;

/// A compiled pattern. It keeps the memory its code lives in alive (through `Arc<Jit>`) and its
/// own copy of the pattern constants the helpers read.
pub struct CompiledPattern {
    func: MatchFn,
    pattern: Arc<Pattern>,
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
            pattern: Arc::as_ptr(&self.pattern),
        };
        let node = if (node as usize) < doc.node_count() { node } else { 0 };
        // SAFETY: `func` was produced by `Jit::compile` for this pattern and its code memory is
        // kept alive by `_owner`. The generated code only reads `env`'s arrays at indices the
        // document parser produced (member and element ranges of container nodes, node ids
        // stored in them, and `node`, checked just above), all in bounds by `Doc`'s
        // construction, and it calls only `helpers::scalar`, which never unwinds. `env` and
        // `doc` outlive the call.
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
        if let Ok(mut m) = self.module.lock() {
            if let Some(module) = m.take() {
                // SAFETY: every function pointer into this module is held by a
                // `CompiledPattern`, each of which holds an `Arc` to this memory; we are in
                // the last `Arc`'s drop, so no pointer survives.
                unsafe { module.free_memory() };
            }
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

/// A JIT compiler instance: one Cranelift module that a batch of patterns is compiled into.
pub struct Jit {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    pending: Vec<(cranelift_module::FuncId, Arc<Pattern>, usize)>,
}

impl Jit {
    pub fn new() -> Result<Jit, String> {
        let mut flags = settings::builder();
        flags.set("use_colocated_libcalls", "false").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
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
        let ctx = module.make_context();
        Ok(Jit { module, ctx, fctx: FunctionBuilderContext::new(), pending: Vec::new() })
    }

    /// Compiles one pattern; its key names are interned into `keys`. Returns a ticket for
    /// [`Jit::finish`].
    pub fn add(&mut self, pattern: &Pattern, keys: &mut KeyTable) -> Result<usize, Unsupported> {
        supported(pattern)?;
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(types::I32));
        sig.returns.push(AbiParam::new(types::I32));
        let index = self.pending.len();
        let id = self
            .module
            .declare_function(&format!("pattern_{index}"), Linkage::Local, &sig)
            .map_err(|e| Unsupported::Codegen(e.to_string()))?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        codegen::build(&mut self.ctx.func, &mut self.fctx, self.module.target_config(), pattern, keys);
        let defined = self.module.define_function(id, &mut self.ctx).map_err(|e| Unsupported::Codegen(format!("{e:?}")));
        self.module.clear_context(&mut self.ctx);
        defined?;
        self.pending.push((id, Arc::new(pattern.clone()), index));
        Ok(index)
    }

    /// Finalizes the module; returns the compiled patterns by ticket.
    pub fn finish(mut self) -> Result<Vec<CompiledPattern>, String> {
        self.module.finalize_definitions().map_err(|e| e.to_string())?;
        let fns: Vec<(*const u8, Arc<Pattern>)> =
            self.pending.iter().map(|(id, p, _)| (self.module.get_finalized_function(*id), Arc::clone(p))).collect();
        let owner = Arc::new(JitMemory { module: std::sync::Mutex::new(Some(self.module)) });
        Ok(fns
            .into_iter()
            .map(|(code, pattern)| {
                // SAFETY: `code` is the finalized entry of a function declared with the
                // signature `(pointer, i32) -> i32` in the platform's default call convention,
                // which is `MatchFn`'s `extern "C"` ABI.
                let func = unsafe { std::mem::transmute::<*const u8, MatchFn>(code) };
                CompiledPattern { func, pattern, _owner: Arc::clone(&owner) }
            })
            .collect())
    }
}

/// Compiles a single pattern (tests and tools).
pub fn compile_one(pattern: &Pattern, keys: &mut KeyTable) -> Result<CompiledPattern, Unsupported> {
    let mut jit = Jit::new().map_err(Unsupported::Codegen)?;
    jit.add(pattern, keys)?;
    jit.finish().map_err(Unsupported::Codegen)?.pop().ok_or_else(|| Unsupported::Codegen("no function".into()))
}
