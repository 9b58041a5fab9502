//! Launcher for `shaders/attention.wgsl`: fused scaled dot-product attention.
//!
//! Validate, then select, then launch: [`attention`] checks dtypes, sizes and that every
//! strided layout stays inside its tensor (the largest element index it can touch), then
//! picks a kernel ([`AttentionImpl::Auto`] → see [`select`]), then records its dispatches.
//!
//! Kernels (all exclude masked keys by index, so padding garbage never reaches a sum):
//! - `Naive`: the score matrix `[batch, heads, q_len, kv_len]` is materialised (in `probs`
//!   when requested, else in pooled scratch), softmaxed in place by `shaders/softmax.wgsl`,
//!   then multiplied by V. Three dispatches; any head_dim. The reference.
//! - `Flash`: one dispatch. A workgroup takes BQ queries of one (b, h); K/V tiles of BK rows
//!   are staged in workgroup memory; scores in 2×4 register blocks; online softmax with one
//!   rescale per tile; TD invocations per query share its head_dim columns (≤ 4 vec4
//!   accumulators each). head_dim ≤ [`FLASH_MAX_HEAD_DIM`], tiles sized from the adapter's
//!   workgroup memory ([`flash_tiles`]). With `probs`, a second pass recomputes the scores and
//!   writes exact probabilities from the final max and sum.
//! - `SplitKeys`: each query row's keys are split into chunks of 64..=256 keys, one
//!   workgroup per (row, chunk): scores in workgroup memory, max/sum by subgroup operations
//!   (when the adapter has them) or a shared-memory tree, P·V over vec4 columns; partial
//!   (acc, max, sum) go to pooled scratch and a `merge` dispatch combines them (and rescales
//!   the probabilities). One chunk: a single dispatch writing the result directly. The split
//!   count aims at 256 workgroups on GPUs, 16 on CPU adapters. head_dim ≤
//!   [`SPLIT_MAX_HEAD_DIM`]. Works for any q_len; `Auto` uses it for q_len 1.
//!
//! - `Decode`: one dispatch; the lanes of a subgroup per query row on GPUs, several rows per
//!   subgroup on CPU adapters (beams of one source together, loading their keys once), one
//!   invocation per row without subgroups; keys over lane groups, head_dim over the lanes of
//!   a group, online softmax per lane group, no workgroup memory or barriers
//!   ([`decode_plan`]). Any q_len; head_dim up to 64 × the subgroup size (256 without
//!   subgroups).
//!
//! `Auto`: q_len 1 → Decode on CPU adapters, and on GPUs with subgroups when the keys are
//! short or the rows many (see `decode_wins`), else SplitKeys; otherwise Flash; Naive when
//! head_dim is past their limits.
//! Q/K/V are read as vec4s when every offset, stride and head_dim is a multiple of 4.

use crate::error::{Error, Result, shape_err};
use crate::ops::grid;
use crate::ops::softmax::{self, checked_product, same_buffer};
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Gpu, Recorder, Tensor};

mod gemm;

/// Where a sequence of heads lives in a buffer: element (b, t, h, d) is at
/// `offset + b * batch_stride + t * row_stride + h * head_dim + d`.
/// This reads Q/K/V straight out of fused projections (`[B, T, 3D]`: row_stride 3D, offsets
/// 0, D, 2D) and out of caches (`[B, Tmax, D]`: batch_stride Tmax·D) without copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqLayout {
    pub offset: usize,
    pub batch_stride: usize,
    pub row_stride: usize,
}

impl SeqLayout {
    /// A contiguous `[batch, len, width]` tensor starting at `offset`.
    pub fn contiguous(len: usize, width: usize) -> Self {
        SeqLayout {
            offset: 0,
            batch_stride: len * width,
            row_stride: width,
        }
    }

    /// Any strided layout.
    pub fn new(offset: usize, batch_stride: usize, row_stride: usize) -> Self {
        SeqLayout {
            offset,
            batch_stride,
            row_stride,
        }
    }

    /// Part `part` (0-based) of `parts` equal slices of width `width` interleaved in each row
    /// of a `[batch, len, parts · width]` tensor: Q, K and V of a fused projection are parts
    /// 0, 1 and 2 of 3.
    pub fn fused(len: usize, width: usize, parts: usize, part: usize) -> Self {
        SeqLayout {
            offset: part * width,
            batch_stride: len * parts * width,
            row_stride: parts * width,
        }
    }

    /// One past the largest element index touched by `rows` batch rows of `len` positions of
    /// `width` elements; 0 when nothing is touched, `None` on overflow.
    pub fn end(&self, rows: usize, len: usize, width: usize) -> Option<usize> {
        if rows == 0 || len == 0 || width == 0 {
            return Some(0);
        }
        self.offset
            .checked_add((rows - 1).checked_mul(self.batch_stride)?)?
            .checked_add((len - 1).checked_mul(self.row_stride)?)?
            .checked_add(width)
    }
}

/// Which kernel runs. `Auto` picks by shape; the others force one (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AttentionImpl {
    #[default]
    Auto,
    /// Scores, masked softmax and weighted sum with plain loops: the reference kernel.
    Naive,
    /// Online softmax over key tiles (flash-attention style).
    Flash,
    /// Query length 1: keys split across workgroups, partial results merged.
    SplitKeys,
    /// One dispatch, a subgroup's lanes per query row (on CPU adapters several rows per
    /// subgroup; one invocation per row without subgroups): keys over lane groups, head_dim
    /// over the lanes of a group, online softmax, no workgroup memory or barriers.
    Decode,
    /// Head-major copies of Q, K and V, then scores, masked softmax and weighted sum as
    /// batched matmuls (the matmul kernels' tiling); no kv_rows beam table.
    Gemm,
}

