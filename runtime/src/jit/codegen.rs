//! Cranelift IR generation for one function of a batch: a shape (see [`super::shape`]) and
//! everything it inlines.
//!
//! The generated function is `fn(env: *const Env, node: u32) -> u32` returning `OK`, `SKIP` or
//! `ERR`. Code is emitted by walking the shape graph once; a shape used inside an array loop
//! becomes the loop body, and a shape the plan outlines becomes a call to its own function.
//! Each construct mirrors one decision of the interpreter in `interp/pattern.rs`, in the same
//! order, and the comments name it.

use std::collections::HashMap;
use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, ExtFuncData, ExternalName, FuncRef, Function, Inst, InstBuilder, MemFlagsData, SigRef, Signature,
    Type, UserExternalName, Value, types,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::FuncId;

use super::shape::{EntryOp, Shape, ShapeEntry, ShapeId, Shapes};
use super::{ERR, Env, OK, SKIP, helpers};
use crate::doc::{DNode, Member, TAG_ARRAY, TAG_FALSE, TAG_NULL, TAG_OBJECT, TAG_TRUE};

const I32: Type = types::I32;

/// What every function of a batch shares: the shapes, which of them have functions, and the
/// matcher signature.
pub(super) struct Batch<'a> {
    pub shapes: &'a Shapes,
    /// Shape -> its function, for the shared shapes, which every use calls.
    pub calls: &'a HashMap<ShapeId, FuncId>,
    pub signature: &'a Signature,
}

/// Builds the function of shape `root` into `func`.
pub(super) fn build(func: &mut Function, fctx: &mut FunctionBuilderContext, config: TargetFrontendConfig, batch: &Batch, root: ShapeId) {
    let ptr = config.pointer_type();
    let mut b = FunctionBuilder::new(func, fctx);
    let mut scalar_sig = Signature::new(config.default_call_conv);
    scalar_sig.params.push(AbiParam::new(ptr));
    scalar_sig.params.push(AbiParam::new(I32));
    scalar_sig.params.push(AbiParam::new(I32));
    scalar_sig.returns.push(AbiParam::new(I32));
    let scalar_sig = b.import_signature(scalar_sig);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    #[allow(clippy::indexing_slicing, reason = "the entry block takes the parameters of the matcher signature every function of a batch is declared with, `(env pointer, node) -> i32`: always two")]
    let (env, node) = (params[0], params[1]);
    let trusted = MemFlagsData::trusted().with_readonly();
    let nodes = b.ins().load(ptr, trusted, env, offset_of!(Env, nodes) as i32);
    let members = b.ins().load(ptr, trusted, env, offset_of!(Env, members) as i32);
    let elems = b.ins().load(ptr, trusted, env, offset_of!(Env, elems) as i32);
    let mut g = Gen {
        b,
        ptr,
        env,
        nodes,
        members,
        elems,
        batch,
        root,
        scalar_sig,
        match_sig: None,
        imported: HashMap::new(),
    };
    let code = g.inline(root, node);
    g.b.ins().return_(&[code]);
    g.b.seal_all_blocks();
    g.b.finalize(config);
}

struct Gen<'f, 'p> {
    b: FunctionBuilder<'f>,
    ptr: Type,
    env: Value,
    nodes: Value,
    members: Value,
    elems: Value,
    batch: &'p Batch<'p>,
    /// The shape this function matches (inlined here even when it is shared).
    root: ShapeId,
    scalar_sig: SigRef,
    match_sig: Option<SigRef>,
    imported: HashMap<ShapeId, FuncRef>,
}

/// The document arrays whose base pointers a function loads once, at entry.
#[derive(Clone, Copy)]
enum Array {
    Nodes,
    Members,
    Elems,
}

fn args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().map(|&v| BlockArg::Value(v)).collect()
}

