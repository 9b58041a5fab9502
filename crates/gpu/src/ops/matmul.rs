//! Launcher for `shaders/matmul.wgsl`: batched matmul with a fused epilogue.
//!
//! Validate, then select, then launch: [`matmul`] checks shapes and dtypes (errors name the
//! shapes), picks a kernel ([`MatmulImpl`]), then records one dispatch.

use crate::error::{Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Gpu, Recorder, Tensor, Work};

/// Activation applied in the epilogue, after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    #[default]
    None,
    /// gelu with erf (`gelu` in Hugging Face configs).
    Gelu,
    /// gelu with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
    /// x * sigmoid(x) (`silu`, `swish`).
    Silu,
}

impl Activation {
    /// Every activation (tests loop over these).
    pub const ALL: [Activation; 5] = [
        Activation::None,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Relu,
        Activation::Silu,
    ];
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MatmulImpl {
    #[default]
    Auto,
    /// One invocation per output element: the plain reference kernel.
    Naive,
    /// Shared-memory tiles, for many rows.
    Tiled,
    /// Few rows (decode steps, 1-32 rows): each workgroup streams weight rows once.
    Rows,
    /// One subgroup of 8 lanes per 8-32 × 64 block, A shared by subgroup broadcasts, no
    /// workgroup memory: made for CPU adapters (see [`selected_impl`]). Needs subgroups of
    /// exactly 8 lanes (lavapipe); an error naming why elsewhere.
    Broadcast,
}

/// Options of [`matmul`]. The epilogue computes `act(acc + bias) + residual`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatmulOptions<'a> {
    /// `b` is `[N, K]` (Hugging Face Linear weight layout, C = A·Bᵀ) when true, `[K, N]` when false.
    pub trans_b: bool,
    /// f32 `[N]`, added to every row.
    pub bias: Option<&'a Tensor>,
    /// f32 `[N]`: with an int8 `b`, each output column's dot product is multiplied by its
    /// scale before the bias (symmetric per-row quantization). Required with int8, refused
    /// otherwise.
    pub scales: Option<&'a Tensor>,
    pub act: Activation,
    /// f32 with the shape of `out`; must be a different tensor than `out`.
    pub residual: Option<&'a Tensor>,
    /// Write columns `out_col_offset .. out_col_offset + N` of `out`, whose last dimension may
    /// be wider than N (a weight split into row chunks that each fit one binding).
    pub out_col_offset: usize,
    pub imp: MatmulImpl,
}

/// `out[b, m, n] = epilogue(Σ_k a[b, m, k] · B[b, n, k])`.
///
/// - `a`: f32 `[M, K]` or `[batch, M, K]` (more leading dims are flattened into batch).
/// - `b`: f32 or f16, `[N, K]` (trans_b) or `[K, N]`; either shared by every batch (2-D) or
///   batched `[batch, N, K]` / `[batch, K, N]`. Or int8 `[N, K]` with trans_b, 2-D, K a
///   multiple of 4, and `opts.scales`.
/// - `out`: f32 `[M, W]` or `[batch, M, W]` with W ≥ out_col_offset + N.
pub fn matmul(
    rec: &mut Recorder,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
) -> Result<()> {
    matmul_tuned(rec, a, b, out, opts, Tuning::Adapter)
}

pub use super::Tuning;

/// [`matmul`] with an explicit tuning table (tests and benches).
pub fn matmul_tuned(
    rec: &mut Recorder,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
    tuning: Tuning,
) -> Result<()> {
    let p = validate(a, b, out, opts)?;
    if p.batch == 0 || p.m == 0 || p.n == 0 {
        return Ok(());
    }
    let cpu = tuning.cpu(rec.gpu());
    let tile = tile_for(rec.gpu(), cpu, &p);
    let bias = opts.bias.unwrap_or(a);
    let res = opts.residual.unwrap_or(a);
    let scaled = [a, b, bias, res, out, opts.scales.unwrap_or(a)];
    let tensors = if p.b_i8 { &scaled[..] } else { &scaled[..5] };
    let work = p.work(opts, b);
    match (resolve(cpu, broadcasts(rec.gpu()), p.m, opts.imp), tile) {
        (MatmulImpl::Rows, _) => launch_rows(rec, cpu, &p, opts, tensors, None),
        (MatmulImpl::Broadcast, _) => launch_broadcast(rec, &p, opts, tensors),
        (MatmulImpl::Tiled, Some(tile)) => launch_tiled(rec, &p, opts, tensors, tile),
        // No tile fits the adapter's limits (none needs more than WebGPU's minimum).
        (MatmulImpl::Tiled, None) | (MatmulImpl::Naive | MatmulImpl::Auto, _) => {
            launch_naive(rec, &p, opts, tensors)
        }
    }?;
    rec.declare_work(work);
    Ok(())
}

