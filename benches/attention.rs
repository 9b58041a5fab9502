//! Attention benchmarks: Naive, Flash and Gemm forced, and Auto (Gemm or Flash for prefills;
//! Decode or SplitKeys for one query), on the models' shapes.
//!
//! `cargo bench --bench attention` (SEQBRIDGE_BACKEND selects the adapter). Each sample
//! records R attention calls into one Recorder, submits once and waits for the device, so
//! the time is GPU work plus one submit, not recording overhead per call. Throughput is in
//! FLOPs (criterion's "elem/s" is FLOP/s): 4 · head_dim per visible (query, key) pair. The
//! decode cases also print GB/s of K/V/Q/out traffic (visible keys only).

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seqbridge::gpu::ops::attention::{self, Attention, AttentionImpl, SeqLayout};
use seqbridge::gpu::{DType, Gpu, Recorder, Tensor};

struct Shape {
    name: &'static str,
    batch: usize,
    heads: usize,
    dh: usize,
    q_len: usize,
    kv_len: usize,
    kv_group: usize,
    /// Per key batch row.
    lengths: Option<Vec<u32>>,
    causal: bool,
    /// Q, K, V read from one fused `[B, T, 3D]` projection.
    fused: bool,
    /// K/V in a `[rows, tmax, D]` cache.
    cache_tmax: Option<usize>,
    decode: bool,
    /// Calls per submit.
    reps: usize,
}

impl Shape {
    fn limit(&self, b: usize, i: usize) -> usize {
        let mut l = self.kv_len;
        if let Some(len) = &self.lengths {
            l = l.min(len[b / self.kv_group] as usize);
        }
        if self.causal {
            l = l.min(i + 1);
        }
        l
    }

    /// Visible (query, key) pairs per head.
    fn pairs(&self) -> usize {
        (0..self.batch)
            .map(|b| (0..self.q_len).map(|i| self.limit(b, i)).sum::<usize>())
            .sum()
    }

    fn flops(&self) -> u64 {
        (4 * self.dh * self.heads * self.pairs()) as u64
    }

    /// Bytes moved for one call: visible K and V rows once per key batch row, Q and out.
    fn bytes(&self) -> u64 {
        let d = self.heads * self.dh;
        let kv_rows = self.batch / self.kv_group;
        let kv: usize = (0..kv_rows)
            .map(|r| self.limit(r * self.kv_group, self.q_len - 1))
            .sum();
        (4 * (2 * kv * d + 2 * self.batch * self.q_len * d)) as u64
    }
}

struct Bound {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lengths: Option<Tensor>,
}

fn bind(gpu: &Gpu, s: &Shape) -> Bound {
    let d = s.heads * s.dh;
    let fill = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
            .collect()
    };
    let kv_rows = s.batch / s.kv_group;
    let (q, k, v) = if s.fused {
        let t = gpu
            .upload(&fill(s.batch * s.q_len * 3 * d), &[s.batch, s.q_len, 3 * d])
            .unwrap();
        (t.clone(), t.clone(), t)
    } else {
        let tmax = s.cache_tmax.unwrap_or(s.kv_len);
        let q = gpu
            .upload(&fill(s.batch * s.q_len * d), &[s.batch, s.q_len, d])
            .unwrap();
        let k = gpu
            .upload(&fill(kv_rows * tmax * d), &[kv_rows, tmax, d])
            .unwrap();
        let v = gpu
            .upload(&fill(kv_rows * tmax * d), &[kv_rows, tmax, d])
            .unwrap();
        (q, k, v)
    };
    let out = gpu.empty(&[s.batch, s.q_len, d], DType::F32).unwrap();
    let lengths = s
        .lengths
        .as_ref()
        .map(|l| gpu.upload(l, &[l.len()]).unwrap());
    Bound {
        q,
        k,
        v,
        out,
        lengths,
    }
}