impl Gen<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted().with_readonly()
    }

    fn konst(&mut self, v: u32) -> Value {
        self.b.ins().iconst(I32, i64::from(v))
    }

    /// Address of `array[index]` for elements of `size` bytes.
    fn addr_of(&mut self, array: Array, index: Value, size: i64) -> Value {
        let base = match array {
            Array::Nodes => self.nodes,
            Array::Members => self.members,
            Array::Elems => self.elems,
        };
        self.addr(base, index, size)
    }

    /// Address of `base[index]` for elements of `size` bytes.
    fn addr(&mut self, base: Value, index: Value, size: i64) -> Value {
        let wide = self.b.ins().uextend(self.ptr, index);
        let off = self.b.ins().imul_imm_u(wide, size);
        self.b.ins().iadd(base, off)
    }

    fn node_field(&mut self, node: Value, offset: usize) -> Value {
        let at = self.addr_of(Array::Nodes, node, size_of::<DNode>() as i64);
        self.b.ins().load(I32, Self::flags(), at, offset as i32)
    }

    fn tag(&mut self, node: Value) -> Value {
        self.node_field(node, offset_of!(DNode, tag))
    }

    /// A block taking the result code, which the caller switches to and reads.
    fn done_block(&mut self) -> (Block, Value) {
        let done = self.b.create_block();
        let code = self.b.append_block_param(done, I32);
        (done, code)
    }

    /// Branches to `done(code)` unless `code` is `OK`, else continues in a fresh block.
    fn bail_unless_ok(&mut self, code: Value, done: Block) {
        let next = self.b.create_block();
        self.b.ins().brif(code, done, &args(&[code]), next, &[]);
        self.b.switch_to_block(next);
    }

    /// `element` of the interpreter: the result code of matching `node` against shape `id`,
    /// through a call when the shape has its own function.
    fn element(&mut self, id: ShapeId, node: Value) -> Value {
        match self.batch.calls.get(&id) {
            Some(&func) if id != self.root => self.call_shape(id, func, node),
            _ => self.inline(id, node),
        }
    }

    /// `element`, with the shape's code emitted here.
    fn inline(&mut self, id: ShapeId, node: Value) -> Value {
        let shapes = self.batch.shapes;
        match shapes.shape(id) {
            Some(Shape::Map(entries)) => self.map(entries, node),
            Some(Shape::Seq(items)) => self.seq(items, node),
            Some(&Shape::Bool { value, konst }) => {
                // The common case inline; arrays of booleans and mismatches (which need their
                // message classified) go to the helper.
                let want = if value { TAG_TRUE } else { TAG_FALSE };
                let tag = self.tag(node);
                let hit = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(want));
                let (done, code) = self.done_block();
                let slow = self.b.create_block();
                let ok = self.konst(OK);
                self.b.ins().brif(hit, done, &args(&[ok]), slow, &[]);
                self.b.switch_to_block(slow);
                let r = self.call_scalar(konst, node);
                self.b.ins().jump(done, &args(&[r]));
                self.b.switch_to_block(done);
                code
            }
            Some(&Shape::Scalar(konst)) => self.call_scalar(konst, node),
            // Not reachable: shape ids come from the same batch.
            None => self.konst(ERR),
        }
    }

    fn call_shape(&mut self, id: ShapeId, func: FuncId, node: Value) -> Value {
        let callee = match self.imported.get(&id) {
            Some(&f) => f,
            None => {
                let signature = match self.match_sig {
                    Some(s) => s,
                    None => {
                        let s = self.b.import_signature(self.batch.signature.clone());
                        self.match_sig = Some(s);
                        s
                    }
                };
                // As `Module::declare_func_in_func` does, except that the call is not
                // colocated: the JIT's memory may place functions further apart than a 32-bit
                // displacement reaches, so the call goes through a full address.
                let name = self.b.func.declare_imported_user_function(UserExternalName { namespace: 0, index: func.as_u32() });
                let f = self.b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: false,
                    patchable: false,
                });
                self.imported.insert(id, f);
                f
            }
        };
        let call = self.b.ins().call(callee, &[self.env, node]);
        self.first_result(call)
    }

    /// The result of a call (every callee returns one code).
    fn first_result(&mut self, call: Inst) -> Value {
        let r = self.b.inst_results(call).first().copied();
        r.unwrap_or_else(|| self.konst(ERR))
    }

    fn call_scalar(&mut self, konst: u32, node: Value) -> Value {
        let callee = self.b.ins().iconst(self.ptr, helpers::scalar as *const () as usize as i64);
        let pid = self.konst(konst);
        let call = self.b.ins().call_indirect(self.scalar_sig, callee, &[self.env, pid, node]);
        self.first_result(call)
    }

    /// A map pattern: the resource must be a map; entries run in order, the first non-`OK`
    /// result is the map's result.
    fn map(&mut self, entries: &[ShapeEntry], node: Value) -> Value {
        let (done, code) = self.done_block();
        let tag = self.tag(node);
        let is_obj = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(TAG_OBJECT));
        let body = self.b.create_block();
        let err = self.konst(ERR);
        self.b.ins().brif(is_obj, body, &[], done, &args(&[err]));
        self.b.switch_to_block(body);
        let m_start = self.node_field(node, offset_of!(DNode, a));
        let m_len = self.node_field(node, offset_of!(DNode, len));
        for entry in entries {
            let r = self.entry(entry, m_start, m_len);
            self.bail_unless_ok(r, done);
        }
        let ok = self.konst(OK);
        self.b.ins().jump(done, &args(&[ok]));
        self.b.switch_to_block(done);
        code
    }

    /// The value node of member `key_id` (the last one, as `serde_json` keeps), or 0 (the null
    /// node) when absent: a backwards scan over the map's members comparing interned ids.
    fn lookup(&mut self, key_id: u32, m_start: Value, m_len: Value) -> Value {
        let header = self.b.create_block();
        let i = self.b.append_block_param(header, I32);
        let body = self.b.create_block();
        let (found_block, found) = self.done_block();
        self.b.ins().jump(header, &args(&[m_len]));

        self.b.switch_to_block(header);
        let zero = self.konst(0);
        self.b.ins().brif(i, body, &[], found_block, &args(&[zero]));

        self.b.switch_to_block(body);
        let prev = self.b.ins().iadd_imm_s(i, -1);
        let index = self.b.ins().iadd(m_start, prev);
        let at = self.addr_of(Array::Members, index, size_of::<Member>() as i64);
        let k = self.b.ins().load(I32, Self::flags(), at, offset_of!(Member, key) as i32);
        let hit = self.b.ins().icmp_imm_u(IntCC::Equal, k, i64::from(key_id));
        let value = self.b.ins().load(I32, Self::flags(), at, offset_of!(Member, value) as i32);
        self.b.ins().brif(hit, found_block, &args(&[value]), header, &args(&[prev]));

        self.b.switch_to_block(found_block);
        found
    }

    /// `entry` of the interpreter, one arm per anchor.
    fn entry(&mut self, entry: &ShapeEntry, m_start: Value, m_len: Value) -> Value {
        let value = self.lookup(entry.key, m_start, m_len);
        if let EntryOp::Plain(v) = entry.op {
            // A plain key reads as null when absent, and `lookup` answers the null node then,
            // so one matcher covers both cases.
            return self.element(v, value);
        }
        let (done, code) = self.done_block();
        let present = self.b.create_block();
        let absent = self.b.create_block();
        self.b.ins().brif(value, present, &[], absent, &[]);

        // Absent key.
        self.b.switch_to_block(absent);
        let absent_code = match entry.op {
            EntryOp::Condition(_) => SKIP,
            // `"*"` reports a missing key.
            EntryOp::Star | EntryOp::Plain(_) => ERR,
            EntryOp::Global(_) | EntryOp::Equality(_) | EntryOp::Negation | EntryOp::Existence(_) => OK,
        };
        let c = self.konst(absent_code);
        self.b.ins().jump(done, &args(&[c]));

        // Present key.
        self.b.switch_to_block(present);
        let r = match entry.op {
            EntryOp::Condition(v) | EntryOp::Global(v) => {
                // Any mismatch under a conditional or global anchor is a skip.
                let r = self.element(v, value);
                let skip = self.konst(SKIP);
                let ok = self.konst(OK);
                self.b.ins().select(r, skip, ok)
            }
            EntryOp::Equality(v) | EntryOp::Plain(v) => self.element(v, value),
            EntryOp::Negation => self.konst(ERR),
            EntryOp::Existence(v) => self.existence(v, value),
            EntryOp::Star => {
                // `"*"`: present and not null.
                let tag = self.tag(value);
                let is_null = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(TAG_NULL));
                let err = self.konst(ERR);
                let ok = self.konst(OK);
                self.b.ins().select(is_null, err, ok)
            }
        };
        self.b.ins().jump(done, &args(&[r]));
        self.b.switch_to_block(done);
        code
    }

    /// `existence` of the interpreter: each map of the pattern list must match some element.
    fn existence(&mut self, id: ShapeId, node: Value) -> Value {
        let (done, code) = self.done_block();
        let tag = self.tag(node);
        let is_arr = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(TAG_ARRAY));
        let body = self.b.create_block();
        let err = self.konst(ERR);
        self.b.ins().brif(is_arr, body, &[], done, &args(&[err]));
        self.b.switch_to_block(body);
        let shapes = self.batch.shapes;
        let Some(Shape::Seq(items)) = shapes.shape(id) else {
            let err = self.konst(ERR);
            self.b.ins().jump(done, &args(&[err]));
            self.b.switch_to_block(done);
            return code;
        };
        let e_start = self.node_field(node, offset_of!(DNode, a));
        let e_len = self.node_field(node, offset_of!(DNode, len));
        for &item in items.iter() {
            if !matches!(shapes.shape(item), Some(Shape::Map(_))) {
                let err = self.konst(ERR);
                self.b.ins().jump(done, &args(&[err]));
                let dead = self.b.create_block();
                self.b.switch_to_block(dead);
                break;
            }
            // Search the resource elements for one that matches.
            let header = self.b.create_block();
            let i = self.b.append_block_param(header, I32);
            let search = self.b.create_block();
            let found = self.b.create_block();
            let zero = self.konst(0);
            self.b.ins().jump(header, &args(&[zero]));
            self.b.switch_to_block(header);
            let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, e_len);
            let err = self.konst(ERR);
            self.b.ins().brif(more, search, &[], done, &args(&[err]));
            self.b.switch_to_block(search);
            let index = self.b.ins().iadd(e_start, i);
            let at = self.addr_of(Array::Elems, index, 4);
            let elem = self.b.ins().load(I32, Self::flags(), at, 0);
            let r = self.element(item, elem);
            let next = self.b.ins().iadd_imm_u(i, 1);
            self.b.ins().brif(r, header, &args(&[next]), found, &[]);
            self.b.switch_to_block(found);
        }
        let ok = self.konst(OK);
        self.b.ins().jump(done, &args(&[ok]));
        self.b.switch_to_block(done);
        code
    }

    /// A list pattern (`element` on a `Seq`, then `array` of the interpreter).
    fn seq(&mut self, items: &[ShapeId], node: Value) -> Value {
        let (done, code) = self.done_block();
        let tag = self.tag(node);
        let is_arr = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(TAG_ARRAY));
        let body = self.b.create_block();
        let err = self.konst(ERR);
        self.b.ins().brif(is_arr, body, &[], done, &args(&[err]));
        self.b.switch_to_block(body);
        let Some(&first) = items.first() else {
            // "pattern Array empty".
            let err = self.konst(ERR);
            self.b.ins().jump(done, &args(&[err]));
            self.b.switch_to_block(done);
            return code;
        };
        let e_start = self.node_field(node, offset_of!(DNode, a));
        let e_len = self.node_field(node, offset_of!(DNode, len));
        let shapes = self.batch.shapes;
        let r = match shapes.shape(first) {
            Some(Shape::Map(_)) => self.each_element(first, e_start, e_len, done),
            Some(Shape::Seq(_)) => self.positional(items, e_start, e_len, done),
            // A scalar first element: every resource element must match it (the helper walks
            // the array).
            Some(&Shape::Bool { konst, .. } | &Shape::Scalar(konst)) => self.call_scalar(konst, node),
            None => self.konst(ERR),
        };
        self.b.ins().jump(done, &args(&[r]));
        self.b.switch_to_block(done);
        code
    }

    /// `each` of the interpreter over `(first, element)` pairs: an `ERR` stops the walk; when
    /// nothing applied and something skipped, the array is skipped.
    fn each_element(&mut self, first: ShapeId, e_start: Value, e_len: Value, done: Block) -> Value {
        let header = self.b.create_block();
        let i = self.b.append_block_param(header, I32);
        let applied = self.b.append_block_param(header, I32);
        let skipped = self.b.append_block_param(header, I32);
        let body = self.b.create_block();
        let exit = self.b.create_block();
        let zero = self.konst(0);
        self.b.ins().jump(header, &args(&[zero, zero, zero]));

        self.b.switch_to_block(header);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, e_len);
        self.b.ins().brif(more, body, &[], exit, &[]);

        self.b.switch_to_block(body);
        let index = self.b.ins().iadd(e_start, i);
        let at = self.addr_of(Array::Elems, index, 4);
        let elem = self.b.ins().load(I32, Self::flags(), at, 0);
        let r = self.element(first, elem);
        self.count_and_continue(r, i, applied, skipped, header, done);

        self.b.switch_to_block(exit);
        self.all_skipped(applied, skipped)
    }

    /// Nested lists compare position by position, after a length check.
    fn positional(&mut self, items: &[ShapeId], e_start: Value, e_len: Value, done: Block) -> Value {
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let short = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, e_len, i64::from(n));
        let go = self.b.create_block();
        let err = self.konst(ERR);
        self.b.ins().brif(short, done, &args(&[err]), go, &[]);
        self.b.switch_to_block(go);
        let mut applied = self.konst(0);
        let mut skipped = self.konst(0);
        for (k, &item) in items.iter().enumerate() {
            let offset = self.b.ins().iadd_imm_u(e_start, k as i64);
            let at = self.addr_of(Array::Elems, offset, 4);
            let elem = self.b.ins().load(I32, Self::flags(), at, 0);
            let r = self.element(item, elem);
            let is_err = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(ERR));
            let next = self.b.create_block();
            self.b.ins().brif(is_err, done, &args(&[r]), next, &[]);
            self.b.switch_to_block(next);
            let was_ok = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(OK));
            let was_skip = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(SKIP));
            let a = self.b.ins().uextend(I32, was_ok);
            let s = self.b.ins().uextend(I32, was_skip);
            applied = self.b.ins().iadd(applied, a);
            skipped = self.b.ins().iadd(skipped, s);
        }
        self.all_skipped(applied, skipped)
    }

    fn count_and_continue(&mut self, r: Value, i: Value, applied: Value, skipped: Value, header: Block, done: Block) {
        let is_err = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(ERR));
        let next = self.b.create_block();
        self.b.ins().brif(is_err, done, &args(&[r]), next, &[]);
        self.b.switch_to_block(next);
        let was_ok = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(OK));
        let was_skip = self.b.ins().icmp_imm_u(IntCC::Equal, r, i64::from(SKIP));
        let a = self.b.ins().uextend(I32, was_ok);
        let s = self.b.ins().uextend(I32, was_skip);
        let applied = self.b.ins().iadd(applied, a);
        let skipped = self.b.ins().iadd(skipped, s);
        let i = self.b.ins().iadd_imm_u(i, 1);
        self.b.ins().jump(header, &args(&[i, applied, skipped]));
    }

    /// `all_skipped`: `SKIP` when nothing applied and something was skipped, else `OK`.
    fn all_skipped(&mut self, applied: Value, skipped: Value) -> Value {
        let none_applied = self.b.ins().icmp_imm_u(IntCC::Equal, applied, 0);
        let some_skipped = self.b.ins().icmp_imm_u(IntCC::NotEqual, skipped, 0);
        let both = self.b.ins().band(none_applied, some_skipped);
        let skip = self.konst(SKIP);
        let ok = self.konst(OK);
        self.b.ins().select(both, skip, ok)
    }
}