/// `imp` with `Auto` resolved for `a_rows` rows of A per batch, on a CPU adapter or not,
/// with 8-wide subgroups for `Broadcast` or not.
fn resolve(cpu: bool, bcast: bool, a_rows: usize, imp: MatmulImpl) -> MatmulImpl {
    let rows_max = match (cpu, bcast) {
        (false, _) => ROWS_MAX_M,
        (true, true) => CPU_ROWS_MAX_M,
        (true, false) => CPU_TILED_ROWS_MAX_M,
    };
    match imp {
        MatmulImpl::Auto if a_rows <= rows_max => MatmulImpl::Rows,
        MatmulImpl::Auto if cpu && bcast => MatmulImpl::Broadcast,
        MatmulImpl::Auto => MatmulImpl::Tiled,
        other => other,
    }
}

/// Whether `Broadcast` runs here: it needs subgroups exactly 8 wide (lavapipe on AVX2), one
/// subgroup per block sharing A through broadcasts. Elsewhere `Auto` keeps `Tiled` and a
/// forced `Broadcast` is an error naming why.
fn broadcasts(gpu: &Gpu) -> bool {
    let c = gpu.caps();
    c.subgroups && c.subgroup_min_size == 8 && c.subgroup_max_size == 8
}

/// Rows of A (per batch) up to which `Auto` picks the `Rows` kernel on GPUs.
pub const ROWS_MAX_M: usize = 32;
/// The same on CPU adapters with 8-wide subgroups, where `Broadcast` takes over from 3 rows.
pub const CPU_ROWS_MAX_M: usize = 2;
/// The same on CPU adapters without them (llvmpipe GL), where thin `Tiled` tiles take over
/// from 5 rows.
pub const CPU_TILED_ROWS_MAX_M: usize = 4;

/// The kernel [`matmul`] runs for problems with `a_rows` rows of A per batch (`Auto`
/// resolved): for benches and logs.
///
/// `Auto` on GPUs: `Rows` when M ≤ [`ROWS_MAX_M`]: decode steps and other thin products are
/// bound by reading B, which `Rows` reads once for all rows, while a tile of `Tiled` would be
/// mostly padding; `Tiled` otherwise.
///
/// On CPU adapters (lavapipe, llvmpipe) nothing is bandwidth-bound: every load inside a loop
/// is a per-lane loop and the cost is loads per multiply-add. lavapipe (Mesa 22.3) turns a
/// load into one scalar load only when its address is a constant or push-constant expression,
/// not when it is merely the same for every lane: in `rows_nk` at 1x512x58101, weight
/// addresses made lane-independent (workgroup id and loop counter only) left it at 16.8 ms,
/// while dropping the weight loads altogether took it from 17.0 to 6.1 ms. What does share a
/// value across lanes cheaply is `subgroupBroadcast` from a constant lane, so `Broadcast`
/// gives each lane 8 columns of a 32-row block, loads only its own B per lane and gets all of
/// A by broadcast: per k step 8 per-lane B loads and one A load serve 256 multiply-adds per
/// lane, against 8 loads (plus staging in workgroup memory) for 64 in `Tiled`'s 8×8 blocks.
/// Measured on lavapipe (µs, before: thin or 64×64 CPU `Tiled` / `Broadcast`): 8x512x2048
/// 2015 / 892, 16x512x2048 2900 / 1509, 32x512x2048 4861 / 2189, 64x768x768 4671 / 2477,
/// 256x512x2048 32859 / 16612, 256x2048x512 30916 / 16213, 32x512x58101 132202 / 65382
/// (14 → 29 GFLOP/s). Against `Rows` at a few rows (x512x2048, Rows / Broadcast): M = 1
/// 649 / 790, M = 2 827 / 815, M = 3 1165 / 808, M = 4 1132 / 805: with M = 1 every weight is
/// used once and `Rows`' lanes, reading neighbouring words of one weight row, stream it
/// faster than `Broadcast`'s lanes spread over 8 rows (1x512x58101: 18.4 / 23.4 ms). So
/// `Rows` up to [`CPU_ROWS_MAX_M`] rows there, `Broadcast` above. Without 8-wide subgroups
/// (llvmpipe GL) `Rows` up to [`CPU_TILED_ROWS_MAX_M`] rows and thin `Tiled` tiles above, as
/// measured before `Broadcast` (Rows / thin Tiled, µs: 4x512x1536 802 / 1420, 8x512x1536
/// 1548 / 1439, 32x512x1536 5995 / 3348).
///
/// `Tiled` falls back to `Naive` if no tile fits the adapter's limits (none of the tiles
/// needs more than WebGPU's minimum limits).
pub fn selected_impl(gpu: &Gpu, a_rows: usize, imp: MatmulImpl) -> MatmulImpl {
    match resolve(Tuning::Adapter.cpu(gpu), broadcasts(gpu), a_rows, imp) {
        MatmulImpl::Tiled if tile_config(gpu).is_none() => MatmulImpl::Naive,
        other => other,
    }
}

