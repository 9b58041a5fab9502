//! shaders/next_ids.wgsl against the CPU: the next step's ids and finished flags of greedy
//! search, over batches that end inside, at and just past a workgroup, rows already
//! finished, EOS lists of zero to three ids, forced tokens and the last step.

use rand::Rng;
use seqbridge::gpu::Recorder;
use seqbridge::gpu::ops::next_ids::{NextStep, next_ids};

use crate::common::{gpu, rng};

/// The host loop's rule: a row finishes on an EOS id or at the last step and is then fed
/// the pad id; otherwise it is fed its token.
fn reference(chosen: &[u32], eos: &[u32], finished: &[u32], step: NextStep) -> [Vec<u32>; 2] {
    let mut done = Vec::new();
    let mut ids = Vec::new();
    for (&c, &f) in chosen.iter().zip(finished) {
        let tok = step.forced.unwrap_or(c);
        let d = f != 0 || step.last || eos.contains(&tok);
        done.push(d as u32);
        ids.push(if d { step.pad } else { tok });
    }
    [done, ids]
}

#[test]
fn next_ids_matches_the_cpu() {
    let gpu = gpu();
    let mut r = rng(47);
    for rows in [1usize, 3, 63, 64, 65, 130] {
        for eos in [vec![], vec![2], vec![0, 7, 3]] {
            for (forced, last) in [
                (None, false),
                (None, true),
                (Some(7), false),
                (Some(5), false),
            ] {
                let step = NextStep {
                    pad: 1,
                    forced,
                    last,
                };
                // Tokens from a small vocabulary, so that EOS ids come up often.
                let chosen: Vec<u32> = (0..rows).map(|_| r.random_range(0..9)).collect();
                let finished: Vec<u32> = (0..rows).map(|_| r.random_bool(0.3) as u32).collect();
                let tc = gpu.upload(&chosen, &[rows]).unwrap();
                let te = (!eos.is_empty()).then(|| gpu.upload(&eos, &[eos.len()]).unwrap());
                let tf = gpu.upload(&finished, &[rows]).unwrap();
                // Stale ids, so that a row the kernel skipped would show.
                let ti = gpu.upload(&vec![u32::MAX; rows], &[rows]).unwrap();
                let mut rec = Recorder::new(gpu);
                next_ids(&mut rec, &tc, te.as_ref(), &tf, &ti, step).unwrap();
                rec.submit();
                let got = [tf.to_vec_u32().unwrap(), ti.to_vec_u32().unwrap()];
                let want = reference(&chosen, &eos, &finished, step);
                assert_eq!(
                    got, want,
                    "{rows} rows, eos {eos:?}, {step:?}: chosen {chosen:?}, finished {finished:?}"
                );
            }
        }
    }
}

#[test]
fn next_ids_refuses_mismatched_rows_and_aliased_outputs() {
    let gpu = gpu();
    let step = NextStep {
        pad: 0,
        forced: None,
        last: false,
    };
    let chosen = gpu.upload(&[1u32, 2, 3], &[3]).unwrap();
    let finished = gpu.upload(&[0u32; 3], &[3]).unwrap();
    let short = gpu.upload(&[0u32; 2], &[2]).unwrap();
    let mut rec = Recorder::new(gpu);
    let e = next_ids(&mut rec, &chosen, None, &finished, &short, step).unwrap_err();
    assert!(e.to_string().contains("ids [2]"), "{e}");
    let e = next_ids(&mut rec, &chosen, None, &finished, &finished, step).unwrap_err();
    assert!(
        e.to_string().contains("share a buffer with finished"),
        "{e}"
    );
    let e = next_ids(&mut rec, &chosen, None, &chosen, &finished, step).unwrap_err();
    assert!(e.to_string().contains("share a buffer with chosen"), "{e}");
}
