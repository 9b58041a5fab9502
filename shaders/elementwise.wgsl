// Elementwise kernels over flat f32 data.
//
// add: out[i] = a[i] + b[i % n_b]. With n_b == n it is a plain sum (residual); with n_b the
// row length it adds one row to every row (bias).

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
