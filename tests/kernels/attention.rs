//! shaders/attention.wgsl against the CPU.
//!
//! Every case runs every forced implementation (Naive, Flash, SplitKeys) and Auto against a
//! CPU reference: scores in f32 exactly as specified (f32(dot) · scale + bias), softmax and
//! weighted sum in f64. Tolerances: out atol 2e-5 + rtol 1e-4, probs atol 1e-5 + rtol 1e-4;
//! masked probabilities must be exactly 0.
//!
//! The inputs are hostile: every K/V element outside the visible keys (padding past a key
//! length, cache rows past kv_len, the gaps of strided layouts, the row that out-of-range
//! `kv_rows` entries clamp to) is NaN, so a kernel that reads a masked key into any sum
//! fails; `probs` starts at 7 and the gaps of `out` hold a sentinel that must survive.

use rand::{Rng, rngs::StdRng};
use seqbridge::gpu::ops::attention::{self, Attention, AttentionImpl, SeqLayout, Tuning};
use seqbridge::gpu::{DType, Recorder, Tensor};

use crate::common::{assert_close, gpu, randn, rng};

const SENTINEL: f32 = 1.0e9;

/// How Q, K, V and out are laid out.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// Separate contiguous tensors.
    Contiguous,
    /// Q, K, V parts 0, 1, 2 of one `[batch, T, 3D]` projection (self-attention, q_len == kv_len);
    /// out `[batch, T, D + 3]` with an offset.
    Fused,
    /// K/V in caches `[rows, kv_len + 3, D]` at an offset; Q and out time-major `[T, batch, D]`.
    Cache,
}

#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    heads: usize,
    dh: usize,
    q_len: usize,
    kv_len: usize,
    kv_group: usize,
    /// Per key/value batch row (`batch / kv_group` values).
    lengths: Option<Vec<u32>>,
    causal: Option<usize>,
    /// Bias batch: 1 or `batch`.
    bias: Option<usize>,
    /// Random beam table with masked entries pointing out of range (clamped to a NaN row).
    kv_rows: bool,
    layout: Layout,
    probs: bool,
}

impl Case {
    fn new(batch: usize, heads: usize, dh: usize, q_len: usize, kv_len: usize) -> Case {
        Case {
            batch,
            heads,
            dh,
            q_len,
            kv_len,
            kv_group: 1,
            lengths: None,
            causal: None,
            bias: None,
            kv_rows: false,
            layout: Layout::Contiguous,
            probs: true,
        }
    }

    fn name(&self) -> String {
        format!(
            "B{} H{} dh{} q{} kv{} group{} lengths{:?} causal{:?} bias{:?} kv_rows{} {:?} probs{}",
            self.batch,
            self.heads,
            self.dh,
            self.q_len,
            self.kv_len,
            self.kv_group,
            self.lengths,
            self.causal,
            self.bias,
            self.kv_rows,
            self.layout,
            self.probs
        )
    }

    fn limit(&self, b: usize, i: usize) -> usize {
        let mut l = self.kv_len;
        if let Some(len) = &self.lengths {
            l = l.min(len[b / self.kv_group] as usize);
        }
        if let Some(off) = self.causal {
            l = l.min(i + off + 1);
        }
        l
    }
}

/// Host copies of everything the kernel reads, plus the layouts.
struct Inputs {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    out_len: usize,
    ql: SeqLayout,
    kl: SeqLayout,
    vl: SeqLayout,
    ol: SeqLayout,
    /// K/V rows of the tensors (the NaN row included).
    kv_phys: usize,
    bias: Option<Vec<f32>>,
    kv_rows: Option<Vec<u32>>,
    kv_rows_stride: usize,
    scale: f32,
}

fn at(l: &SeqLayout, row: usize, t: usize, h: usize, d: usize, dh: usize) -> usize {
    l.offset + row * l.batch_stride + t * l.row_stride + h * dh + d
}