impl AttentionImpl {
    /// Every forced implementation (tests and benches loop over these).
    pub const FORCED: [AttentionImpl; 5] = [
        AttentionImpl::Naive,
        AttentionImpl::Flash,
        AttentionImpl::SplitKeys,
        AttentionImpl::Decode,
        AttentionImpl::Gemm,
    ];
}

/// Arguments of [`attention`].
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// f32; written at `out_layout` for every (b, t, h).
    pub out: &'a Tensor,
    pub q_layout: SeqLayout,
    pub k_layout: SeqLayout,
    pub v_layout: SeqLayout,
    pub out_layout: SeqLayout,
    /// Query batch rows.
    pub batch: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub q_len: usize,
    /// Keys (and values) per sequence considered: key positions 0..kv_len.
    pub kv_len: usize,
    /// Query batch row b reads key/value batch row b / kv_group (beams share the encoder
    /// output, never copied). 1 when every query row has its own keys.
    pub kv_group: usize,
    /// u32 `[batch / kv_group]`: keys j ≥ length are padding and masked out.
    pub key_lengths: Option<&'a Tensor>,
    /// Causal mask: query i sees keys j ≤ i + offset.
    pub causal_offset: Option<usize>,
    /// f32 additive bias `[1 or batch, heads, q_len, kv_len]` added to the scaled scores
    /// (T5's relative positions).
    pub bias: Option<&'a Tensor>,
    /// Beam indirection: u32 `[batch, kv_rows_stride]`; key/value position t of query batch b
    /// is read from batch row `kv_rows[b * kv_rows_stride + t]` (instead of b / kv_group).
    pub kv_rows: Option<&'a Tensor>,
    pub kv_rows_stride: usize,
    /// If set, f32 `[batch, heads, q_len, kv_len]` receives the attention probabilities
    /// (masked positions exactly 0).
    pub probs: Option<&'a Tensor>,
    /// Multiplies Q·Kᵀ, usually 1/sqrt(head_dim).
    pub scale: f32,
    pub imp: AttentionImpl,
}

impl<'a> Attention<'a> {
    /// Plain attention over contiguous `[batch, q_len, heads·head_dim]` queries and outputs
    /// and `[batch, kv_len, heads·head_dim]` keys and values: no masks, no bias, kv_group 1,
    /// scale 1/sqrt(head_dim), `Auto`. Set the other fields on the result.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        q: &'a Tensor,
        k: &'a Tensor,
        v: &'a Tensor,
        out: &'a Tensor,
        batch: usize,
        heads: usize,
        head_dim: usize,
        q_len: usize,
        kv_len: usize,
    ) -> Self {
        let d = heads * head_dim;
        Attention {
            q,
            k,
            v,
            out,
            q_layout: SeqLayout::contiguous(q_len, d),
            k_layout: SeqLayout::contiguous(kv_len, d),
            v_layout: SeqLayout::contiguous(kv_len, d),
            out_layout: SeqLayout::contiguous(q_len, d),
            batch,
            heads,
            head_dim,
            q_len,
            kv_len,
            kv_group: 1,
            key_lengths: None,
            causal_offset: None,
            bias: None,
            kv_rows: None,
            kv_rows_stride: 0,
            probs: None,
            scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
            imp: AttentionImpl::Auto,
        }
    }
}

crate::wgsl_params! {
    /// Parameters of every kernel in `attention.wgsl`.
    pub struct AttnParams {
        pub batch: u32,
        pub heads: u32,
        pub head_dim: u32,
        pub q_len: u32,
        pub kv_len: u32,
        pub kv_group: u32,
        pub q_off: u32,
        pub q_bs: u32,
        pub q_rs: u32,
        pub k_off: u32,
        pub k_bs: u32,
        pub k_rs: u32,
        pub v_off: u32,
        pub v_bs: u32,
        pub v_rs: u32,
        pub o_off: u32,
        pub o_bs: u32,
        pub o_rs: u32,
        pub has_lengths: u32,
        pub causal: u32,
        /// Clamped to kv_len (larger offsets mask nothing more).
        pub causal_offset: u32,
        pub has_bias: u32,
        /// 0 for a bias shared by the batch, heads · q_len · kv_len otherwise.
        pub bias_bs: u32,
        pub has_kv_rows: u32,
        pub kv_rows_stride: u32,
        /// Largest batch row both K and V hold; kv_rows entries are clamped to it.
        pub kv_rows_max: u32,
        pub write_probs: u32,
        pub scale: f32,
        /// Invocations with work (naive kernels).
        pub total: u32,
        /// Key splits per query row and keys per split (split/merge).
        pub splits: u32,
        pub chunk: u32,
        /// Query tiles per (b, h) (flash).
        pub q_tiles: u32,
    }
}

/// Workgroup size of the naive kernels.
const NAIVE_WG: u32 = 64;

// Binding slots (see attention.wgsl): 1 q, 2 k, 3 v, 4 out, 5 lengths, 6 bias, 7 kv_rows,
// 8 probs.
const NAIVE_SCORES_BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (7, Access::Read),
    (8, Access::ReadWrite),
];
const NAIVE_PV_BINDINGS: Bindings = &[
    (3, Access::Read),
    (4, Access::ReadWrite),
    (5, Access::Read),
    (7, Access::Read),
    (8, Access::ReadWrite),
];

/// Flash and SplitKeys keep head vectors as vec4 registers / workgroup arrays: the largest
/// head_dim they take. Naive takes any.
pub const FLASH_MAX_HEAD_DIM: usize = 256;
pub const SPLIT_MAX_HEAD_DIM: usize = 1024;

/// Keys per split are at most this many (the scores of a split sit in workgroup memory).
const SPLIT_CHUNK: u32 = 256;
/// Workgroup size of `split` and `merge`.
const SPLIT_WG: u32 = 64;
/// Workgroups a split launch aims for: enough to fill a GPU when batch·heads is small; on
/// CPU adapters (lavapipe, llvmpipe) each workgroup costs far more than its arithmetic, so
/// few large splits win there (measured: 1500 keys × 8 heads, 6 splits 3.5× faster than 24).
const SPLIT_TARGET_GROUPS: usize = 256;
const SPLIT_TARGET_GROUPS_CPU: usize = 16;

