// Elementwise kernels over flat f32 data. Every key sets WG and ACT (activation.wgsl; `add`
// sets 0 and does not use it).
//
// add: out[i] = a[i] + b[i % n_b]. With n_b == n it is a plain sum (residual); with n_b the
// row length it adds one row to every row (bias).
//
// gated: out[r, f] = activate(a[r, f]) · a[r, F + f] for out [R, F] and a [R, 2F] (F = cols):
// a gated feed-forward (T5 v1.1 gated-gelu) whose two projections one matmul wrote side by
// side. The activation is matmul's epilogue's, from the same module.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if i >= params.n {
        return;
    }
    out[i] = a[i] + b[i % params.n_b];
}

@compute @workgroup_size(WG)
fn gated(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if i >= params.n {
        return;
    }
    // i = r·F + f; the gate is at r·2F + f = i + r·F, its partner F further.
    let f = i % params.cols;
    let g = i + (i - f);
    out[i] = activate(a[g]) * a[g + params.cols];
}