fn build(c: &Case, r: &mut StdRng) -> Inputs {
    let d = c.heads * c.dh;
    let kv_batch = c.batch / c.kv_group;
    // With a beam table, K/V hold `batch` rows plus a NaN row that masked entries clamp to.
    let kv_phys = if c.kv_rows { c.batch + 1 } else { kv_batch };
    let (ql, kl, vl, ol, q_n, kv_n, out_n, shared) = match c.layout {
        Layout::Contiguous => {
            let ql = SeqLayout::contiguous(c.q_len, d);
            let kl = SeqLayout::contiguous(c.kv_len, d);
            (
                ql,
                kl,
                kl,
                ql,
                c.batch * c.q_len * d,
                kv_phys * c.kv_len * d,
                c.batch * c.q_len * d,
                false,
            )
        }
        Layout::Fused => {
            assert_eq!(c.q_len, c.kv_len);
            let rows = c.batch.max(kv_phys);
            let t = c.q_len;
            let ol = SeqLayout::new(2, t * (d + 3), d + 3);
            (
                SeqLayout::fused(t, d, 3, 0),
                SeqLayout::fused(t, d, 3, 1),
                SeqLayout::fused(t, d, 3, 2),
                ol,
                rows * t * 3 * d,
                0,
                2 + c.batch * t * (d + 3),
                true,
            )
        }
        Layout::Cache => {
            let tmax = c.kv_len + 3;
            let kl = SeqLayout::new(5, tmax * d, d);
            let vl = SeqLayout::new(11, tmax * d, d);
            // Time-major queries and outputs: position t of batch row b at (t · batch + b) · D.
            let ql = SeqLayout::new(3, d, c.batch * d);
            let ol = SeqLayout::new(1, d, c.batch * d);
            let kv_n = 11 + kv_phys * tmax * d + 2;
            (
                ql,
                kl,
                vl,
                ol,
                3 + c.q_len * c.batch * d,
                kv_n,
                1 + c.q_len * c.batch * d + 1,
                false,
            )
        }
    };
    let mut q = vec![f32::NAN; q_n];
    let mut k = vec![f32::NAN; if shared { 0 } else { kv_n }];
    let mut v = k.clone();
    for b in 0..c.batch {
        for i in 0..c.q_len {
            for h in 0..c.heads {
                for e in 0..c.dh {
                    q[at(&ql, b, i, h, e, c.dh)] = r.random_range(-1.0..1.0);
                }
            }
        }
    }
    // Keys that are visible to some query of some batch row get values; the rest stay NaN.
    let visible = |row: usize, t: usize| -> bool {
        if c.kv_rows {
            row < c.batch
        } else {
            (0..c.batch)
                .filter(|b| b / c.kv_group == row)
                .any(|b| (0..c.q_len).any(|i| t < c.limit(b, i)))
        }
    };
    {
        let (kt, vt): (&mut Vec<f32>, Option<&mut Vec<f32>>) = if shared {
            (&mut q, None)
        } else {
            (&mut k, Some(&mut v))
        };
        let mut vals = Vec::new();
        for row in 0..kv_phys {
            for t in 0..c.kv_len {
                if visible(row, t) {
                    for h in 0..c.heads {
                        for e in 0..c.dh {
                            vals.push((
                                at(&kl, row, t, h, e, c.dh),
                                at(&vl, row, t, h, e, c.dh),
                                r.random_range(-1.0..1.0),
                                r.random_range(-1.0..1.0),
                            ));
                        }
                    }
                }
            }
        }
        match vt {
            Some(vt) => {
                for (ki, vi, kv, vv) in vals {
                    kt[ki] = kv;
                    vt[vi] = vv;
                }
            }
            None => {
                for (ki, vi, kv, vv) in vals {
                    kt[ki] = kv;
                    kt[vi] = vv;
                }
            }
        }
    }
    let bias = c.bias.map(|bb| {
        let mut v = randn(r, bb * c.heads * c.q_len * c.kv_len, 2.0);
        // An additive-mask style entry (Hugging Face uses f32::MIN) now and then.
        for (n, x) in v.iter_mut().enumerate() {
            if n % 11 == 3 {
                *x = f32::MIN;
            }
        }
        v
    });
    let kv_rows_stride = c.kv_len + 2;
    let kv_rows = c.kv_rows.then(|| {
        let mut t = vec![0u32; c.batch * kv_rows_stride];
        for b in 0..c.batch {
            let len = c
                .lengths
                .as_ref()
                .map_or(c.kv_len, |l| l[b / c.kv_group] as usize);
            for p in 0..kv_rows_stride {
                t[b * kv_rows_stride + p] = if p < len.min(c.kv_len) {
                    r.random_range(0..c.batch as u32)
                } else {
                    u32::MAX
                };
            }
        }
        t
    });
    Inputs {
        q,
        k,
        v,
        out_len: out_n,
        ql,
        kl,
        vl,
        ol,
        kv_phys,
        bias,
        kv_rows,
        kv_rows_stride,
        scale: 1.0 / (c.dh as f32).sqrt(),
    }
}