const FLASH_BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::ReadWrite),
    (5, Access::Read),
    (6, Access::Read),
    (7, Access::Read),
    (8, Access::ReadWrite),
];
const SPLIT_BINDINGS: Bindings = FLASH_BINDINGS;
const MERGE_BINDINGS: Bindings = &[
    (4, Access::ReadWrite),
    (8, Access::ReadWrite),
    (9, Access::Read),
];

/// Which section of attention.wgsl a key compiles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Naive,
    Flash,
    Split,
    Decode,
}

/// The kernel key of an attention entry point, with every flag the family's `//#if` lines
/// name.
fn key(entry: &'static str, section: Section, wg: u32, subgroups: bool, vec4: bool) -> KernelKey {
    KernelKey::new(Family::Attention, entry)
        .u32("WG", wg)
        .flag("NAIVE", section == Section::Naive)
        .flag("FLASH", section == Section::Flash)
        .flag("SPLIT", section == Section::Split)
        .flag("DECODE", section == Section::Decode)
        .flag("SUBGROUPS", subgroups)
        .flag("VEC4", vec4)
}

/// Whether every Q/K/V offset and stride and head_dim are multiples of 4 (whole vec4 loads;
/// a vec4 binding must also hold at least one vec4).
fn vec4_layouts(a: &Attention) -> bool {
    a.head_dim.is_multiple_of(4)
        && [a.q, a.k, a.v].iter().all(|t| t.byte_len() >= 16)
        && [a.q_layout, a.k_layout, a.v_layout].iter().all(|l| {
            l.offset.is_multiple_of(4)
                && l.batch_stride.is_multiple_of(4)
                && l.row_stride.is_multiple_of(4)
        })
}

/// Flash shape for `q_len` queries of head_dim `dh`: (invocations, invocations per query,
/// keys per tile), or `None` when dh is 0 or above [`FLASH_MAX_HEAD_DIM`] or the tiles cannot
/// fit the adapter's workgroup memory.
///
/// Each query's output columns are spread over TD invocations so that each keeps at most 4
/// vec4 accumulators; a workgroup holds BQ = WG / TD queries (fewer for short q_len).
pub fn flash_tiles(gpu: &Gpu, q_len: usize, dh: usize) -> Option<(u32, u32, u32)> {
    if dh == 0 || dh > FLASH_MAX_HEAD_DIM {
        return None;
    }
    let dh4 = dh.div_ceil(4);
    let td = dh4.div_ceil(4).next_power_of_two().min(16);
    let max_wg = if td <= 4 { 64 } else { 128 };
    let inv = (gpu.limits().max_compute_invocations_per_workgroup as usize).max(1);
    if 2 * td > inv {
        return None;
    }
    // Queries per workgroup: at most max_wg / td, fewer for short q_len, but ≥ 32 invocations.
    let bq = (max_wg / td)
        .min(q_len.next_power_of_two().max(32 / td))
        .min(inv / td)
        .max(2);
    let wg = bq * td;
    let smem = gpu.limits().max_compute_workgroup_storage_size as usize;
    // Q tile, K tile (padded rows), V tile, scores (padded rows), lim/mrow/irow.
    let bytes =
        |bk: usize| bq * (dh4 + 1) * 16 + bk * (2 * dh4 + 1) * 16 + bq * (bk + 1) * 4 + 3 * bq * 4;
    // Scores are computed in 2 × 4 blocks: BK ≥ 4 and BQ even.
    let mut bk = 32;
    while bk > 4 && bytes(bk) > smem {
        bk /= 2;
    }
    (bytes(bk) <= smem).then_some((wg as u32, td as u32, bk as u32))
}

/// Most vec4 columns one lane of `decode` keeps for q and for its accumulator, per query:
/// with subgroups, and without (one invocation per query row: head_dim up to 256).
const DECODE_MAX_NA: usize = 16;
const DECODE_MAX_NA_SERIAL: usize = 64;
/// Invocations per workgroup of `decode` without subgroups (each its own query group).
const DECODE_SERIAL_WG: usize = 8;
/// Vec4 columns per lane of `decode` on CPU adapters.
const DECODE_CPU_NA: usize = 4;

/// How `decode` is specialised: WG invocations per workgroup, LANES lanes per query group, CL
/// lanes splitting head_dim, NA vec4 columns per lane, and whether it uses subgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodePlan {
    pub wg: u32,
    pub lanes: u32,
    pub cl: u32,
    pub na: u32,
    pub subgroups: bool,
}

/// The `decode` plan for head_dim `dh`, or `None` when a lane would need more columns than
/// it may keep.
///
/// With subgroups a workgroup is one subgroup: WG is the adapter's smallest subgroup size,
/// so that whatever size the driver picks, shuffles within a query group's aligned lanes
/// stay in one subgroup.
/// - GPUs (32 lanes on NVIDIA and AMD's wave32): one query group per subgroup, CL the power
///   of two that leaves each lane about 2 vec4 columns, the other LANES / CL lane groups
///   taking a key each: coalesced loads, few registers, parallel keys.
/// - CPU adapters (lavapipe: 8 lanes, one SIMD instruction): every cross-lane operation is a
///   loop over the lanes there and a lane's private arrays stay in registers only while they
///   are small, so CL is the smallest power of two that leaves at most 4 columns per lane
///   and there are no key groups: 8 query groups per subgroup at head_dim 16, 2 at 64
///   (measured: head_dim 16, 128 rows × 32 keys 200 → 128 µs; head_dim 64 with 16 columns
///   per lane 3.3 ms where the GPU shape takes 0.8).
///
/// Without subgroups (GL) one invocation takes a query group, 8 of them per workgroup.
pub fn decode_plan(gpu: &Gpu, dh: usize) -> Option<DecodePlan> {
    decode_plan_tuned(gpu, dh, Tuning::Adapter.cpu(gpu))
}