crate::wgsl_params! {
    /// Parameters shared by every matmul entry point.
    pub struct MatmulParams {
        /// Problem sizes: rows of A per batch, columns of out, reduction length, batches.
        pub m: u32,
        pub n: u32,
        pub k: u32,
        pub batch: u32,
        /// Elements between consecutive batches of B: 0 when B is shared.
        pub b_bstride: u32,
        /// Row length W of `out` (and of the residual).
        pub out_ld: u32,
        /// First column of `out` written.
        pub out_off: u32,
        /// The norm prologue's epsilon (shaders/norm_prologue.wgsl; 0 without it).
        pub eps: f32,
    }
}

/// a, w (B), bias, residual, out.
const BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::Read),
    (5, Access::ReadWrite),
];

/// The same plus the int8 weights' scales.
const BINDINGS_I8: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::Read),
    (5, Access::ReadWrite),
    (6, Access::Read),
];

fn bindings(p: &Problem) -> Bindings {
    if p.b_i8 { BINDINGS_I8 } else { BINDINGS }
}

/// A validated problem.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    pub(crate) batch: usize,
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// B has its own matrix per batch.
    b_batched: bool,
    b_f16: bool,
    /// B is int8, four to a word, with per-row scales.
    b_i8: bool,
    /// Row length of out.
    w: usize,
}

impl Problem {
    /// Bytes every kernel must move at least (A and B read once, out written once, the
    /// epilogue's inputs read once) and 2·M·N·K FLOPs per batch.
    pub(crate) fn work(&self, opts: &MatmulOptions, b: &Tensor) -> Work {
        let rows = (self.batch * self.m) as u64;
        let f32s = |n: u64| n * 4;
        let epilogue = [opts.bias, opts.scales]
            .into_iter()
            .flatten()
            .map(Tensor::byte_len)
            .sum::<u64>()
            + opts.residual.map_or(0, |_| f32s(rows * self.n as u64));
        Work {
            bytes: f32s(rows * self.k as u64)
                + b.byte_len()
                + f32s(rows * self.n as u64)
                + epilogue,
            flops: 2 * rows * (self.n * self.k) as u64,
        }
    }

    fn params(&self, opts: &MatmulOptions) -> MatmulParams {
        MatmulParams {
            m: self.m as u32,
            n: self.n as u32,
            k: self.k as u32,
            batch: self.batch as u32,
            b_bstride: if self.b_batched {
                (self.n * self.k) as u32
            } else {
                0
            },
            out_ld: self.w as u32,
            out_off: opts.out_col_offset as u32,
            eps: 0.0,
        }
    }
}

/// `ACT` of shaders/activation.wgsl, which every family that applies an activation shares.
pub(crate) fn act_code(act: Activation) -> u32 {
    match act {
        Activation::None => 0,
        Activation::Gelu => 1,
        Activation::GeluTanh => 2,
        Activation::Relu => 3,
        Activation::Silu => 4,
    }
}

/// The constants every entry point shares: weight dtype, layout, epilogue, load widths.
fn base_key(
    entry: &'static str,
    p: &Problem,
    opts: &MatmulOptions,
    a_vec4: bool,
    w_load: WLoad,
    flags: EntryFlags,
) -> KernelKey {
    KernelKey::new(Family::Matmul, entry)
        .flag("NAIVE", entry == "naive")
        .flag("TILED", entry == "tiled")
        .flag("QUADS", entry == "tiled" || entry == "bcast")
        .flag("BCAST", entry == "bcast")
        .flag("BC16", flags.bc_groups >= 2)
        .flag("BC32", flags.bc_groups >= 4)
        .flag("W_F16", p.b_f16)
        .flag("W_I8", p.b_i8)
        .flag("TRANS_B", opts.trans_b)
        .flag("HAS_BIAS", opts.bias.is_some())
        .flag("HAS_RES", opts.residual.is_some())
        .u32("ACT", act_code(opts.act))
        .flag("A_VEC4", a_vec4)
        .flag("W_VEC4", w_load == WLoad::Vec4)
        .flag("W_VEC2", w_load == WLoad::Vec2)
        .flag("TM8", flags.tm8)
        .flag("TN8", flags.tn8)
        .flag("TILED_SG", flags.tiled_sg)
        .flag("ROWS", entry.starts_with("rows"))
        .flag("ROWS_NK", entry == "rows_nk")
        .flag("ROWS_KN", entry == "rows_kn")
        .flag("SUBGROUPS", flags.subgroups)
        .flag("PAIRS", flags.pairs)
        .flag("NORM_A", flags.norm_a)
        .flag("RMS_A", flags.rms_a)
        .flag("KEEP", flags.keep)
}

