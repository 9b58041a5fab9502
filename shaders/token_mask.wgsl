// Per-row allowed-token masks (constrained decoding), applied in place to logits (or
// log-probs) xio f32 [rows, V]: xio[r, i] = -inf where bit i of the row's mask is clear.
//
// masks u32 [states, W], W = ceil(V / 32): bit b of word w allows token 32 w + b.
// row_state u32 [rows]: the mask row of each logits row; a value >= states leaves the row
//   as it is (an unconstrained or finished row).
// One invocation per (row, word): it reads one mask word and writes the -inf of its 32
// tokens, so an all-allowed word costs one load and nothing else. Entries a mask allows
// are never written (they stay bit for bit as they were).
//
// Constants: WG.

@group(0) @binding(1) var<storage, read_write> xio: array<f32>;
@group(0) @binding(2) var<storage, read> masks: array<u32>;
@group(0) @binding(3) var<storage, read> row_state: array<u32>;

@compute @workgroup_size(WG)
fn token_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * WG + lid;
    if i >= params.rows * params.words {
        return;
    }
    let r = i / params.words;
    let w = i - r * params.words;
    let s = row_state[r];
    if s >= params.states {
        return;
    }
    let bits = masks[s * params.words + w];
    if bits == 0xffffffffu {
        return;
    }
    let first = w * 32u;
    let n = min(32u, params.v - first);
    let base = r * params.v + first;
    for (var b = 0u; b < n; b++) {
        if ((bits >> b) & 1u) == 0u {
            xio[base + b] = params.neg_inf;
        }
    }
}