fn decode_plan_tuned(gpu: &Gpu, dh: usize, cpu: bool) -> Option<DecodePlan> {
    let dh4 = dh.div_ceil(4).max(1);
    let caps = gpu.caps();
    let sg = caps.subgroups
        && caps.subgroup_min_size.is_power_of_two()
        && (4..=128).contains(&caps.subgroup_min_size)
        && caps.subgroup_min_size <= gpu.limits().max_compute_invocations_per_workgroup;
    let plan = if sg {
        let wg = caps.subgroup_min_size as usize;
        if cpu {
            let cl = dh4.div_ceil(DECODE_CPU_NA).next_power_of_two().min(wg);
            (wg, cl, cl, DECODE_MAX_NA)
        } else {
            (
                wg,
                wg,
                dh4.div_ceil(2).next_power_of_two().min(wg),
                DECODE_MAX_NA,
            )
        }
    } else {
        (DECODE_SERIAL_WG, 1, 1, DECODE_MAX_NA_SERIAL)
    };
    let (wg, lanes, cl, max_na) = plan;
    let na = dh4.div_ceil(cl);
    (dh > 0 && na <= max_na).then_some(DecodePlan {
        wg: wg as u32,
        lanes: lanes as u32,
        cl: cl as u32,
        na: na as u32,
        subgroups: sg,
    })
}

/// The largest head_dim [`decode_plan`] takes on this adapter.
fn decode_max_head_dim(gpu: &Gpu) -> usize {
    match decode_plan(gpu, 1) {
        Some(p) if p.subgroups => 4 * DECODE_MAX_NA * p.wg as usize,
        _ => 4 * DECODE_MAX_NA_SERIAL,
    }
}

/// Auto's choice between Decode and SplitKeys for one query per row.
///
/// CPU adapters: Decode whenever its plan exists (subgroups or not). Measured (µs, SplitKeys
/// / Decode), lavapipe: 128 rows × 16 keys through a beam table 517 / 112, 128 rows × 32
/// keys in beam groups of 4 577 / 147-217, 256 rows × 16 keys at head_dim 64 1353 / 467,
/// 8 rows × 300 keys 380 / 267, 8 rows × 1500 keys 1354 / 1067, 16 rows × 4000 keys 6888 /
/// 5619; llvmpipe GL (no subgroups) 716 / 108, 757 / 116, 1657 / 281, 599 / 219,
/// 1398 / 1095, 7098 / 2984.
///
/// GPUs: Decode with subgroups when the keys are short ([`DECODE_MAX_KV`]) or the rows
/// enough to fill the device without splitting keys (SplitKeys' target); a few rows of
/// long keys keep SplitKeys, which spreads them over many workgroups. Without subgroups
/// Decode is one invocation per row: SplitKeys.
fn decode_wins(gpu: &Gpu, a: &Attention, cpu: bool) -> bool {
    let Some(plan) = decode_plan_tuned(gpu, a.head_dim, cpu) else {
        return false;
    };
    cpu || (plan.subgroups
        && (a.kv_len <= DECODE_MAX_KV || a.batch * a.heads >= SPLIT_TARGET_GROUPS))
}

/// Auto's choice of Gemm for more than one query per row: on CPU adapters once the score
/// matrix per (b, h) reaches [`GEMM_MIN_SCORES`] and a chunk of rows fits one binding.
fn gemm_wins(gpu: &Gpu, a: &Attention, cpu: bool) -> bool {
    cpu && a.q_len > 1
        && a.q_len * a.kv_len >= GEMM_MIN_SCORES
        && gemm::chunk_rows(gpu, a).is_some()
}

/// Scores per (b, h) from which Gemm beats Flash on CPU adapters.
const GEMM_MIN_SCORES: usize = 64 * 64;

/// Longest key rows for which Auto prefers Decode on GPUs however few the rows.
const DECODE_MAX_KV: usize = 256;

/// Split plan for `rows` query rows of `kv_len` keys aiming at `target` workgroups:
/// (splits, keys per split). Splits hold 64..=256 keys.
fn split_plan(rows: usize, kv_len: usize, target: usize) -> (usize, usize) {
    let want = target.div_ceil(rows.max(1));
    let chunk = kv_len.div_ceil(want).clamp(64, SPLIT_CHUNK as usize);
    (kv_len.div_ceil(chunk).max(1), chunk)
}

/// softmax(scale · Q·Kᵀ + bias, masked) · V. Masked keys get probability exactly 0; a row with
/// every key masked outputs zeros (never NaN).
///
/// Besides the field docs: `key_lengths` may hold more values than needed (only the first
/// `batch / kv_group` are read); `kv_rows` entries beyond the batch rows that K and V hold are
/// clamped to the last one (the table lives on the GPU and is not checked here), and key
/// lengths are still read at `b / kv_group`; `out` and `probs` must not share a buffer with
/// any input or with each other.
pub fn attention(rec: &mut Recorder, args: &Attention) -> Result<()> {
    attention_tuned(rec, args, Tuning::Adapter)
}

pub use super::Tuning;

/// [`attention`] with an explicit tuning (tests and benches).
pub fn attention_tuned(rec: &mut Recorder, args: &Attention, tuning: Tuning) -> Result<()> {
    let cpu = tuning.cpu(rec.gpu());
    let plan = validate(rec.gpu(), args)?;
    let imp = select_tuned(rec.gpu(), args, cpu)?;
    if plan.empty {
        return Ok(());
    }
    match imp {
        AttentionImpl::Naive | AttentionImpl::Auto => naive(rec, args, &plan),
        AttentionImpl::Flash => flash(rec, args, &plan),
        AttentionImpl::SplitKeys => split_keys(rec, args, &plan, cpu),
        AttentionImpl::Decode => decode(rec, args, &plan, cpu),
        AttentionImpl::Gemm => gemm::gemm(rec, args, u64::MAX),
    }
}

