// The next decode step's input ids, written on the GPU (greedy search), so that a step
// uploads no ids and the host can record it before the last step's ids come back.
//
// chosen u32 [rows]: this step's token of each row (the argmax), unless params.forced is
//   not NONE: then every row took params.forced (a forced token, known on the host).
// eos u32 [n_eos]: the EOS ids (n_eos may be 0: the binding is then any read-only buffer).
// finished u32 [rows], read and written: 1 for a row whose sequence is over. A row finishes
//   when its token is an EOS id or when this step reaches the maximum length (params.last).
// ids u32 [rows]: the next step's input: the token, or params.pad once the row has finished
//   (the host discards a finished row's choice, as transformers pads it).
// One invocation per row.
//
// Constants: WG.

const NONE: u32 = 0xffffffffu;

@group(0) @binding(1) var<storage, read> chosen: array<u32>;
@group(0) @binding(2) var<storage, read> eos: array<u32>;
@group(0) @binding(3) var<storage, read_write> finished: array<u32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;

@compute @workgroup_size(WG)
fn next_ids(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let r = group_index(wid, nwg) * WG + lid;
    if r >= params.rows {
        return;
    }
    let tok = select(chosen[r], params.forced, params.forced != NONE);
    var done = finished[r] != 0u || params.last != 0u;
    for (var i = 0u; i < params.n_eos; i++) {
        done = done || eos[i] == tok;
    }
    finished[r] = select(0u, 1u, done);
    ids[r] = select(tok, params.pad, done);
}
