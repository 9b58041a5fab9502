// The cross-attention heatmap, drawn straight from the probabilities buffer the attention
// kernel wrote ([1, heads, rows, cols] f32): one triangle over the paint callback's viewport,
// one cell per (target row, source column). The colour stops are prepended by heatmap.rs
// (`const STOPS`), from the same table the Rust side uses.

struct Params {
    rows: u32,
    cols: u32,
    heads: u32,
    // A head index, or `heads` and above for the mean over the heads.
    head: u32,
    // 1 when the target stores sRGB: the shader then writes linear values.
    srgb_target: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // The map's rectangle in framebuffer pixels: cells follow it even where egui clips the
    // viewport to the screen.
    origin: vec2<f32>,
    size: vec2<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;

// One triangle over the whole viewport (egui sets it to the callback's rectangle).
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32((i << 1u) & 2u);
    let y = f32(i & 2u);
    return vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
}

fn weight(row: u32, col: u32) -> f32 {
    if params.head < params.heads {
        return probs[(params.head * params.rows + row) * params.cols + col];
    }
    var sum = 0.0;
    for (var h = 0u; h < params.heads; h++) {
        sum += probs[(h * params.rows + row) * params.cols + col];
    }
    return sum / f32(params.heads);
}

fn colormap(p: f32) -> vec3<f32> {
    var stops = STOPS;
    let t = clamp(p, 0.0, 1.0) * f32(N_STOPS - 1u);
    let i = min(u32(floor(t)), N_STOPS - 2u);
    return mix(stops[i], stops[i + 1u], t - f32(i));
}

fn to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let uv = clamp((frag.xy - params.origin) / params.size, vec2<f32>(0.0), vec2<f32>(1.0));
    let row = min(u32(uv.y * f32(params.rows)), params.rows - 1u);
    let col = min(u32(uv.x * f32(params.cols)), params.cols - 1u);
    var c = colormap(weight(row, col));
    if params.srgb_target == 1u {
        c = to_linear(c);
    }
    return vec4<f32>(c, 1.0);
}