/// [`AttentionImpl::Gemm`] with each chunk's scores held to `binding_bytes` (tests of the
/// chunking, which the adapter's binding size reaches only with very long inputs).
#[doc(hidden)]
pub fn attention_gemm_chunked(
    rec: &mut Recorder,
    args: &Attention,
    binding_bytes: u64,
) -> Result<()> {
    let plan = validate(rec.gpu(), args)?;
    if plan.empty {
        return Ok(());
    }
    gemm::gemm(rec, args, binding_bytes)
}

/// Which kernel runs for these arguments: `Auto` picks Decode or SplitKeys for q_len 1
/// (decode steps, see `decode_wins`) and Flash otherwise, falling back to Naive for head
/// dims they do not take; a forced choice that cannot run these arguments is an error
/// naming why.
pub fn select(gpu: &Gpu, args: &Attention) -> Result<AttentionImpl> {
    select_tuned(gpu, args, Tuning::Adapter.cpu(gpu))
}

fn select_tuned(gpu: &Gpu, args: &Attention, cpu: bool) -> Result<AttentionImpl> {
    let dh = args.head_dim;
    let flash_ok = flash_tiles(gpu, args.q_len, dh).is_some();
    let split_ok = dh <= SPLIT_MAX_HEAD_DIM;
    match args.imp {
        AttentionImpl::Auto => Ok(if args.q_len == 1 && decode_wins(gpu, args, cpu) {
            AttentionImpl::Decode
        } else if args.q_len == 1 && split_ok {
            AttentionImpl::SplitKeys
        } else if gemm_wins(gpu, args, cpu) {
            AttentionImpl::Gemm
        } else if flash_ok {
            AttentionImpl::Flash
        } else {
            AttentionImpl::Naive
        }),
        AttentionImpl::Flash if !flash_ok && dh > 0 => err(format!(
            "Flash takes head_dim 1..={FLASH_MAX_HEAD_DIM} with key/value tiles in {} bytes of workgroup memory; head_dim is {dh}",
            gpu.limits().max_compute_workgroup_storage_size
        )),
        AttentionImpl::SplitKeys if !split_ok => err(format!(
            "SplitKeys takes head_dim up to {SPLIT_MAX_HEAD_DIM}; head_dim is {dh}"
        )),
        AttentionImpl::Decode if decode_plan_tuned(gpu, dh, cpu).is_none() && dh > 0 => {
            err(format!(
                "Decode takes head_dim up to {} on this adapter; head_dim is {dh}",
                decode_max_head_dim(gpu)
            ))
        }
        imp => Ok(imp),
    }
}

/// What validation derived for the launch.
struct Plan {
    /// Nothing to compute (an empty batch, no heads, no queries or head_dim 0).
    empty: bool,
    params: AttnParams,
}

fn err<T>(msg: String) -> Result<T> {
    shape_err("attention", msg)
}

fn to_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).or_else(|_| err(format!("{what} = {v} exceeds u32 indexing")))
}