/// Flags of one entry point's section. The preprocessor needs every `//#if` name of the file
/// in every key, so each key carries all of them (false where the entry does not use them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct EntryFlags {
    /// tiled: 8 rows / 8 columns per invocation (else 4).
    tm8: bool,
    tn8: bool,
    /// tiled: A quads shared through subgroup broadcasts.
    tiled_sg: bool,
    /// rows: reduce with subgroup operations (else workgroup memory only).
    subgroups: bool,
    /// rows_nk: f16 weights read as u32 words of two halves.
    pairs: bool,
    /// bcast: groups of 8 rows per block (1, 2 or 4).
    bc_groups: u32,
    /// rows_nk: A's rows normalised in the prologue (layer norm, or RMS norm with rms_a),
    /// and written back with keep (shaders/norm_prologue.wgsl).
    norm_a: bool,
    rms_a: bool,
    keep: bool,
}

/// How a kernel declares and reads B's u32 words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WLoad {
    Scalar,
    /// vec2<u32>: 4 f16.
    Vec2,
    /// vec4<u32>: 4 f32, 8 f16 or 16 int8.
    Vec4,
}

const NAIVE_WG: u32 = 64;

fn launch_naive(
    rec: &mut Recorder,
    p: &Problem,
    opts: &MatmulOptions,
    t: &[&Tensor],
) -> Result<()> {
    let key = base_key(
        "naive",
        p,
        opts,
        false,
        WLoad::Scalar,
        EntryFlags::default(),
    )
    .u32("WG", NAIVE_WG);
    let kernel = rec.gpu().kernel::<MatmulParams>(&key, bindings(p))?;
    let total = (p.batch * p.m * p.n) as u32;
    let groups = grid(rec.gpu(), total.div_ceil(NAIVE_WG));
    rec.dispatch(&kernel, &p.params(opts), t, groups)
}

/// Tile shape of the `tiled` kernel: a BM×BN output tile per workgroup, K in BK-deep
/// slices, TM×TN outputs per invocation, so (BM/TM)·(BN/TN) invocations per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileConfig {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl TileConfig {
    pub fn invocations(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Bytes of workgroup memory: one BK-deep slice of A and of B, f32.
    pub fn workgroup_bytes(&self) -> u32 {
        (self.bm + self.bn) * self.bk * 4
    }

    /// Whether the kernel supports this tile (TM, TN ∈ {4, 8}, the tile divisible by the
    /// register block, BK a multiple of 4) and the adapter can run it (workgroup memory,
    /// invocations).
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        let nt = self.invocations();
        matches!(self.tm, 4 | 8)
            && matches!(self.tn, 4 | 8)
            && self.bm.is_multiple_of(self.tm)
            && self.bn.is_multiple_of(self.tn)
            && self.bk.is_multiple_of(4)
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
            && nt <= limits.max_compute_invocations_per_workgroup
            && nt <= limits.max_compute_workgroup_size_x
    }
}

/// Tiles by preference. Real GPUs (32/64-wide warps, high bandwidth): 64×64 tiles of 256
/// invocations with 4×4 outputs each, 8 KiB of workgroup memory, enough workgroups in flight
/// to hide latency (per k step an invocation reads 2 vec4s of workgroup memory for 16 FMAs).
/// CPU adapters (lavapipe runs 8 invocations per SIMD instruction, one workgroup per core
/// at a time): 64 fat invocations with 8×8 outputs, since every workgroup-memory read inside
/// a loop is a per-lane gather there and only the register block amortises it (measured on
/// lavapipe: 8×8 ≈ 3× the throughput of 4×4 and of 16×16, which spills). The last entry of
/// each table fits WebGPU's smallest limits (16 KiB, 256 invocations).
const GPU_TILES: &[TileConfig] = &[
    TileConfig {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 4,
        tn: 4,
    },
    TileConfig {
        bm: 32,
        bn: 32,
        bk: 8,
        tm: 4,
        tn: 4,
    },
];
const CPU_TILES: &[TileConfig] = &[
    TileConfig {
        bm: 64,
        bn: 64,
        bk: 32,
        tm: 8,
        tn: 8,
    },
    TileConfig {
        bm: 32,
        bn: 32,
        bk: 8,
        tm: 4,
        tn: 4,
    },
];

