// im2col for 1-D convolutions (Whisper's encoder front end): unfolds the input so that a
// Conv1d becomes one matmul, C = A·Bᵀ with the weight [out, in, K] seen as [out, in·K].
//
// im2col_1d: out[b, t, c·K + k] = x(b, c, t·stride + k − pad), 0 where that position falls
// outside 0..T_in, for b < B, t < T_out, c < C, k < K; out is [B, T_out, C·K]. x is read
// channels-first [B, C, T_in] or, with CHANNELS_LAST, channels-last [B, T_in, C]. One
// invocation per element of out. Constants: WG, CHANNELS_LAST.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn im2col_1d(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let e = group_index(wid, nwg) * WG + lid;
    if e >= params.n {
        return;
    }
    let col = e % params.cols;
    let row = e / params.cols;
    let t = row % params.t_out;
    let b = row / params.t_out;
    let c = col / params.kernel;
    let k = col % params.kernel;
    // q = position + pad, in unsigned arithmetic: the launcher keeps T_in + 2·pad, the
    // largest q + 1, below 2^32, and the padding is tested before subtracting it.
    let q = t * params.stride + k;
    var v = 0.0;
    if q >= params.pad && q - params.pad < params.t_in {
        let p = q - params.pad;
//#if CHANNELS_LAST
        v = x[(b * params.t_in + p) * params.channels + c];
//#else
        v = x[(b * params.channels + c) * params.t_in + p];
//#endif
    }
    out[e] = v;
}
