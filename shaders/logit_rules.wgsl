// Per-row token-range bans and Whisper's timestamp rule, applied in place to logits (or
// log-probs) xio f32 [rows, V], so that a decode step edits its rows without reading them
// back. One workgroup of WG invocations per row.
//
// rules u32 [rows, RULE_WORDS], per row:
//   words 0..14  seven (lo, hi) pairs: xio[row, lo..min(hi, V)] = -inf (empty when lo >= hi;
//                pairs may overlap; (0, 0) is a no-op).
//   word 14      flag: after the bans, apply the timestamp rule (when timestamp_begin < V).
//   word 15      reserved (0).
// Timestamp rule (transformers' WhisperTimeStampLogitsProcessor, last step): with
// m = max(x[0..tb]) and s = logsumexp(x[tb..V]) over the banned row (tb = timestamp_begin),
// if s > m then x[0..tb] = -inf. Comparing raw logits equals comparing log-softmax values:
// both sides shift by the row's logsumexp. All -inf timestamps give s = -inf (no firing);
// tb = 0 gives m = -inf.
//
// Constants: WG (a power of two) and SUBGROUPS, always false here: the reductions are
// reduce.wgsl's shared-memory trees, so GL (no subgroups) runs the same kernel.

@group(0) @binding(1) var<storage, read_write> xio: array<f32>;
@group(0) @binding(2) var<storage, read> rules: array<u32>;

const RULE_WORDS: u32 = 16u;
const RULE_RANGES: u32 = 7u;
const FLAG_WORD: u32 = 14u;

// The row's (lo, min(hi, V)) pairs, read once per invocation.
var<private> ranges: array<vec2<u32>, RULE_RANGES>;

fn is_banned(i: u32) -> bool {
    var b = false;
    for (var p = 0u; p < RULE_RANGES; p++) {
        b = b || (i >= ranges[p].x && i < ranges[p].y);
    }
    return b;
}

@compute @workgroup_size(WG)
fn logit_rules(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               ids: LocalIds) {
    init(ids);
    let row = group_index(wid, nwg);
    if row >= params.rows {
        return; // uniform across the workgroup
    }
    let v = params.v;
    let base = row * v;
    let rb = row * RULE_WORDS;
    for (var p = 0u; p < RULE_RANGES; p++) {
        ranges[p] = vec2<u32>(rules[rb + 2u * p], min(rules[rb + 2u * p + 1u], v));
    }
    let tb = params.timestamp_begin;
    if rules[rb + FLAG_WORD] == 0u || tb >= v {
        // Bans only: the lanes split each range. Overlapping ranges write the same -inf
        // twice, which is harmless, and nothing reads the row afterwards.
        for (var p = 0u; p < RULE_RANGES; p++) {
            for (var i = ranges[p].x + lid; i < ranges[p].y; i += WG) {
                xio[base + i] = params.neg_inf;
            }
        }
        return; // uniform: the flag and tb are the same for the whole workgroup
    }

    // From here on each invocation reads and writes only the entries i ≡ lid (mod WG): it
    // bans its own entries and reduces the values it just wrote, so the reductions see the
    // bans without any invocation reading another's writes to the row (no storage barrier).
    var text_max = params.neg_inf;
    var ts_max = params.neg_inf;
    for (var i = lid; i < v; i += WG) {
        var x = xio[base + i];
        if is_banned(i) {
            x = params.neg_inf;
            xio[base + i] = x;
        }
        if i < tb {
            text_max = max(text_max, x);
        } else {
            ts_max = max(ts_max, x);
        }
    }
    let m = wg_max(text_max);
    let tm = wg_max(ts_max);
    // Sum of exp(x - tm) over the timestamps, from this invocation's first entry >= tb. With
    // every timestamp at -inf the sum stays 0 (never exp(-inf - -inf) = NaN).
    var s = 0.0;
    if tm > params.neg_inf {
        var i = tb - tb % WG + lid;
        if i < tb {
            i += WG;
        }
        for (; i < v; i += WG) {
            s += exp(xio[base + i] - tm);
        }
    }
    let total = wg_sum(s);
    // Every invocation holds the same m, tm and total (read from one slot), so this
    // branch is uniform.
    let lse = select(params.neg_inf, tm + log(total), tm > params.neg_inf);
    if lse > m {
        for (var i = lid; i < tb; i += WG) {
            xio[base + i] = params.neg_inf;
        }
    }
}