/// On GPUs, problems with at least this many 128×128 tiles use [`GPU_BIG_TILE`]: 8×8
/// outputs per invocation halve the workgroup-memory reads per FMA (2 vec4 reads per 16 FMAs
/// become 4 per 64), which only pays once the grid still fills every multiprocessor.
const GPU_BIG_TILE_MIN_GROUPS: usize = 256;
const GPU_BIG_TILE: TileConfig = TileConfig {
    bm: 128,
    bn: 128,
    bk: 16,
    tm: 8,
    tn: 8,
};

/// The default tile of `tiled` on this adapter, if any fits its limits.
pub fn tile_config(gpu: &Gpu) -> Option<TileConfig> {
    default_tile(gpu, Tuning::Adapter.cpu(gpu))
}

fn default_tile(gpu: &Gpu, cpu: bool) -> Option<TileConfig> {
    let table = if cpu { CPU_TILES } else { GPU_TILES };
    table.iter().copied().find(|t| t.fits(gpu.limits()))
}

/// CPU adapters without 8-wide subgroups, or `Tiled` forced (with them `Auto` picks
/// `Broadcast`), problems of at most 32 rows of A: a tile of 8, 16 or 32 rows (the
/// smallest that holds them) × 64 columns with the 8×8 blocks of [`CPU_TILES`], so that
/// no lane computes padding rows (measured 1.6-1.9× the 64×64 tile at M = 32, more below).
/// 8 rows are one subgroup of 8 lanes: no barrier waits on another subgroup. (A kernel
/// without workgroup memory, each subgroup reading its 8 × 64 block's quads straight from A
/// and B, measured within ±20% of these tiles: on lavapipe a load costs a loop over the lanes
/// and components wherever it reads from, so loads per multiply-add decide, not staging.)
fn cpu_thin_tile(m: usize) -> Option<TileConfig> {
    (m <= 32).then(|| TileConfig {
        bm: (m.next_power_of_two() as u32).max(8),
        bn: 64,
        bk: 32,
        tm: 8,
        tn: 8,
    })
}

/// The tile for one problem: the default, the thin CPU tile for few rows, or the big GPU
/// tile for large grids.
fn tile_for(gpu: &Gpu, cpu: bool, p: &Problem) -> Option<TileConfig> {
    if cpu
        && let Some(thin) = cpu_thin_tile(p.m)
        && thin.fits(gpu.limits())
    {
        return Some(thin);
    }
    let big = GPU_BIG_TILE;
    let big_groups = p.m.div_ceil(big.bm as usize) * p.n.div_ceil(big.bn as usize) * p.batch;
    if !cpu && big_groups >= GPU_BIG_TILE_MIN_GROUPS && big.fits(gpu.limits()) {
        return Some(big);
    }
    default_tile(gpu, cpu)
}

/// Quad loads of the tiled kernel: A as vec4 when K % 4 == 0; B's 4-element quads along its
/// contiguous dimension (K with trans_b, else N) as one vec4<u32> (f32) or vec2<u32> (f16)
/// when that dimension is a multiple of 4, else element by element; an int8 quad is one u32
/// word (K is a multiple of 4 then).
fn tiled_loads(p: &Problem, trans_b: bool) -> (bool, WLoad) {
    let contiguous = if trans_b { p.k } else { p.n };
    let w = match (contiguous.is_multiple_of(4), p.b_f16) {
        _ if p.b_i8 => WLoad::Scalar,
        (true, true) => WLoad::Vec2,
        (true, false) => WLoad::Vec4,
        (false, _) => WLoad::Scalar,
    };
    (p.k.is_multiple_of(4), w)
}

fn launch_tiled(
    rec: &mut Recorder,
    p: &Problem,
    opts: &MatmulOptions,
    t: &[&Tensor],
    tile: TileConfig,
) -> Result<()> {
    let (a_vec4, w_load) = tiled_loads(p, opts.trans_b);
    let caps = rec.gpu().caps();
    // Subgroup broadcast of A (8×8 blocks, 8 invocations along n) when the adapter's subgroup
    // sizes include 8; the kernel checks the actual size and falls back by itself.
    let tiled_sg = caps.subgroups
        && tile.tm == 8
        && tile.tn == 8
        && tile.bn / tile.tn == 8
        && (caps.subgroup_min_size..=caps.subgroup_max_size).contains(&8);
    let flags = EntryFlags {
        tm8: tile.tm == 8,
        tn8: tile.tn == 8,
        tiled_sg,
        ..Default::default()
    };
    let key = base_key("tiled", p, opts, a_vec4, w_load, flags)
        .u32("BM", tile.bm)
        .u32("BN", tile.bn)
        .u32("BK", tile.bk)
        .u32("TM", tile.tm)
        .u32("TN", tile.tn);
    let kernel = rec.gpu().kernel::<MatmulParams>(&key, bindings(p))?;
    let tiles = p.m.div_ceil(tile.bm as usize) * p.n.div_ceil(tile.bn as usize) * p.batch;
    let groups = grid(rec.gpu(), tiles as u32);
    rec.dispatch(&kernel, &p.params(opts), t, groups)
}

