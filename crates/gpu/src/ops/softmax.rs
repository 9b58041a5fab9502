//! Launcher for `shaders/softmax.wgsl`: masked softmax over the last dimension.
//!
//! One workgroup per row; the workgroup size is the smallest power of two ≥ kv_len in
//! 32..=256 (capped by the adapter's invocation limit). Reductions use subgroups where the
//! adapter has them, a shared-memory tree otherwise. Masks are computed in the kernel from
//! the lengths and the causal offset, and masked keys are excluded (never added as a large
//! negative number), so they come out exactly 0.

use crate::error::{Error, Result, shape_err};
use crate::ops::grid;
use crate::pipeline::{Access, Bindings, Family, KernelKey};
use crate::{DType, Recorder, Tensor};

/// Options of [`masked_softmax`]; the input is seen as `[batch, heads, q_len, kv_len]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxOptions<'a> {
    pub batch: usize,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    /// Multiplies the input before the softmax.
    pub scale: f32,
    /// u32 `[batch]`: keys j ≥ length are masked.
    pub key_lengths: Option<&'a Tensor>,
    /// Query i sees keys j ≤ i + offset.
    pub causal_offset: Option<usize>,
    /// f32 `[1 or batch, heads, q_len, kv_len]` added after scaling.
    pub bias: Option<&'a Tensor>,
}

impl<'a> SoftmaxOptions<'a> {
    /// Options for a plain softmax over `[batch, heads, q_len, kv_len]` (scale 1, no masks).
    pub fn new(batch: usize, heads: usize, q_len: usize, kv_len: usize) -> Self {
        SoftmaxOptions {
            batch,
            heads,
            q_len,
            kv_len,
            scale: 1.0,
            ..Default::default()
        }
    }
}

crate::wgsl_params! {
    /// Parameters of `softmax`.
    pub struct SoftmaxParams {
        /// batch · heads · q_len.
        pub rows: u32,
        pub heads: u32,
        pub q_len: u32,
        pub kv_len: u32,
        pub scale: f32,
        pub has_lengths: u32,
        /// Row b reads `lengths[b / len_div]` (attention's kv_group; 1 for [`masked_softmax`]).
        pub len_div: u32,
        pub causal: u32,
        /// Clamped to kv_len (larger offsets mask nothing more).
        pub causal_offset: u32,
        pub has_bias: u32,
        /// 0 for a bias shared by the batch, heads · q_len · kv_len otherwise.
        pub bias_batch_stride: u32,
    }
}

const BINDINGS: Bindings = &[
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::ReadWrite),
];
const BINDINGS_IN_PLACE: Bindings = &[(1, Access::ReadWrite), (2, Access::Read), (3, Access::Read)];

/// `out = softmax(scale · x + bias)` over the last dimension with the masks computed from
/// lengths in the kernel. Masked entries are exactly 0; a fully masked row is all zeros.
/// `out` may be `x` itself.
///
/// `key_lengths` must hold at least `batch` values (only the first `batch` are read); `bias`
/// holds `heads·q_len·kv_len` (shared by the batch) or `batch·heads·q_len·kv_len` values.
pub fn masked_softmax(
    rec: &mut Recorder,
    x: &Tensor,
    out: &Tensor,
    opts: &SoftmaxOptions,
) -> Result<()> {
    let shape = [opts.batch, opts.heads, opts.q_len, opts.kv_len];
    let n = checked_product(&shape).ok_or_else(|| Error::Shape {
        op: "masked_softmax",
        msg: format!("[batch, heads, q_len, kv_len] = {shape:?} overflows"),
    })?;
    for (name, t) in [("x", x), ("out", out)] {
        if t.dtype() != DType::F32 {
            return shape_err(
                "masked_softmax",
                format!("{name} must be f32, got {}", t.dtype().name()),
            );
        }
        if t.numel() != n {
            return shape_err(
                "masked_softmax",
                format!(
                    "{name} {:?} has {} elements, [batch, heads, q_len, kv_len] = {shape:?} needs {n}",
                    t.shape(),
                    t.numel()
                ),
            );
        }
    }
    let rows = Rows {
        batch: opts.batch,
        heads: opts.heads,
        q_len: opts.q_len,
        kv_len: opts.kv_len,
        scale: opts.scale,
        key_lengths: opts.key_lengths,
        len_div: 1,
        causal_offset: opts.causal_offset,
        bias: opts.bias,
    };
    rows.validate("masked_softmax")?;
    for (name, t) in [("key_lengths", opts.key_lengths), ("bias", opts.bias)] {
        if let Some(t) = t
            && same_buffer(t, out)
        {
            return shape_err(
                "masked_softmax",
                format!("{name} {:?} shares a buffer with out", t.shape()),
            );
        }
    }
    if same_buffer(x, out) && !(x.offset == out.offset && x.byte_len() == out.byte_len()) {
        return shape_err(
            "masked_softmax",
            format!(
                "x {:?} and out {:?} overlap in one buffer without being the same tensor",
                x.shape(),
                out.shape()
            ),
        );
    }
    launch(rec, x, out, &rows)
}

/// A softmax over `[batch, heads, q_len, kv_len]` rows, as the attention launcher needs it too.
pub(crate) struct Rows<'a> {
    pub batch: usize,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub scale: f32,
    /// u32; row b reads `key_lengths[b / len_div]`.
    pub key_lengths: Option<&'a Tensor>,
    pub len_div: usize,
    pub causal_offset: Option<usize>,
    pub bias: Option<&'a Tensor>,
}