fn validate(gpu: &Gpu, a: &Attention) -> Result<Plan> {
    let dtypes = [
        ("q", Some(a.q), DType::F32),
        ("k", Some(a.k), DType::F32),
        ("v", Some(a.v), DType::F32),
        ("out", Some(a.out), DType::F32),
        ("key_lengths", a.key_lengths, DType::U32),
        ("bias", a.bias, DType::F32),
        ("kv_rows", a.kv_rows, DType::U32),
        ("probs", a.probs, DType::F32),
    ];
    for (name, t, want) in dtypes {
        if let Some(t) = t
            && t.dtype() != want
        {
            return err(format!(
                "{name} {:?} must be {}, got {}",
                t.shape(),
                want.name(),
                t.dtype().name()
            ));
        }
    }
    let (batch, heads, dh, q_len, kv_len) = (a.batch, a.heads, a.head_dim, a.q_len, a.kv_len);
    if a.kv_group == 0 || !batch.is_multiple_of(a.kv_group) {
        return err(format!("kv_group {} must divide batch {batch}", a.kv_group));
    }
    let width = heads.checked_mul(dh).ok_or_else(|| Error::Shape {
        op: "attention",
        msg: format!("heads {heads} × head_dim {dh} overflows"),
    })?;
    let kv_batch = batch / a.kv_group;

    // Every layout stays inside its tensor.
    let check = |name: &str, t: &Tensor, l: &SeqLayout, rows: usize, len: usize| -> Result<()> {
        let end = l.end(rows, len, width);
        match end {
            Some(end) if end <= t.numel() => Ok(()),
            _ => err(format!(
                "{name} layout {l:?} for {rows} batch rows × {len} positions × {heads} heads × {dh} head_dim reaches element {} but {name} {:?} has {} elements",
                end.map_or("beyond usize".to_string(), |e| (e - 1).to_string()),
                t.shape(),
                t.numel()
            )),
        }
    };
    check("q", a.q, &a.q_layout, batch, q_len)?;
    check("out", a.out, &a.out_layout, batch, q_len)?;
    let mut kv_rows_max = u32::MAX;
    if let Some(rows) = a.kv_rows {
        let need = batch.saturating_mul(a.kv_rows_stride);
        if a.kv_rows_stride < kv_len || rows.numel() < need {
            return err(format!(
                "kv_rows {:?} must hold [batch {batch}, kv_rows_stride {}] with kv_rows_stride ≥ kv_len {kv_len}",
                rows.shape(),
                a.kv_rows_stride
            ));
        }
        // The table is on the GPU: bound the rows it may name by what K and V hold.
        for (name, t, l) in [("k", a.k, &a.k_layout), ("v", a.v, &a.v_layout)] {
            if batch == 0 || kv_len == 0 || width == 0 {
                continue;
            }
            check(name, t, l, 1, kv_len)?;
            let one = l.end(1, kv_len, width).unwrap_or(usize::MAX);
            if let Some(fit) = (t.numel() - one).checked_div(l.batch_stride) {
                // Whole rows beyond the first.
                kv_rows_max = kv_rows_max.min(u32::try_from(fit).unwrap_or(u32::MAX));
            }
        }
    } else {
        check("k", a.k, &a.k_layout, kv_batch, kv_len)?;
        check("v", a.v, &a.v_layout, kv_batch, kv_len)?;
    }
    let rows = softmax::Rows {
        batch,
        heads,
        q_len,
        kv_len,
        scale: a.scale,
        key_lengths: a.key_lengths,
        len_div: a.kv_group,
        causal_offset: a.causal_offset,
        bias: a.bias,
    };
    rows.validate("attention")?;
    let n_probs = checked_product(&[batch, heads, q_len, kv_len]).ok_or_else(|| Error::Shape {
        op: "attention",
        msg: format!("probs [{batch}, {heads}, {q_len}, {kv_len}] overflows"),
    })?;
    if let Some(p) = a.probs
        && p.numel() != n_probs
    {
        return err(format!(
            "probs {:?} must be [batch {batch}, heads {heads}, q_len {q_len}, kv_len {kv_len}] ({n_probs} elements)",
            p.shape()
        ));
    }
    // wgpu forbids a buffer bound read-only and writable in one dispatch.
    let inputs = [
        ("q", Some(a.q)),
        ("k", Some(a.k)),
        ("v", Some(a.v)),
        ("key_lengths", a.key_lengths),
        ("bias", a.bias),
        ("kv_rows", a.kv_rows),
    ];
    for (oname, o) in [("out", Some(a.out)), ("probs", a.probs)] {
        let Some(o) = o else { continue };
        for (iname, i) in inputs {
            if let Some(i) = i
                && same_buffer(o, i)
            {
                return err(format!(
                    "{oname} {:?} shares a buffer with {iname} {:?}",
                    o.shape(),
                    i.shape()
                ));
            }
        }
    }
    if let Some(p) = a.probs
        && same_buffer(p, a.out)
    {
        return err(format!(
            "probs {:?} shares a buffer with out {:?}",
            p.shape(),
            a.out.shape()
        ));
    }
    let max_bind = gpu.max_binding() / 4;
    for (name, t) in [("q", a.q), ("k", a.k), ("v", a.v), ("out", a.out)] {
        to_u32(&format!("{name} elements"), t.numel())?;
        if t.numel() as u64 > max_bind {
            return err(format!(
                "{name} {:?} exceeds the adapter's binding size",
                t.shape()
            ));
        }
    }
    to_u32("probs elements", n_probs)?;

    let bias_per = heads * q_len * kv_len;
    // A stride only matters when more than one row or position uses it.
    let stride =
        |what: &str, s: usize, count: usize| if count > 1 { to_u32(what, s) } else { Ok(0) };
    let kv_rows_span = if a.kv_rows.is_some() { 2 } else { kv_batch };
    let params = AttnParams {
        batch: to_u32("batch", batch)?,
        heads: to_u32("heads", heads)?,
        head_dim: to_u32("head_dim", dh)?,
        q_len: to_u32("q_len", q_len)?,
        kv_len: to_u32("kv_len", kv_len)?,
        kv_group: to_u32("kv_group", a.kv_group)?,
        q_off: to_u32("q offset", a.q_layout.offset)?,
        q_bs: stride("q batch_stride", a.q_layout.batch_stride, batch)?,
        q_rs: stride("q row_stride", a.q_layout.row_stride, q_len)?,
        k_off: to_u32("k offset", a.k_layout.offset)?,
        k_bs: stride("k batch_stride", a.k_layout.batch_stride, kv_rows_span)?,
        k_rs: stride("k row_stride", a.k_layout.row_stride, kv_len)?,
        v_off: to_u32("v offset", a.v_layout.offset)?,
        v_bs: stride("v batch_stride", a.v_layout.batch_stride, kv_rows_span)?,
        v_rs: stride("v row_stride", a.v_layout.row_stride, kv_len)?,
        o_off: to_u32("out offset", a.out_layout.offset)?,
        o_bs: stride("out batch_stride", a.out_layout.batch_stride, batch)?,
        o_rs: stride("out row_stride", a.out_layout.row_stride, q_len)?,
        has_lengths: a.key_lengths.is_some() as u32,
        causal: a.causal_offset.is_some() as u32,
        causal_offset: a.causal_offset.unwrap_or(0).min(kv_len) as u32,
        has_bias: a.bias.is_some() as u32,
        bias_bs: match a.bias {
            Some(b) if b.numel() != bias_per => bias_per as u32,
            _ => 0,
        },
        has_kv_rows: a.kv_rows.is_some() as u32,
        kv_rows_stride: to_u32("kv_rows_stride", a.kv_rows_stride)?,
        kv_rows_max,
        write_probs: a.probs.is_some() as u32,
        scale: a.scale,
        total: 0,
        splits: 1,
        chunk: 0,
        q_tiles: 0,
    };
    Ok(Plan {
        empty: batch == 0 || heads == 0 || q_len == 0 || dh == 0,
        params,
    })
}

/// Queries per `decode` query group: on CPU adapters the beams of one source (kv_group, no
/// kv_rows table) load their shared keys once, up to 8 and as long as a lane keeps at most
/// [`DECODE_MAX_NA`] vec4 columns of them (measured on lavapipe, 32 rows × 8 heads × 32 keys
/// in groups of 4: 0.84 vs 1.06 ms); on GPUs the caches share them and the rows are worth more
/// as parallel subgroups.
fn decode_queries(cpu: bool, a: &Attention, na: u32) -> usize {
    if !cpu || a.kv_rows.is_some() {
        return 1;
    }
    [8usize, 4, 2, 1]
        .into_iter()
        .find(|&q| {
            a.kv_group.is_multiple_of(q) && q * na as usize <= DECODE_MAX_NA.max(na as usize)
        })
        .unwrap_or(1)
}