fn args<'a>(s: &Shape, b: &'a Bound, imp: AttentionImpl) -> Attention<'a> {
    let d = s.heads * s.dh;
    let mut a = Attention::new(
        &b.q, &b.k, &b.v, &b.out, s.batch, s.heads, s.dh, s.q_len, s.kv_len,
    );
    if s.fused {
        a.q_layout = SeqLayout::fused(s.q_len, d, 3, 0);
        a.k_layout = SeqLayout::fused(s.q_len, d, 3, 1);
        a.v_layout = SeqLayout::fused(s.q_len, d, 3, 2);
    } else if let Some(tmax) = s.cache_tmax {
        a.k_layout = SeqLayout::contiguous(tmax, d);
        a.v_layout = SeqLayout::contiguous(tmax, d);
    }
    a.kv_group = s.kv_group;
    a.key_lengths = b.lengths.as_ref();
    a.causal_offset = s.causal.then_some(0);
    a.imp = imp;
    a
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "encoder_self_B8_H8_T64_dh64_padded",
            batch: 8,
            heads: 8,
            dh: 64,
            q_len: 64,
            kv_len: 64,
            kv_group: 1,
            lengths: Some(vec![64, 57, 50, 41, 64, 33, 20, 64]),
            causal: false,
            fused: true,
            cache_tmax: None,
            decode: false,
            reps: 10,
        },
        Shape {
            name: "decoder_prefill_causal_B4_H8_T48_dh64",
            batch: 4,
            heads: 8,
            dh: 64,
            q_len: 48,
            kv_len: 48,
            kv_group: 1,
            lengths: None,
            causal: true,
            fused: true,
            cache_tmax: None,
            decode: false,
            reps: 10,
        },
        Shape {
            name: "cross_decode_B32(8x4beams)_H8_S64_dh64",
            batch: 32,
            heads: 8,
            dh: 64,
            q_len: 1,
            kv_len: 64,
            kv_group: 4,
            lengths: Some(vec![64, 60, 55, 64, 48, 64, 31, 64]),
            causal: false,
            fused: false,
            cache_tmax: None,
            decode: true,
            reps: 20,
        },
        Shape {
            name: "whisper_encoder_B1_H6_T1500_dh64",
            batch: 1,
            heads: 6,
            dh: 64,
            q_len: 1500,
            kv_len: 1500,
            kv_group: 1,
            lengths: None,
            causal: false,
            fused: true,
            cache_tmax: None,
            decode: false,
            reps: 1,
        },
        Shape {
            name: "long_decode_B1_H8_kv1500_dh64",
            batch: 1,
            heads: 8,
            dh: 64,
            q_len: 1,
            kv_len: 1500,
            kv_group: 1,
            lengths: None,
            causal: false,
            fused: false,
            cache_tmax: Some(2048),
            decode: true,
            reps: 20,
        },
    ]
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new().expect("the attention bench needs a GPU adapter");
    eprintln!(
        "attention bench on {} ({}), subgroups {}",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.caps().subgroups
    );
    for s in shapes() {
        let bound = bind(&gpu, &s);
        let mut group = c.benchmark_group(format!("attention/{}", s.name));
        group.throughput(Throughput::Elements(s.flops() * s.reps as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for imp in [
            AttentionImpl::Naive,
            AttentionImpl::Flash,
            AttentionImpl::Gemm,
            AttentionImpl::Auto,
        ] {
            let a = args(&s, &bound, imp);
            let Ok(chosen) = attention::select(&gpu, &a) else {
                continue;
            };
            // Compile outside the timing; a forced kernel that cannot take the shape (Gemm
            // with a beam table) is left out.
            let mut rec = Recorder::new(&gpu);
            if attention::attention(&mut rec, &a).is_err() {
                continue;
            }
            rec.submit();
            gpu.wait_idle().unwrap();
            let total = Cell::new((Duration::ZERO, 0u64));
            group.bench_function(
                BenchmarkId::new(format!("{imp:?}->{chosen:?}"), s.reps),
                |bch| {
                    bch.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let mut rec = Recorder::new(&gpu);
                            for _ in 0..s.reps {
                                attention::attention(&mut rec, &a).unwrap();
                            }
                            rec.submit();
                            gpu.wait_idle().unwrap();
                        }
                        let t = start.elapsed();
                        let (d, n) = total.get();
                        total.set((d + t, n + iters));
                        t
                    })
                },
            );
            let (d, n) = total.get();
            if n == 0 {
                continue; // filtered out on the command line
            }
            let per_call = d.as_secs_f64() / (n as f64 * s.reps as f64);
            let gflops = s.flops() as f64 / per_call / 1e9;
            if s.decode {
                let gbs = s.bytes() as f64 / per_call / 1e9;
                println!(
                    "{} {imp:?}->{chosen:?}: {:.1} us/call, {gflops:.2} GFLOP/s, {gbs:.2} GB/s",
                    s.name,
                    per_call * 1e6
                );
            } else {
                println!(
                    "{} {imp:?}->{chosen:?}: {:.1} us/call, {gflops:.2} GFLOP/s",
                    s.name,
                    per_call * 1e6
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
