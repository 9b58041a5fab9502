// Workgroup reductions for the kernels that reduce a row with one workgroup: norm, softmax,
// sampling and attention's split keys. The runtime composes this file after common.wgsl and
// before the family's source for the families that list it in `Family::modules`
// (crates/gpu/src/pipeline.rs), resolving its `//#if` lines with the kernel's key.
//
// Contract with the including kernel:
//   WG         u32 constant: invocations per workgroup, a power of two.
//   SUBGROUPS  bool constant that every key of the family sets. true: reduce within each
//              subgroup (subgroupAdd / subgroupMax), then across subgroups through one slot per
//              subgroup in `red`; correct for any subgroup size (read at run time). false: a
//              shared-memory tree over one slot per invocation, and no subgroup builtin at all.
//   An entry point that reduces takes `ids: LocalIds` among its parameters and calls
//   `init(ids)` first; `lid` is then its local invocation index.
//   wg_sum / wg_max are called by every invocation of the workgroup (uniform control flow)
//   and return the result to every invocation. Each ends with a barrier, so `red` is free
//   scratch between reductions and whatever the workgroup wrote before one is visible to all
//   of it after.
//
// Declares: red, lid, sg_lane, sg_size, sg_id, sg_count (the last four with SUBGROUPS),
// LocalIds, init, wg_sum, wg_max, wg_reduce, reduce_op, sg_reduce, REDUCE_SUM, REDUCE_MAX.

// Tree: one slot per invocation. Subgroups: one slot per subgroup (at most WG).
var<workgroup> red: array<f32, WG>;

var<private> lid: u32;
//#if SUBGROUPS
var<private> sg_lane: u32;
var<private> sg_size: u32;
var<private> sg_id: u32;
var<private> sg_count: u32;
//#endif

// The invocation's place in its workgroup, as entry-point builtins.
struct LocalIds {
    @builtin(local_invocation_index) index: u32,
//#if SUBGROUPS
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
//#endif
}

fn init(ids: LocalIds) {
    lid = ids.index;
//#if SUBGROUPS
    sg_lane = ids.sg_lane;
    sg_size = ids.sg_size;
    sg_id = ids.sg_id;
    sg_count = ids.sg_count;
//#endif
}

// Sum of `v` over the workgroup, returned to every invocation.
fn wg_sum(v: f32) -> f32 {
    return wg_reduce(v, REDUCE_SUM);
}

// Maximum of `v` over the workgroup, returned to every invocation.
fn wg_max(v: f32) -> f32 {
    return wg_reduce(v, REDUCE_MAX);
}

// The operation of wg_reduce. Every call passes a constant, so once the driver inlines the
// call (Mesa always does) the choice folds away and each use compiles to one operation.
const REDUCE_SUM: u32 = 0u;
const REDUCE_MAX: u32 = 1u;

fn reduce_op(a: f32, b: f32, op: u32) -> f32 {
    return select(a + b, max(a, b), op == REDUCE_MAX);
}

//#if SUBGROUPS
fn sg_reduce(v: f32, op: u32) -> f32 {
    if op == REDUCE_MAX {
        return subgroupMax(v);
    }
    return subgroupAdd(v);
}
//#endif

fn wg_reduce(v: f32, op: u32) -> f32 {
//#if SUBGROUPS
    let s = sg_reduce(v, op);
    if sg_lane == 0u {
        red[sg_id] = s;
    }
    workgroupBarrier();
    // Every subgroup combines the per-subgroup results itself, sg_size at a time (the trip
    // count is subgroup-uniform). Lanes past the last result bring what changes nothing: 0 to
    // a sum, a copy of red[0] to a maximum (no infinity needed).
    let pad = select(0.0, red[0], op == REDUCE_MAX);
    var acc = pad;
    for (var base = 0u; base < sg_count; base += sg_size) {
        let i = base + sg_lane;
        acc = reduce_op(acc, select(pad, red[min(i, WG - 1u)], i < sg_count), op);
    }
    let total = sg_reduce(acc, op);
    workgroupBarrier();
    return total;
//#else
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] = reduce_op(red[lid], red[lid + s], op);
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
//#endif
}
