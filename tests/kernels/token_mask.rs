//! shaders/token_mask.wgsl against the CPU: -inf exactly where a row's mask clears a bit,
//! every other entry bit for bit unchanged, over vocabularies that end inside, at and just
//! past a mask word, batches of rows in any state, and rows left unconstrained.

use rand::Rng;
use seqbridge::gpu::Recorder;
use seqbridge::gpu::ops::token_mask::{UNCONSTRAINED, mask_words, token_mask};

use crate::common::{gpu, randn, rng};

/// The masks applied on the CPU.
fn reference(x: &[f32], masks: &[u32], states: &[u32], v: usize) -> Vec<f32> {
    let words = mask_words(v);
    let n_states = masks.len() / words;
    let mut out = x.to_vec();
    for (r, &s) in states.iter().enumerate() {
        if s as usize >= n_states {
            continue;
        }
        for i in 0..v {
            if masks[s as usize * words + i / 32] >> (i % 32) & 1 == 0 {
                out[r * v + i] = f32::NEG_INFINITY;
            }
        }
    }
    out
}

fn run(x: &[f32], masks: &[u32], states: &[u32], v: usize) -> Vec<f32> {
    let gpu = gpu();
    let words = mask_words(v);
    let tx = gpu.upload(x, &[states.len(), v]).unwrap();
    let tm = gpu.upload(masks, &[masks.len() / words, words]).unwrap();
    let ts = gpu.upload(states, &[states.len()]).unwrap();
    let mut rec = Recorder::new(gpu);
    token_mask(&mut rec, &tx, &tm, &ts).unwrap();
    rec.submit();
    tx.to_vec_f32().unwrap()
}

#[test]
fn token_mask_matches_the_cpu() {
    let mut r = rng(43);
    for v in [1usize, 31, 32, 33, 150, 1000, 58101] {
        for rows in [1usize, 3, 8] {
            let words = mask_words(v);
            let n_states = 1 + (v + rows) % 5;
            // Masks: all allowed, none allowed, a single token, and random densities.
            let mut masks = Vec::with_capacity(n_states * words);
            for s in 0..n_states {
                let row: Vec<u32> = match s {
                    0 => vec![u32::MAX; words],
                    1 => vec![0; words],
                    2 => {
                        let mut m = vec![0; words];
                        let t = r.random_range(0..v);
                        m[t / 32] = 1 << (t % 32);
                        m
                    }
                    _ => (0..words)
                        .map(|_| r.random::<u32>() & r.random::<u32>())
                        .collect(),
                };
                masks.extend(row);
            }
            let states: Vec<u32> = (0..rows)
                .map(|i| match i % 4 {
                    3 => UNCONSTRAINED,
                    _ => r.random_range(0..n_states as u32 + 1),
                })
                .collect();
            let x = randn(&mut r, rows * v, 3.0);
            let got = run(&x, &masks, &states, v);
            let want = reference(&x, &masks, &states, v);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits(),
                    "{rows}x{v}, states {states:?}: row {} column {}: got {g}, want {w}",
                    i / v,
                    i % v
                );
            }
        }
    }
    gpu().check_errors().unwrap();
}

#[test]
fn token_mask_rejects_bad_shapes() {
    let gpu = gpu();
    let x = gpu.upload(&[0.5f32; 3 * 40], &[3, 40]).unwrap();
    let states = gpu.upload(&[0u32; 3], &[3]).unwrap();
    let mut rec = Recorder::new(gpu);
    let one_word = gpu.upload(&[0u32; 2], &[2, 1]).unwrap();
    let e = token_mask(&mut rec, &x, &one_word, &states)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 1]") && e.contains("[states, 2]"), "{e}");
    let masks = gpu.upload(&[0u32; 4], &[2, 2]).unwrap();
    let two = gpu.upload(&[0u32; 2], &[2]).unwrap();
    let e = token_mask(&mut rec, &x, &masks, &two)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row_state [2]") && e.contains("[3]"), "{e}");
}
