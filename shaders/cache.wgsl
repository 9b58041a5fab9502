// KV-cache writes and beam bookkeeping.
//
// copy_rows: dst[dst_off + r * dst_stride + c] = src[src_off + r * src_stride + c] for
//            r < rows, c < cols; one invocation per element (f32 bits copied as u32).
// reorder_rows_table: new[b, t] = old[parents[b], t] for t < len, new[b, len] = b when
//            len < stride; one invocation per (b, t <= len). A parent outside the batch reads
//            row b itself (the launcher cannot see the parents; the kernel stays in bounds).

@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read> parents: array<u32>;
@group(0) @binding(4) var<storage, read> old_rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> new_rows: array<u32>;

@compute @workgroup_size(WG)
fn copy_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if i >= params.rows * params.cols {
        return;
    }
    let r = i / params.cols;
    let c = i - r * params.cols;
    dst[params.dst_off + r * params.dst_stride + c] = src[params.src_off + r * params.src_stride + c];
}

@compute @workgroup_size(WG)
fn reorder_rows_table(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    // params.cols: entries written per row (len + 1, or len when len == stride).
    let i = group_index(wid, nwg) * WG + lid;
    if i >= params.rows * params.cols {
        return;
    }
    let b = i / params.cols;
    let t = i - b * params.cols;
    let stride = params.dst_stride;
    if t == params.len {
        new_rows[b * stride + t] = b;
    } else {
        let p = parents[b];
        let src_row = select(b, p, p < params.rows);
        new_rows[b * stride + t] = old_rows[src_row * stride + t];
    }
}