/// `bcast` ([`MatmulImpl::Broadcast`]): blocks of 8, 16 or 32 rows (the smallest that holds M, up to 32) × 64 columns,
/// one subgroup of 8 lanes each. Quad loads as in `tiled`. A is broadcast when the adapter's
/// subgroups are exactly 8 wide (lavapipe on AVX2); elsewhere every lane reads A itself.
fn launch_broadcast(
    rec: &mut Recorder,
    p: &Problem,
    opts: &MatmulOptions,
    t: &[&Tensor],
) -> Result<()> {
    if !broadcasts(rec.gpu()) {
        let c = rec.gpu().caps();
        let has = if c.subgroups {
            format!("{}..={}", c.subgroup_min_size, c.subgroup_max_size)
        } else {
            "no".to_string()
        };
        return shape_err(
            "matmul",
            format!(
                "Broadcast needs subgroups of exactly 8 lanes; this adapter has {has} subgroups"
            ),
        );
    }
    let (a_vec4, w_load) = tiled_loads(p, opts.trans_b);
    let groups = p.m.clamp(1, 32).div_ceil(8).next_power_of_two() as u32;
    let flags = EntryFlags {
        subgroups: true,
        bc_groups: groups,
        ..Default::default()
    };
    let key = base_key("bcast", p, opts, a_vec4, w_load, flags).u32("RI", groups);
    let kernel = rec.gpu().kernel::<MatmulParams>(&key, bindings(p))?;
    let blocks = p.m.div_ceil(8 * groups as usize) * p.n.div_ceil(64) * p.batch;
    let grid = grid(rec.gpu(), blocks as u32);
    rec.dispatch(&kernel, &p.params(opts), t, grid)
}

/// How the `rows_nk` / `rows_kn` kernels are specialised for one problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RowsPlan {
    entry: &'static str,
    wg: u32,
    /// Rows of A per workgroup (a power of two).
    mr: u32,
    /// Columns of out per workgroup.
    nr: u32,
    /// rows_kn: column quads per workgroup (nr = 4·qn).
    qn: u32,
    flags: EntryFlags,
    a_vec4: bool,
    w_load: WLoad,
    /// Subgroups per workgroup at the smallest subgroup size (subgroup reduction).
    max_sg: u32,
    red_slots: u32,
}

/// Largest power of two ≤ x (x ≥ 1).
fn pow2_floor(x: u32) -> u32 {
    1 << (31 - x.max(1).leading_zeros())
}