/// (out over the whole out tensor, probs `[batch, heads, q_len, kv_len]`).
fn reference(c: &Case, x: &Inputs) -> (Vec<f32>, Vec<f32>) {
    let shared = c.layout == Layout::Fused;
    let (kt, vt) = if shared { (&x.q, &x.q) } else { (&x.k, &x.v) };
    let mut out = vec![SENTINEL; x.out_len];
    let mut probs = vec![0f32; c.batch * c.heads * c.q_len * c.kv_len];
    for b in 0..c.batch {
        for h in 0..c.heads {
            for i in 0..c.q_len {
                let limit = c.limit(b, i);
                let row = |t: usize| match &x.kv_rows {
                    Some(tab) => (tab[b * x.kv_rows_stride + t] as usize).min(x.kv_phys - 1),
                    None => b / c.kv_group,
                };
                let s: Vec<f32> = (0..limit)
                    .map(|j| {
                        let dot: f64 = (0..c.dh)
                            .map(|e| {
                                x.q[at(&x.ql, b, i, h, e, c.dh)] as f64
                                    * kt[at(&x.kl, row(j), j, h, e, c.dh)] as f64
                            })
                            .sum();
                        let mut s = dot as f32 * x.scale;
                        if let (Some(bias), Some(bb)) = (&x.bias, c.bias) {
                            let bb = if bb == 1 { 0 } else { b };
                            s += bias[((bb * c.heads + h) * c.q_len + i) * c.kv_len + j];
                        }
                        s
                    })
                    .collect();
                let m = s.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
                let e: Vec<f64> = s.iter().map(|&s| (s as f64 - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                let pb = ((b * c.heads + h) * c.q_len + i) * c.kv_len;
                for d in 0..c.dh {
                    let acc: f64 = (0..limit)
                        .map(|j| e[j] / sum * vt[at(&x.vl, row(j), j, h, d, c.dh)] as f64)
                        .sum();
                    out[at(&x.ol, b, i, h, d, c.dh)] = acc as f32;
                }
                for j in 0..limit {
                    probs[pb + j] = (e[j] / sum) as f32;
                }
            }
        }
    }
    (out, probs)
}

struct Uploaded {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    lengths: Option<Tensor>,
    bias: Option<Tensor>,
    kv_rows: Option<Tensor>,
}

fn upload(c: &Case, x: &Inputs) -> Uploaded {
    let g = gpu();
    let q = g.upload(&x.q, &[x.q.len()]).unwrap();
    let (k, v) = if c.layout == Layout::Fused {
        (q.clone(), q.clone())
    } else {
        (
            g.upload(&x.k, &[x.k.len()]).unwrap(),
            g.upload(&x.v, &[x.v.len()]).unwrap(),
        )
    };
    Uploaded {
        q,
        k,
        v,
        lengths: c.lengths.as_ref().map(|l| g.upload(l, &[l.len()]).unwrap()),
        bias: x.bias.as_ref().map(|b| g.upload(b, &[b.len()]).unwrap()),
        kv_rows: x.kv_rows.as_ref().map(|t| g.upload(t, &[t.len()]).unwrap()),
    }
}

/// Runs one implementation; returns (out tensor contents, probs if requested).
fn run(
    c: &Case,
    x: &Inputs,
    u: &Uploaded,
    imp: AttentionImpl,
    tuning: Tuning,
) -> (Vec<f32>, Option<Vec<f32>>) {
    run_with(c, x, u, imp, |rec, args| {
        attention::attention_tuned(rec, args, tuning)
            .unwrap_or_else(|e| panic!("{} {imp:?} {tuning:?}: {e}", c.name()))
    })
}

/// Runs `launch` on the case's arguments (with `imp`) and reads back out and probs.
fn run_with(
    c: &Case,
    x: &Inputs,
    u: &Uploaded,
    imp: AttentionImpl,
    launch: impl FnOnce(&mut Recorder, &Attention),
) -> (Vec<f32>, Option<Vec<f32>>) {
    let g = gpu();
    let out = g.upload(&vec![SENTINEL; x.out_len], &[x.out_len]).unwrap();
    let n_probs = c.batch * c.heads * c.q_len * c.kv_len;
    let probs = c.probs.then(|| {
        g.upload(
            &vec![7.0f32; n_probs],
            &[c.batch, c.heads, c.q_len, c.kv_len],
        )
        .unwrap()
    });
    let args = Attention {
        q_layout: x.ql,
        k_layout: x.kl,
        v_layout: x.vl,
        out_layout: x.ol,
        kv_group: c.kv_group,
        key_lengths: u.lengths.as_ref(),
        causal_offset: c.causal,
        bias: u.bias.as_ref(),
        kv_rows: u.kv_rows.as_ref(),
        kv_rows_stride: x.kv_rows_stride,
        probs: probs.as_ref(),
        scale: x.scale,
        imp,
        ..Attention::new(
            &u.q, &u.k, &u.v, &out, c.batch, c.heads, c.dh, c.q_len, c.kv_len,
        )
    };
    let mut rec = Recorder::new(g);
    launch(&mut rec, &args);
    rec.submit();
    g.check_errors().unwrap();
    (
        out.to_vec_f32().unwrap(),
        probs.map(|p| p.to_vec_f32().unwrap()),
    )
}

fn check(c: &Case, seed: u64) {
    let mut imps = vec![AttentionImpl::Auto];
    // Gemm's head-major copies do not follow a beam table (an error, tested below).
    imps.extend(
        AttentionImpl::FORCED
            .into_iter()
            .filter(|&i| !(c.kv_rows && i == AttentionImpl::Gemm)),
    );
    check_with(c, seed, &imps);
}

fn check_with(c: &Case, seed: u64, imps: &[AttentionImpl]) {
    let mut r = rng(seed);
    let x = build(c, &mut r);
    let (want_out, want_probs) = reference(c, &x);
    let u = upload(c, &x);
    // Decode and Auto (which picks Decode) run both tunings: the GPU shape of Decode (key
    // groups within a query group's lanes) and the CPU one (head_dim split only, beams
    // sharing keys), whatever the adapter.
    let runs = imps.iter().flat_map(|&imp| {
        let tunings: &[Tuning] = match imp {
            AttentionImpl::Decode | AttentionImpl::Auto => &[Tuning::Cpu, Tuning::Gpu],
            _ => &[Tuning::Adapter],
        };
        tunings.iter().map(move |&t| (imp, t))
    });
    for (imp, tuning) in runs {
        let case = format!("{} {imp:?} {tuning:?}", c.name());
        let (out, probs) = run(c, &x, &u, imp, tuning);
        assert_close(&case, &out, &want_out, 2e-5, 1e-4);
        if let Some(p) = probs {
            assert_close(&format!("{case} probs"), &p, &want_probs, 1e-5, 1e-4);
            for b in 0..c.batch {
                for h in 0..c.heads {
                    for i in 0..c.q_len {
                        let base = ((b * c.heads + h) * c.q_len + i) * c.kv_len;
                        for j in c.limit(b, i)..c.kv_len {
                            assert!(
                                p[base + j] == 0.0,
                                "{case}: probs[{b}, {h}, {i}, {j}] = {} is masked, must be 0",
                                p[base + j]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn plain_shapes_every_impl() {
    // 1, primes, and tile sizes ± 1 (flash query/key tiles 16..64, split chunks 64..256).
    let shapes = [
        (1, 1, 1, 1, 1),
        (2, 3, 7, 1, 13),
        (1, 2, 16, 31, 33),
        (3, 1, 33, 17, 65),
        (2, 2, 64, 65, 63),
        (1, 4, 80, 5, 129),
        (2, 1, 8, 1, 257),
        (1, 6, 16, 2, 255),
    ];
    for (seed, &(b, h, dh, q, kv)) in shapes.iter().enumerate() {
        check(&Case::new(b, h, dh, q, kv), seed as u64);
    }
}

#[test]
fn key_padding_including_empty_rows() {
    let mut c = Case::new(4, 2, 16, 7, 37);
    c.lengths = Some(vec![37, 1, 0, 20]);
    check(&c, 10);
    let mut c = Case::new(3, 3, 33, 1, 70);
    c.lengths = Some(vec![0, 70, 64]);
    c.layout = Layout::Cache;
    check(&c, 11);
    // Lengths beyond kv_len mask nothing more.
    let mut c = Case::new(2, 1, 7, 3, 9);
    c.lengths = Some(vec![100, 4]);
    check(&c, 12);
}

#[test]
fn causal_with_offsets() {
    for (seed, off) in [0usize, 3, 40].into_iter().enumerate() {
        let mut c = Case::new(2, 2, 16, 13, 13 + off.min(20));
        c.causal = Some(off);
        check(&c, 20 + seed as u64);
    }
    // Causal plus padding: decoder prefill of a batch with different prompt lengths.
    let mut c = Case::new(3, 2, 64, 33, 33);
    c.causal = Some(0);
    c.lengths = Some(vec![33, 10, 1]);
    check(&c, 24);
}

#[test]
fn bias_shared_and_per_batch() {
    for (seed, bb) in [1usize, 3].into_iter().enumerate() {
        let mut c = Case::new(3, 2, 16, 5, 19);
        c.bias = Some(bb);
        c.lengths = Some(vec![19, 7, 0]);
        check(&c, 30 + seed as u64);
    }
    let mut c = Case::new(1, 4, 7, 1, 66);
    c.bias = Some(1);
    check(&c, 32);
}

#[test]
fn grouped_keys_for_beams() {
    // 2 sources × 3 beams share the encoder K/V; lengths per source.
    let mut c = Case::new(6, 2, 16, 1, 29);
    c.kv_group = 3;
    c.lengths = Some(vec![29, 11]);
    check(&c, 40);
    let mut c = Case::new(4, 3, 33, 9, 17);
    c.kv_group = 2;
    c.layout = Layout::Cache;
    c.bias = Some(4);
    check(&c, 41);
    // Beams sharing keys in groups of 8 and 4 (Decode loads them once per group on CPU
    // adapters): an empty source, a bias per batch row, causal rows of two queries.
    let mut c = Case::new(16, 2, 64, 1, 37);
    c.kv_group = 8;
    c.lengths = Some(vec![37, 0]);
    c.bias = Some(16);
    check(&c, 42);
    let mut c = Case::new(12, 3, 16, 2, 21);
    c.kv_group = 4;
    c.lengths = Some(vec![21, 1, 13]);
    c.causal = Some(19);
    c.layout = Layout::Cache;
    check(&c, 43);
}

#[test]
fn beam_table_indirection() {
    let mut c = Case::new(4, 2, 16, 1, 23);
    c.kv_rows = true;
    c.lengths = Some(vec![23, 5, 0, 17]);
    c.layout = Layout::Cache;
    check(&c, 50);
    let mut c = Case::new(3, 1, 7, 4, 70);
    c.kv_rows = true;
    c.causal = Some(66);
    check(&c, 51);
}

#[test]
fn fused_projection_layouts() {
    let mut c = Case::new(2, 3, 16, 11, 11);
    c.layout = Layout::Fused;
    c.causal = Some(0);
    check(&c, 60);
    let mut c = Case::new(3, 2, 33, 17, 17);
    c.layout = Layout::Fused;
    c.lengths = Some(vec![17, 3, 9]);
    c.probs = false;
    check(&c, 61);
}

#[test]
fn long_keys_over_many_splits() {
    // Several SplitKeys splits per row (on any adapter), with a split past the key length, an
    // empty row, a per-batch bias and probabilities rescaled by the merge.
    let mut c = Case::new(3, 2, 16, 1, 600);
    c.lengths = Some(vec![600, 130, 0]);
    c.bias = Some(3);
    check(&c, 80);
    let mut c = Case::new(2, 1, 33, 1, 517);
    c.layout = Layout::Cache;
    c.kv_rows = true;
    c.lengths = Some(vec![517, 300]);
    check(&c, 81);
}

#[test]
fn empty_keys_and_empty_batches() {
    // kv_len 0: every row fully masked, outputs zero.
    check(&Case::new(2, 2, 16, 3, 0), 90);
    check(&Case::new(1, 1, 7, 1, 0), 91);
    // Nothing to compute: Ok, nothing written.
    let b = base();
    let mut rec = Recorder::new(gpu());
    for (batch, q_len) in [(0, 3), (2, 0)] {
        let a = Attention {
            batch,
            q_len,
            ..args(&b)
        };
        attention::attention(&mut rec, &a).unwrap();
    }
    assert_eq!(rec.dispatches(), 0);
}

#[test]
fn head_dims_past_the_fast_kernels() {
    let g = gpu();
    // head_dim 260: past Flash's 256; SplitKeys loops over several vec4 columns per invocation.
    // Decode takes it with subgroups of 8 or more (9 vec4 columns per lane at 8 lanes), not
    // as one invocation (65 columns, past its 64).
    let decode_260 = attention::decode_plan(g, 260).is_some();
    let mut c = Case::new(2, 1, 260, 1, 70);
    c.lengths = Some(vec![70, 9]);
    let mut imps = vec![
        AttentionImpl::Auto,
        AttentionImpl::Naive,
        AttentionImpl::SplitKeys,
    ];
    if decode_260 {
        imps.push(AttentionImpl::Decode);
    }
    check_with(&c, 95, &imps);
    let c = Case::new(1, 2, 260, 3, 5);
    check_with(&c, 96, &[AttentionImpl::Auto, AttentionImpl::Naive]);
    let b = base();
    let q = g.upload(&vec![0.0f32; 3 * 520], &[1, 3, 520]).unwrap();
    let k = g.upload(&vec![0.0f32; 5 * 520], &[1, 5, 520]).unwrap();
    let out = g.empty(&[1, 3, 520], DType::F32).unwrap();
    let a = Attention::new(&q, &k, &k, &out, 1, 2, 260, 3, 5);
    assert_eq!(attention::select(g, &a).unwrap(), AttentionImpl::Naive);
    let a1 = Attention { q_len: 1, ..a };
    let want = if decode_260 {
        AttentionImpl::Decode
    } else {
        AttentionImpl::SplitKeys
    };
    assert_eq!(attention::select(g, &a1).unwrap(), want);
    let a3 = Attention {
        q_len: 3,
        ..args(&b)
    };
    assert_eq!(attention::select(g, &a3).unwrap(), AttentionImpl::Flash);
    let e = error_of(&Attention {
        imp: AttentionImpl::Flash,
        ..a
    });
    assert!(
        e.contains("Flash takes head_dim 1..=256") && e.contains("head_dim is 260"),
        "{e}"
    );
    // Past what Decode keeps per lane on any adapter (16 vec4 columns × 128 lanes at most).
    let wide = g.upload(&vec![0.0f32; 8196], &[1, 1, 8196]).unwrap();
    let out_w = g.empty(&[1, 1, 8196], DType::F32).unwrap();
    let e = error_of(&Attention {
        imp: AttentionImpl::Decode,
        ..Attention::new(&wide, &wide, &wide, &out_w, 1, 1, 8196, 1, 1)
    });
    assert!(
        e.contains("Decode takes head_dim up to") && e.contains("head_dim is 8196"),
        "{e}"
    );
}

#[test]
fn random_sweep() {
    let dims = [1usize, 7, 16, 33, 64, 80];
    let lens = [1usize, 2, 3, 5, 13, 15, 16, 17, 31, 32, 33, 63, 65];
    let mut r = rng(99);
    for seed in 0..24u64 {
        let batch = r.random_range(1..=4usize);
        let heads = r.random_range(1..=6usize);
        let dh = dims[r.random_range(0..dims.len())];
        let mut q_len = lens[r.random_range(0..lens.len())];
        if r.random_bool(0.4) {
            q_len = 1;
        }
        let kv_len = lens[r.random_range(0..lens.len())] + r.random_range(0..3usize);
        let mut c = Case::new(batch, heads, dh, q_len, kv_len);
        if batch.is_multiple_of(2) && r.random_bool(0.4) {
            c.kv_group = 2;
        }
        let kv_batch = batch / c.kv_group;
        if r.random_bool(0.5) {
            c.lengths = Some(
                (0..kv_batch)
                    .map(|_| r.random_range(0..=kv_len as u32 + 1))
                    .collect(),
            );
        }
        if r.random_bool(0.3) {
            c.causal = Some(r.random_range(0..kv_len + 2));
        }
        if r.random_bool(0.3) {
            c.bias = Some(if r.random_bool(0.5) { 1 } else { batch });
        }
        c.kv_rows = r.random_bool(0.2);
        c.layout = match r.random_range(0..3) {
            0 => Layout::Contiguous,
            1 if q_len == kv_len => Layout::Fused,
            _ => Layout::Cache,
        };
        c.probs = r.random_bool(0.5);
        check(&c, 1000 + seed);
    }
}

#[test]
fn probs_rows_sum_to_one_and_masked_are_zero() {
    let g = gpu();
    let mut c = Case::new(3, 2, 16, 6, 40);
    c.lengths = Some(vec![40, 9, 0]);
    c.causal = Some(30);
    let x = build(&c, &mut rng(70));
    let u = upload(&c, &x);
    for imp in AttentionImpl::FORCED {
        let (_, probs) = run(&c, &x, &u, imp, Tuning::Adapter);
        let p = probs.unwrap();
        for b in 0..c.batch {
            for h in 0..c.heads {
                for i in 0..c.q_len {
                    let base = ((b * c.heads + h) * c.q_len + i) * c.kv_len;
                    let limit = c.limit(b, i);
                    let row = &p[base..base + c.kv_len];
                    let sum: f32 = row[..limit].iter().sum();
                    let want = if limit == 0 { 0.0 } else { 1.0 };
                    assert!(
                        (sum - want).abs() < 1e-5,
                        "{imp:?} b{b} h{h} i{i}: visible probs sum to {sum}"
                    );
                    assert!(
                        row[..limit].iter().all(|&v| v > 0.0 && v <= 1.0),
                        "{imp:?} b{b} h{h} i{i}: {row:?}"
                    );
                    assert!(
                        row[limit..].iter().all(|&v| v == 0.0),
                        "{imp:?} b{b} h{h} i{i}: masked {:?}",
                        &row[limit..]
                    );
                }
            }
        }
    }
    let _ = g;
}

/// Tensors for the error tests: q `[2, 3, 8]`, k/v `[2, 5, 8]`, out like q.
struct Base {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
}

fn base() -> Base {
    let g = gpu();
    Base {
        q: g.upload(&[0.5f32; 48], &[2, 3, 8]).unwrap(),
        k: g.upload(&[0.5f32; 80], &[2, 5, 8]).unwrap(),
        v: g.upload(&[0.5f32; 80], &[2, 5, 8]).unwrap(),
        out: g.empty(&[2, 3, 8], DType::F32).unwrap(),
    }
}

/// Valid arguments: batch 2, heads 2, head_dim 4, q_len 3, kv_len 5.
fn args(b: &Base) -> Attention<'_> {
    Attention::new(&b.q, &b.k, &b.v, &b.out, 2, 2, 4, 3, 5)
}

fn error_of(a: &Attention) -> String {
    let mut rec = Recorder::new(gpu());
    attention::attention(&mut rec, a)
        .expect_err("expected an error")
        .to_string()
}

#[test]
fn bad_arguments_are_errors_naming_the_problem() {
    let g = gpu();
    let b = base();
    // Layouts reaching outside their tensors.
    let e = error_of(&Attention {
        q_layout: SeqLayout::new(0, 24, 9),
        ..args(&b)
    });
    assert!(
        e.contains("q layout") && e.contains("[2, 3, 8]") && e.contains("48 elements"),
        "{e}"
    );
    let e = error_of(&Attention {
        k_layout: SeqLayout::new(1, 40, 8),
        ..args(&b)
    });
    assert!(e.contains("k layout") && e.contains("element 80"), "{e}");
    let e = error_of(&Attention {
        out_layout: SeqLayout::new(0, 100, 8),
        ..args(&b)
    });
    assert!(e.contains("out layout"), "{e}");
    let e = error_of(&Attention {
        v_layout: SeqLayout::contiguous(6, 8),
        ..args(&b)
    });
    assert!(e.contains("v layout"), "{e}");
    // kv_group must divide the batch.
    let e = error_of(&Attention {
        kv_group: 3,
        ..args(&b)
    });
    assert!(e.contains("kv_group 3") && e.contains("batch 2"), "{e}");
    let e = error_of(&Attention {
        kv_group: 0,
        ..args(&b)
    });
    assert!(e.contains("kv_group 0"), "{e}");
    // Wrong dtypes.
    let lengths_f32 = g.upload(&[1.0f32, 2.0], &[2]).unwrap();
    let e = error_of(&Attention {
        key_lengths: Some(&lengths_f32),
        ..args(&b)
    });
    assert!(
        e.contains("key_lengths") && e.contains("must be u32, got f32"),
        "{e}"
    );
    let k_u32 = g.upload(&[1u32; 80], &[2, 5, 8]).unwrap();
    let e = error_of(&Attention {
        k: &k_u32,
        ..args(&b)
    });
    assert!(e.contains("k [2, 5, 8] must be f32, got u32"), "{e}");
    // Sizes of the optional tensors.
    let short = g.upload(&[3u32], &[1]).unwrap();
    let e = error_of(&Attention {
        key_lengths: Some(&short),
        ..args(&b)
    });
    assert!(
        e.contains("key_lengths [1]") && e.contains("2 needed"),
        "{e}"
    );
    let bias = g.upload(&[0.0f32; 31], &[31]).unwrap();
    let e = error_of(&Attention {
        bias: Some(&bias),
        ..args(&b)
    });
    assert!(
        e.contains("bias [31]") && e.contains("[1 or 2, 2, 3, 5]"),
        "{e}"
    );
    let probs = g.upload(&[0.0f32; 59], &[59]).unwrap();
    let e = error_of(&Attention {
        probs: Some(&probs),
        ..args(&b)
    });
    assert!(e.contains("probs [59]") && e.contains("60 elements"), "{e}");
    let e = error_of(&Attention {
        kv_rows: Some(&short),
        kv_rows_stride: 5,
        ..args(&b)
    });
    assert!(
        e.contains("kv_rows [1]") && e.contains("kv_rows_stride 5"),
        "{e}"
    );
    let table = g.upload(&[0u32; 8], &[8]).unwrap();
    let e = error_of(&Attention {
        kv_rows: Some(&table),
        kv_rows_stride: 4,
        ..args(&b)
    });
    assert!(e.contains("kv_rows_stride ≥ kv_len 5"), "{e}");
    // Writing into an input.
    let e = error_of(&Attention {
        out: &b.q,
        ..args(&b)
    });
    assert!(e.contains("out [2, 3, 8] shares a buffer with q"), "{e}");
    let e = error_of(&Attention {
        probs: Some(&b.k),
        ..args(&b)
    });
    assert!(e.contains("probs [2, 5, 8]"), "{e}");
}

#[test]
fn gemm_in_chunks_of_batch_rows() {
    // Scores held to one kv_group block per chunk: the chunks past the first read their key
    // lengths, per-row bias and probability rows from copies at an offset.
    let mut c = Case::new(6, 2, 8, 5, 19);
    c.kv_group = 2;
    c.lengths = Some(vec![19, 4, 0]);
    c.causal = Some(9);
    c.bias = Some(6);
    c.probs = true;
    let x = build(&c, &mut rng(71));
    let (want_out, want_probs) = reference(&c, &x);
    let u = upload(&c, &x);
    let block_bytes = (2 * 2 * 5 * 19 * 4) as u64;
    for budget in [block_bytes, 2 * block_bytes + 4, u64::MAX] {
        let (out, probs) = run_with(&c, &x, &u, AttentionImpl::Gemm, |rec, args| {
            attention::attention_gemm_chunked(rec, args, budget).unwrap()
        });
        let case = format!("{} budget {budget}", c.name());
        assert_close(&case, &out, &want_out, 2e-5, 1e-4);
        assert_close(&case, &probs.unwrap(), &want_probs, 1e-5, 1e-4);
    }
    // Less than one block, or a beam table: errors naming why.
    let mut rec = Recorder::new(gpu());
    let small = gpu().empty(&[1], DType::F32).unwrap();
    let a = Attention::new(&u.q, &u.k, &u.v, &small, 1, 1, 1, 1, 1);
    let e = attention::attention_gemm_chunked(&mut rec, &Attention { kv_group: 1, ..a }, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("in one binding of 3 bytes"), "{e}");
    let mut c = Case::new(2, 1, 4, 3, 5);
    c.kv_rows = true;
    let x = build(&c, &mut rng(72));
    let u = upload(&c, &x);
    run_with(&c, &x, &u, AttentionImpl::Gemm, |rec, args| {
        let e = attention::attention(rec, args).unwrap_err().to_string();
        assert!(e.contains("Gemm does not take a kv_rows beam table"), "{e}");
    });
}