/// Decode: one dispatch, WG / LANES query groups per workgroup.
fn decode(rec: &mut Recorder, a: &Attention, plan: &Plan, cpu: bool) -> Result<()> {
    let gpu = rec.gpu().clone();
    let Some(dp) = decode_plan_tuned(&gpu, a.head_dim, cpu) else {
        return err(format!(
            "Decode takes head_dim up to {}; head_dim is {}",
            decode_max_head_dim(&gpu),
            a.head_dim
        ));
    };
    let qg = decode_queries(cpu, a, dp.na);
    let opt = Optionals::new(&gpu, a)?;
    let key = key(
        "decode",
        Section::Decode,
        dp.wg,
        dp.subgroups,
        vec4_layouts(a),
    )
    .u32("LANES", dp.lanes)
    .u32("CL", dp.cl)
    .u32("NA", dp.na)
    .u32("QG", qg as u32)
    .u32("DH", a.head_dim as u32);
    let kernel = gpu.kernel::<AttnParams>(&key, FLASH_BINDINGS)?;
    let mut p = plan.params;
    p.total = to_u32("query groups", a.batch / qg * a.heads * a.q_len)?;
    let groups = p.total.div_ceil(dp.wg / dp.lanes);
    rec.dispatch(
        &kernel,
        &p,
        &[
            a.q,
            a.k,
            a.v,
            a.out,
            &opt.lengths,
            &opt.bias,
            &opt.kv_rows,
            &opt.probs,
        ],
        grid(&gpu, groups),
    )
}

/// Pooled stand-ins for absent optional inputs.
struct Optionals {
    lengths: Tensor,
    bias: Tensor,
    kv_rows: Tensor,
    probs: Tensor,
}

impl Optionals {
    fn new(gpu: &Gpu, a: &Attention) -> Result<Optionals> {
        let pick = |t: Option<&Tensor>, dtype| match t {
            Some(t) => Ok(t.clone()),
            None => gpu.empty(&[1], dtype),
        };
        Ok(Optionals {
            lengths: pick(a.key_lengths, DType::U32)?,
            bias: pick(a.bias, DType::F32)?,
            kv_rows: pick(a.kv_rows, DType::U32)?,
            probs: pick(a.probs, DType::F32)?,
        })
    }
}

/// Naive: scores → in-place masked softmax → P·V.
fn naive(rec: &mut Recorder, a: &Attention, plan: &Plan) -> Result<()> {
    let gpu = rec.gpu().clone();
    let opt = Optionals::new(&gpu, a)?;
    let (batch, heads, q_len, kv_len) = (a.batch, a.heads, a.q_len, a.kv_len);
    let scores = match a.probs {
        Some(p) => p.clone(),
        None => gpu.empty(&[batch, heads, q_len, kv_len], DType::F32)?,
    };
    let n_scores = batch * heads * q_len * kv_len;
    if n_scores > 0 {
        let mut p = plan.params;
        p.total = n_scores as u32;
        let kernel = gpu.kernel::<AttnParams>(
            &key("naive_scores", Section::Naive, NAIVE_WG, false, false),
            NAIVE_SCORES_BINDINGS,
        )?;
        let groups = grid(&gpu, p.total.div_ceil(NAIVE_WG));
        rec.dispatch(&kernel, &p, &[a.q, a.k, &opt.kv_rows, &scores], groups)?;
        let rows = softmax::Rows {
            batch,
            heads,
            q_len,
            kv_len,
            scale: a.scale,
            key_lengths: a.key_lengths,
            len_div: a.kv_group,
            causal_offset: a.causal_offset,
            bias: a.bias,
        };
        softmax::launch(rec, &scores, &scores, &rows)?;
    }
    let mut p = plan.params;
    p.total = (batch * q_len * heads * a.head_dim) as u32;
    let kernel = gpu.kernel::<AttnParams>(
        &key("naive_pv", Section::Naive, NAIVE_WG, false, false),
        NAIVE_PV_BINDINGS,
    )?;
    let groups = grid(&gpu, p.total.div_ceil(NAIVE_WG));
    rec.dispatch(
        &kernel,
        &p,
        &[a.v, a.out, &opt.lengths, &opt.kv_rows, &scores],
        groups,
    )
}

/// Flash: one dispatch; WG queries of one (b, h) per workgroup.
fn flash(rec: &mut Recorder, a: &Attention, plan: &Plan) -> Result<()> {
    let gpu = rec.gpu().clone();
    let Some((wg, td, bk)) = flash_tiles(&gpu, a.q_len, a.head_dim) else {
        return err(format!("Flash cannot take head_dim {}", a.head_dim));
    };
    let opt = Optionals::new(&gpu, a)?;
    let key = key("flash", Section::Flash, wg, false, vec4_layouts(a))
        .u32("TD", td)
        .u32("BK", bk)
        .u32("DH", a.head_dim as u32);
    let kernel = gpu.kernel::<AttnParams>(&key, FLASH_BINDINGS)?;
    let mut p = plan.params;
    p.q_tiles = (a.q_len as u32).div_ceil(wg / td);
    let groups = to_u32("flash workgroups", a.batch * a.heads * p.q_tiles as usize)?;
    rec.dispatch(
        &kernel,
        &p,
        &[
            a.q,
            a.k,
            a.v,
            a.out,
            &opt.lengths,
            &opt.bias,
            &opt.kv_rows,
            &opt.probs,
        ],
        grid(&gpu, groups),
    )
}