impl Rows<'_> {
    /// Checks the optional inputs (dtypes and sizes).
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let Rows {
            batch,
            heads,
            q_len,
            kv_len,
            ..
        } = *self;
        if let Some(l) = self.key_lengths {
            let need = batch.div_ceil(self.len_div.max(1));
            if l.dtype() != DType::U32 {
                return shape_err(
                    op,
                    format!("key_lengths must be u32, got {}", l.dtype().name()),
                );
            }
            if l.numel() < need {
                return shape_err(
                    op,
                    format!(
                        "key_lengths {:?} holds {} values, {need} needed",
                        l.shape(),
                        l.numel()
                    ),
                );
            }
        }
        if let Some(bias) = self.bias {
            if bias.dtype() != DType::F32 {
                return shape_err(op, format!("bias must be f32, got {}", bias.dtype().name()));
            }
            let per = heads * q_len * kv_len;
            if bias.numel() != per && bias.numel() != batch * per {
                return shape_err(
                    op,
                    format!(
                        "bias {:?} must be [1 or {batch}, {heads}, {q_len}, {kv_len}] ({per} or {} elements)",
                        bias.shape(),
                        batch * per
                    ),
                );
            }
        }
        let rows = batch * heads * q_len;
        if u32::try_from(rows * kv_len).is_err() {
            return shape_err(op, format!("{rows} rows of {kv_len} exceed u32 indexing"));
        }
        Ok(())
    }
}

pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

pub(crate) fn same_buffer(a: &Tensor, b: &Tensor) -> bool {
    a.buf.id == b.buf.id
}

/// Workgroup size for rows of `kv_len`: the smallest power of two ≥ kv_len in 32..=256.
fn workgroup_size(gpu: &crate::Gpu, kv_len: usize) -> u32 {
    let cap = gpu
        .limits()
        .max_compute_invocations_per_workgroup
        .clamp(1, 256);
    let cap = 1u32 << (31 - cap.leading_zeros()); // power of two ≤ the limit
    (kv_len.next_power_of_two().clamp(32, 256) as u32).min(cap)
}

/// Records the softmax of validated rows; `out` is `x` itself when they share a buffer.
pub(crate) fn launch(rec: &mut Recorder, x: &Tensor, out: &Tensor, r: &Rows) -> Result<()> {
    let rows = r.batch * r.heads * r.q_len;
    if rows == 0 || r.kv_len == 0 {
        return Ok(());
    }
    let gpu = rec.gpu().clone();
    let in_place = same_buffer(x, out);
    let wg = workgroup_size(&gpu, r.kv_len);
    let subgroups = gpu.caps().subgroups;
    let key = KernelKey::new(Family::Softmax, "softmax")
        .u32("WG", wg)
        .flag("IN_PLACE", in_place)
        .flag("SUBGROUPS", subgroups);
    let kernel = gpu.kernel::<SoftmaxParams>(
        &key,
        if in_place {
            BINDINGS_IN_PLACE
        } else {
            BINDINGS
        },
    )?;
    let per = r.heads * r.q_len * r.kv_len;
    let params = SoftmaxParams {
        rows: rows as u32,
        heads: r.heads as u32,
        q_len: r.q_len as u32,
        kv_len: r.kv_len as u32,
        scale: r.scale,
        has_lengths: r.key_lengths.is_some() as u32,
        len_div: r.len_div.max(1) as u32,
        causal: r.causal_offset.is_some() as u32,
        causal_offset: r.causal_offset.unwrap_or(0).min(r.kv_len) as u32,
        has_bias: r.bias.is_some() as u32,
        bias_batch_stride: match r.bias {
            Some(b) if b.numel() != per => per as u32,
            _ => 0,
        },
    };
    let dummy_u32;
    let dummy_f32;
    let lengths = match r.key_lengths {
        Some(t) => t,
        None => {
            dummy_u32 = gpu.empty(&[1], DType::U32)?;
            &dummy_u32
        }
    };
    let bias = match r.bias {
        Some(t) => t,
        None => {
            dummy_f32 = gpu.empty(&[1], DType::F32)?;
            &dummy_f32
        }
    };
    let groups = grid(&gpu, rows as u32);
    if in_place {
        rec.dispatch(&kernel, &params, &[out, lengths, bias], groups)
    } else {
        rec.dispatch(&kernel, &params, &[x, lengths, bias, out], groups)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::params::WgslParams;

    /// Composes and validates a kernel variant with naga (no GPU needed); a variant without
    /// subgroups must not mention any subgroup builtin.
    pub(crate) fn validate<P: WgslParams>(key: &KernelKey, subgroups: bool) {
        let src = crate::pipeline::compose_source(key, P::WGSL).unwrap();
        if !subgroups {
            let code: String = src
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect();
            assert!(
                !code.contains("subgroup"),
                "{key:?}: subgroup-free variant uses subgroups"
            );
        }
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&src)));
        // unpack2x16float (common.wgsl's half_at) needs SHADER_FLOAT16_IN_FLOAT32, which wgpu
        // grants on every backend.
        let mut caps = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        if subgroups {
            caps |= naga::valid::Capabilities::SUBGROUP;
        }
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if subgroups {
            v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                .subgroup_operations(naga::valid::SubgroupOperationSet::all());
        }
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{key:?}: {}", e.emit_to_string(&src)));
    }

    #[test]
    fn every_variant_validates() {
        for wg in [32, 64, 256] {
            for in_place in [false, true] {
                for sg in [false, true] {
                    let key = KernelKey::new(Family::Softmax, "softmax")
                        .u32("WG", wg)
                        .flag("IN_PLACE", in_place)
                        .flag("SUBGROUPS", sg);
                    validate::<SoftmaxParams>(&key, sg);
                }
            }
        }
    }
}
