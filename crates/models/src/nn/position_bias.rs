//! T5's relative position bias: a learned scalar per head and bucket of `key - query`,
//! added to the attention scores. The buckets depend only on the relative position and stop
//! changing past `max_distance`, so the load step turns the `[buckets, H]` table into one of
//! `[H, 2M+1]` indexed by the clamped relative position (M = max_distance), and a kernel
//! expands it into the `[1, H, Q, K]` bias of each call or decode step, on the GPU.

use seqbridge_gpu::ops::position_bias::relative_position_bias;
use seqbridge_gpu::{Recorder, Tensor};

use crate::error::{Error, Result};
use crate::io::Vars;
use crate::nn::Loader;

/// `relative_attention_bias` of one T5 attention stack, ready to expand.
pub struct RelativePositionBias {
    /// f32 `[H, 2M+1]`: head h's bias for relative position r ∈ [-M, M] at column r + M.
    pub table: Tensor,
    pub heads: usize,
    pub max_distance: usize,
}

/// transformers' `T5Attention._relative_position_bucket` for one relative position
/// (`key - query`), in the same f32 arithmetic.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let n = if bidirectional {
        buckets /= 2;
        if relative_position > 0 {
            bucket += buckets;
        }
        relative_position.abs()
    } else {
        (-relative_position).max(0)
    };
    let max_exact = buckets / 2;
    if n < max_exact {
        return (bucket + n) as usize;
    }
    let ratio = (n as f32 / max_exact as f32).ln()
        / ((max_distance as f64 / max_exact as f64).ln() as f32)
        * (buckets - max_exact) as f32;
    let large = (max_exact + ratio as i64).min(buckets - 1);
    (bucket + large) as usize
}

impl RelativePositionBias {
    /// Loads `{name}.weight` `[num_buckets, heads]` and tabulates it per relative position.
    pub fn load(
        ld: &Loader,
        vars: &Vars,
        name: &str,
        (num_buckets, heads, max_distance): (usize, usize, usize),
        bidirectional: bool,
    ) -> Result<RelativePositionBias> {
        let min_buckets = if bidirectional { 4 } else { 2 };
        if num_buckets < min_buckets || max_distance == 0 {
            return Err(Error::Input(format!(
                "{}: relative_attention_num_buckets {num_buckets} must be at least {min_buckets} and relative_attention_max_distance {max_distance} positive",
                vars.key(name)
            )));
        }
        let w = vars.pp(name).f32("weight", &[num_buckets, heads])?;
        let m = max_distance as i64;
        let width = 2 * max_distance + 1;
        let mut table = vec![0f32; heads * width];
        for r in -m..=m {
            let b = relative_position_bucket(r, bidirectional, num_buckets, max_distance);
            for h in 0..heads {
                table[h * width + (r + m) as usize] = w[b * heads + h];
            }
        }
        Ok(RelativePositionBias {
            table: ld.upload_f32(&table, &[heads, width])?,
            heads,
            max_distance,
        })
    }

    /// Writes the bias of queries at positions `q_offset .. q_offset + q_len` over keys
    /// `0 .. kv_len` into `out` f32 `[H, q_len, kv_len]`.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        q_offset: usize,
        q_len: usize,
        kv_len: usize,
        out: &Tensor,
    ) -> Result<()> {
        relative_position_bias(
            rec,
            &self.table,
            self.max_distance,
            q_offset,
            q_len,
            kv_len,
            out,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the bucket changes over relative positions -200..=200, as printed by
    /// transformers 5.24's `T5Attention._relative_position_bucket`: (first r, bucket).
    /// (bidirectional, buckets, max_distance, change points).
    type Case = (bool, usize, usize, &'static [(i64, usize)]);
    #[rustfmt::skip]
    const WANT: [Case; 4] = [
        (true, 32, 128, &[(-200, 15), (-90, 14), (-63, 13), (-45, 12), (-31, 11), (-22, 10), (-15, 9), (-11, 8), (-7, 7), (-6, 6), (-5, 5), (-4, 4), (-3, 3), (-2, 2), (-1, 1), (0, 0), (1, 17), (2, 18), (3, 19), (4, 20), (5, 21), (6, 22), (7, 23), (8, 24), (12, 25), (16, 26), (23, 27), (32, 28), (46, 29), (64, 30), (91, 31)]),
        (false, 32, 128, &[(-200, 31), (-112, 30), (-98, 29), (-86, 28), (-76, 27), (-66, 26), (-58, 25), (-51, 24), (-45, 23), (-39, 22), (-34, 21), (-30, 20), (-26, 19), (-23, 18), (-20, 17), (-18, 16), (-15, 15), (-14, 14), (-13, 13), (-12, 12), (-11, 11), (-10, 10), (-9, 9), (-8, 8), (-7, 7), (-6, 6), (-5, 5), (-4, 4), (-3, 3), (-2, 2), (-1, 1), (0, 0)]),
        (true, 16, 20, &[(-200, 7), (-13, 6), (-8, 5), (-5, 4), (-3, 3), (-2, 2), (-1, 1), (0, 0), (1, 9), (2, 10), (3, 11), (4, 12), (6, 13), (9, 14), (14, 15)]),
        (false, 16, 20, &[(-200, 15), (-17, 14), (-15, 13), (-14, 12), (-12, 11), (-11, 10), (-10, 9), (-8, 8), (-7, 7), (-6, 6), (-5, 5), (-4, 4), (-3, 3), (-2, 2), (-1, 1), (0, 0)]),
    ];

    #[test]
    fn buckets_match_transformers() {
        for (bidirectional, buckets, max_distance, changes) in WANT {
            for r in -200i64..=200 {
                let want = changes.iter().rev().find(|(from, _)| *from <= r).unwrap().1;
                let got = relative_position_bucket(r, bidirectional, buckets, max_distance);
                assert_eq!(
                    got, want,
                    "r {r}, bidirectional {bidirectional}, {buckets} buckets, max_distance {max_distance}"
                );
            }
        }
    }
}