/// Rows-kernel shapes.
///
/// GPUs (bandwidth-bound): every weight word is read once for up to 32 rows of A
/// ([N, K] weights; 8 for [K, N]), so MR is the next power of two ≥ M and NR·MR ≤ 16 keeps
/// the accumulators and the unpacked weights in registers; 32..256 invocations, enough to
/// cover K in one pass with whole vec4<u32> words, reduced through subgroups when present.
///
/// CPU adapters (lavapipe/llvmpipe run a workgroup on one core, 8 invocations per SIMD
/// instruction, and every load inside a loop is a per-lane gather, A rows as costly as
/// weights): one SIMD group per workgroup (8 invocations, no barrier waits between groups),
/// MR ≤ 4 rows of A per pass (weights re-read from cache beat 8+ A loads per weight load;
/// measured 4.1 vs 3.0 GFLOP/s at M = 32, 32x512x2048) and NR·MR = 32 accumulators.
///
/// The workgroup-memory tree (no subgroups) shrinks the workgroup until it fits the limit.
fn rows_plan(gpu: &Gpu, cpu: bool, p: &Problem, trans_b: bool) -> RowsPlan {
    let limits = gpu.limits();
    let max_inv = pow2_floor(
        limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x),
    );
    let mem_floats = limits.max_compute_workgroup_storage_size / 4;
    let m = p.m.min(32) as u32;
    if trans_b {
        let (mr, nr) = if cpu {
            let mr = m.next_power_of_two().min(4);
            (mr, (32 / mr).clamp(1, 8))
        } else {
            let mr = m.next_power_of_two();
            (mr, (16 / mr).clamp(1, 4))
        };
        let (w_load, pairs, per_step) = match (p.b_f16, p.k) {
            _ if p.b_i8 && p.k.is_multiple_of(16) => (WLoad::Vec4, false, 16),
            _ if p.b_i8 => (WLoad::Scalar, false, 4),
            (true, k) if k.is_multiple_of(8) => (WLoad::Vec4, false, 8),
            (false, k) if k.is_multiple_of(4) => (WLoad::Vec4, false, 4),
            (true, k) if k.is_multiple_of(2) => (WLoad::Scalar, true, 2),
            _ => (WLoad::Scalar, false, 1),
        };
        let steps = (p.k.div_ceil(per_step) as u32).max(1);
        let (lo, hi) = if cpu { (8, 8) } else { (32, 256) };
        let mut wg = steps.next_power_of_two().clamp(lo, hi).min(max_inv);
        let caps = gpu.caps();
        let subgroups = caps.subgroups && caps.subgroup_min_size >= 1;
        let (max_sg, red_slots) = if subgroups {
            let max_sg = wg.div_ceil(caps.subgroup_min_size);
            (max_sg, nr * mr * max_sg)
        } else {
            while nr * mr * wg > mem_floats && wg > 1 {
                wg /= 2;
            }
            (1, nr * mr * wg)
        };
        RowsPlan {
            entry: "rows_nk",
            wg,
            mr,
            nr,
            qn: 1,
            flags: EntryFlags {
                subgroups,
                pairs,
                ..Default::default()
            },
            a_vec4: w_load == WLoad::Vec4,
            w_load,
            max_sg,
            red_slots,
        }
    } else {
        let mr = m.min(8).next_power_of_two();
        let qn = if cpu { 8 } else { 16 };
        let mut wg = (if cpu { 64 } else { 128 }).min(max_inv).max(qn);
        while mr * 4 * wg > mem_floats && wg > qn {
            wg /= 2;
        }
        let w_load = match (p.n.is_multiple_of(4), p.b_f16) {
            (true, true) => WLoad::Vec2,
            (true, false) => WLoad::Vec4,
            (false, _) => WLoad::Scalar,
        };
        RowsPlan {
            entry: "rows_kn",
            wg,
            mr,
            nr: 4 * qn,
            qn,
            flags: EntryFlags::default(),
            a_vec4: false,
            w_load,
            max_sg: 1,
            red_slots: mr * 4 * wg,
        }
    }
}

/// A norm prologue on `rows_nk` (its launcher: crates/gpu/src/ops/norm_matmul.rs).
pub(crate) struct RowsPrologue {
    pub(crate) rms: bool,
    pub(crate) keep: bool,
    pub(crate) eps: f32,
    /// The layout: [`BINDINGS`] without the residual, plus gamma, beta and the kept rows.
    pub(crate) bindings: Bindings,
}

pub(crate) fn launch_rows(
    rec: &mut Recorder,
    cpu: bool,
    p: &Problem,
    opts: &MatmulOptions,
    t: &[&Tensor],
    prologue: Option<&RowsPrologue>,
) -> Result<()> {
    let mut plan = rows_plan(rec.gpu(), cpu, p, opts.trans_b);
    let mut params = p.params(opts);
    let mut layout = bindings(p);
    if let Some(pr) = prologue {
        plan.flags.norm_a = true;
        plan.flags.rms_a = pr.rms;
        plan.flags.keep = pr.keep;
        params.eps = pr.eps;
        layout = pr.bindings;
    }
    let key = base_key(plan.entry, p, opts, plan.a_vec4, plan.w_load, plan.flags)
        .u32("WG", plan.wg)
        .u32("MR", plan.mr)
        .u32("NR", plan.nr)
        .u32("QN", plan.qn)
        .u32("MAX_SG", plan.max_sg)
        .u32("RED_SLOTS", plan.red_slots);
    let kernel = rec.gpu().kernel::<MatmulParams>(&key, layout)?;
    let blocks = p.n.div_ceil(plan.nr as usize) * p.m.div_ceil(plan.mr as usize) * p.batch;
    let groups = grid(rec.gpu(), blocks as u32);
    rec.dispatch(&kernel, &params, t, groups)
}

/// Whether two tensors use the same wgpu buffer (wgpu rejects a buffer bound both read-only
/// and writable in one dispatch, whatever the ranges).
pub(crate) fn same_buffer(x: &Tensor, y: &Tensor) -> bool {
    x.buf.id == y.buf.id
}