/// SplitKeys: one dispatch when one split covers the keys, else splits then a merge.
fn split_keys(rec: &mut Recorder, a: &Attention, plan: &Plan, cpu: bool) -> Result<()> {
    let gpu = rec.gpu().clone();
    let opt = Optionals::new(&gpu, a)?;
    let rows = a.batch * a.heads * a.q_len;
    let target = if cpu {
        SPLIT_TARGET_GROUPS_CPU
    } else {
        SPLIT_TARGET_GROUPS
    };
    let (splits, chunk) = split_plan(rows, a.kv_len, target);
    let dh = a.head_dim as u32;
    let sg = gpu.caps().subgroups;
    let mut p = plan.params;
    p.total = to_u32("query rows", rows)?;
    p.splits = splits as u32;
    p.chunk = chunk as u32;
    let groups = to_u32("split workgroups", rows * splits)?;
    let split_key = |final_: bool| {
        key("split", Section::Split, SPLIT_WG, sg, vec4_layouts(a))
            .u32("CHUNK", SPLIT_CHUNK)
            .u32("DH", dh)
            .flag("FINAL", final_)
    };
    if splits == 1 {
        let kernel = gpu.kernel::<AttnParams>(&split_key(true), SPLIT_BINDINGS)?;
        return rec.dispatch(
            &kernel,
            &p,
            &[
                a.q,
                a.k,
                a.v,
                a.out,
                &opt.lengths,
                &opt.bias,
                &opt.kv_rows,
                &opt.probs,
            ],
            grid(&gpu, groups),
        );
    }
    // (acc[head_dim], max, sum) per split of each row.
    let part = gpu.empty(&[rows * splits, a.head_dim + 2], DType::F32)?;
    let kernel = gpu.kernel::<AttnParams>(&split_key(false), SPLIT_BINDINGS)?;
    rec.dispatch(
        &kernel,
        &p,
        &[
            a.q,
            a.k,
            a.v,
            &part,
            &opt.lengths,
            &opt.bias,
            &opt.kv_rows,
            &opt.probs,
        ],
        grid(&gpu, groups),
    )?;
    let merge_key = key("merge", Section::Split, SPLIT_WG, sg, false)
        .u32("CHUNK", SPLIT_CHUNK)
        .u32("DH", dh)
        .flag("FINAL", false);
    let kernel = gpu.kernel::<AttnParams>(&merge_key, MERGE_BINDINGS)?;
    rec.dispatch(
        &kernel,
        &p,
        &[a.out, &opt.probs, &part],
        grid(&gpu, p.total),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::softmax::tests::validate;

    #[test]
    fn every_variant_validates() {
        for entry in ["naive_scores", "naive_pv"] {
            validate::<AttnParams>(&key(entry, Section::Naive, NAIVE_WG, false, false), false);
        }
        let flash: [(u32, u32, u32, u32); 5] = [
            (32, 1, 32, 1),
            (64, 1, 16, 7),
            (64, 4, 32, 64),
            (128, 8, 16, 80),
            (32, 16, 4, 256),
        ];
        for (wg, td, bk, dh) in flash {
            for v4 in [false, dh.is_multiple_of(4)] {
                let k = key("flash", Section::Flash, wg, false, v4)
                    .u32("TD", td)
                    .u32("BK", bk)
                    .u32("DH", dh);
                validate::<AttnParams>(&k, false);
            }
        }
        for entry in ["split", "merge"] {
            for dh in [1u32, 7, 64, 80, 1024] {
                for fin in [false, true] {
                    for sg in [false, true] {
                        for v4 in [false, dh.is_multiple_of(4)] {
                            let k = key(entry, Section::Split, SPLIT_WG, sg, v4)
                                .u32("CHUNK", SPLIT_CHUNK)
                                .u32("DH", dh)
                                .flag("FINAL", fin);
                            validate::<AttnParams>(&k, sg);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn decode_variants_validate() {
        // (WG, LANES, CL, NA, QG, DH, subgroups): GPU-like (one query group of 32 or 8 lanes
        // in key groups), CPU-like (query groups of 1 or 4 lanes), serial, odd head_dim.
        let shapes: [(u32, u32, u32, u32, u32, u32, bool); 8] = [
            (32, 32, 8, 2, 1, 64, true),
            (32, 32, 16, 2, 1, 80, true),
            (8, 8, 2, 2, 1, 16, true),
            (8, 1, 1, 4, 4, 16, true),
            (8, 4, 4, 4, 2, 64, true),
            (8, 2, 2, 1, 8, 7, true),
            (8, 1, 1, 4, 1, 16, false),
            (8, 1, 1, 64, 1, 256, false),
        ];
        for (wg, lanes, cl, na, qg, dh, sg) in shapes {
            for v4 in [false, dh.is_multiple_of(4)] {
                let k = key("decode", Section::Decode, wg, sg, v4)
                    .u32("LANES", lanes)
                    .u32("CL", cl)
                    .u32("NA", na)
                    .u32("QG", qg)
                    .u32("DH", dh);
                validate::<AttnParams>(&k, sg);
            }
        }
    }

    #[test]
    fn split_plan_covers_the_keys() {
        for rows in [1, 8, 256, 1000] {
            for kv in [0, 1, 63, 64, 65, 257, 1500, 100_000] {
                let (s, c) = split_plan(rows, kv, SPLIT_TARGET_GROUPS);
                assert!(
                    s >= 1 && s * c >= kv && c <= SPLIT_CHUNK as usize,
                    "{rows} {kv}: {s} × {c}"
                );
                assert!(
                    (s - 1) * c < kv.max(1),
                    "{rows} {kv}: {s} × {c} has an empty split"
                );
            }
        }
    }

    #[test]
    fn layout_end_is_one_past_the_last_element() {
        let l = SeqLayout::fused(5, 8, 3, 2);
        // batch 2, len 5, width 8: last element at 16 + 1·120 + 4·24 + 7.
        assert_eq!(l.end(2, 5, 8), Some(16 + 120 + 96 + 8));
        assert_eq!(l.end(0, 5, 8), Some(0));
        assert_eq!(SeqLayout::new(usize::MAX, 1, 1).end(2, 1, 1), None);
    }
}