pub(crate) fn validate(
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    opts: &MatmulOptions,
) -> Result<Problem> {
    let (sa, sb, so) = (a.shape(), b.shape(), out.shape());
    let shapes = || {
        format!(
            "a {sa:?} {}, b {sb:?} {} (trans_b {}), out {so:?} {}",
            a.dtype().name(),
            b.dtype().name(),
            opts.trans_b,
            out.dtype().name()
        )
    };
    if a.dtype() != DType::F32
        || out.dtype() != DType::F32
        || !matches!(b.dtype(), DType::F32 | DType::F16 | DType::I8)
    {
        return shape_err(
            "matmul",
            format!("{}: a and out must be f32, b f32, f16 or i8", shapes()),
        );
    }
    let b_i8 = b.dtype() == DType::I8;
    if b_i8 && (!opts.trans_b || sb.len() != 2 || !b.dim(-1).is_multiple_of(4)) {
        return shape_err(
            "matmul",
            format!(
                "{}: an int8 b must be one [N, K] matrix (trans_b) with K a multiple of 4",
                shapes()
            ),
        );
    }
    match opts.scales {
        Some(s) if !b_i8 || s.dtype() != DType::F32 || s.numel() != b.dim(-2) => {
            return shape_err(
                "matmul",
                format!(
                    "{}: scales {:?} {} must be f32 [N] and come with an int8 b",
                    shapes(),
                    s.shape(),
                    s.dtype().name()
                ),
            );
        }
        None if b_i8 => {
            return shape_err(
                "matmul",
                format!("{}: an int8 b needs its scales", shapes()),
            );
        }
        _ => {}
    }
    if sa.len() < 2 || sb.len() < 2 || so.len() < 2 {
        return shape_err(
            "matmul",
            format!("{}: a, b and out need at least 2 dimensions", shapes()),
        );
    }
    let k = a.dim(-1);
    let m = a.dim(-2);
    let batch: usize = sa[..sa.len() - 2].iter().product();
    let (n, kb) = if opts.trans_b {
        (b.dim(-2), b.dim(-1))
    } else {
        (b.dim(-1), b.dim(-2))
    };
    if kb != k {
        return shape_err(
            "matmul",
            format!("{}: K differs (a has K = {k}, b has K = {kb})", shapes()),
        );
    }
    let b_batch: usize = sb[..sb.len() - 2].iter().product();
    let b_batched = sb.len() > 2;
    if b_batched && b_batch != batch {
        return shape_err(
            "matmul",
            format!(
                "{}: b has {b_batch} batches, a has {batch}; a batched b needs one matrix per batch",
                shapes()
            ),
        );
    }
    let out_batch: usize = so[..so.len() - 2].iter().product();
    let w = out.dim(-1);
    let off = opts.out_col_offset;
    if out.dim(-2) != m || out_batch != batch {
        return shape_err(
            "matmul",
            format!("{}: out must be [{batch} batches, {m} rows, W]", shapes()),
        );
    }
    if off.checked_add(n).is_none_or(|end| end > w) {
        return shape_err(
            "matmul",
            format!(
                "{}: out is too narrow: columns {off}..{} of W = {w}",
                shapes(),
                off.saturating_add(n)
            ),
        );
    }
    if let Some(bias) = opts.bias
        && (bias.dtype() != DType::F32 || bias.numel() != n)
    {
        return shape_err(
            "matmul",
            format!(
                "{}: bias {:?} {} must be f32 [{n}]",
                shapes(),
                bias.shape(),
                bias.dtype().name()
            ),
        );
    }
    if let Some(res) = opts.residual {
        if res.dtype() != DType::F32 || res.shape() != so {
            return shape_err(
                "matmul",
                format!(
                    "{}: residual {:?} {} must be f32 with the shape of out",
                    shapes(),
                    res.shape(),
                    res.dtype().name()
                ),
            );
        }
        if same_buffer(res, out) {
            return shape_err(
                "matmul",
                format!("{}: the residual must not alias out", shapes()),
            );
        }
    }
    for (name, t) in [
        ("a", Some(a)),
        ("b", Some(b)),
        ("bias", opts.bias),
        ("scales", opts.scales),
    ] {
        if let Some(t) = t
            && same_buffer(t, out)
        {
            return shape_err(
                "matmul",
                format!("{}: {name} shares its buffer with out", shapes()),
            );
        }
    }
    // Every index the kernels compute stays below the largest tensor, which the binding
    // limit keeps far below 2^32; check anyway, the shaders index with u32.
    let fits = |x: usize| u32::try_from(x).is_ok();
    if ![batch * m * w, batch * m * k, b.numel(), m * n * batch]
        .into_iter()
        .all(fits)
    {
        return shape_err(
            "matmul",
            format!("{}: too many elements for 32-bit indexing", shapes()),
        );
    }
    Ok(Problem {
        batch,
        m,
        n,
        k,
        b_batched,
        b_f16: b.dtype() == DType::F16,
        b_i8,
        w,
    })
}
