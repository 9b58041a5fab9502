//! Sinusoidal position tables, computed on the host at load exactly as transformers does.
//! Their sizes come from config.json, so the table size is checked (not multiplied blindly)
//! before anything is allocated.

use crate::error::{Error, Result};

/// Elements of an `[n, dim]` table, or an error naming the sizes when that overflows or
/// exceeds `limits::POSITIONS` rows of `limits::WIDTH` columns.
fn table_len(what: &str, n: usize, dim: usize) -> Result<usize> {
    use crate::arch::limits::{POSITIONS, WIDTH};
    // +2: the learned and M2M100 tables have two rows beyond max_position_embeddings, and
    // M2M100's start after the padding row.
    let rows_max = POSITIONS + crate::arch::limits::VOCAB + 2;
    match n.checked_mul(dim) {
        Some(len) if n <= rows_max && dim <= WIDTH => Ok(len),
        _ => Err(Error::Input(format!(
            "{what}: a [{n}, {dim}] position table is beyond {rows_max} rows of {WIDTH} columns"
        ))),
    }
}

/// `MarianSinusoidalPositionalEmbedding.create_weight` (also Pegasus): `[n_pos, dim]`, row-major.
/// Angles in f64 (`pos / 10000^(2*(j//2)/dim)`), sin of the even j in the first
/// `ceil(dim/2)` columns, cos of the odd j after them, rounded to f32.
pub fn marian_sinusoidal(n_pos: usize, dim: usize) -> Result<Vec<f32>> {
    let sentinel = dim.div_ceil(2);
    let mut out = vec![0f32; table_len("sinusoidal positions", n_pos, dim)?];
    for pos in 0..n_pos {
        let angle = |j: usize| pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
        let row = &mut out[pos * dim..(pos + 1) * dim];
        for (c, v) in row.iter_mut().enumerate() {
            *v = if c < sentinel {
                angle(2 * c).sin() as f32
            } else {
                angle(2 * (c - sentinel) + 1).cos() as f32
            };
        }
    }
    Ok(out)
}

/// `M2M100SinusoidalPositionalEmbedding.get_embedding`: `[n, dim]` (n = max positions + 2),
/// tensor2tensor's layout (sin half, cos half, a zero column when dim is odd), computed in
/// f32 like torch, with row `padding_idx` zero.
pub fn m2m100_sinusoidal(n: usize, dim: usize, padding_idx: Option<usize>) -> Result<Vec<f32>> {
    let len = table_len("M2M100 sinusoidal positions", n, dim)?;
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut out = vec![0f32; len];
    for pos in 0..n {
        if Some(pos) == padding_idx {
            continue;
        }
        let row = &mut out[pos * dim..(pos + 1) * dim];
        for (i, &f) in freqs.iter().enumerate() {
            let a = (pos as f32 * f) as f64;
            row[i] = a.sin() as f32;
            row[half + i] = a.cos() as f32;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // values as printed by Python
mod tests {
    use super::*;

    // Reference values printed by transformers 5.24.0:
    // MarianSinusoidalPositionalEmbedding(10, 7).create_weight() and
    // M2M100SinusoidalPositionalEmbedding.get_embedding(1030, 16, 1) / (10, 7, 1).
    #[test]
    fn marian_matches_transformers() {
        let w = marian_sinusoidal(10, 7).unwrap();
        let at = |p: usize, c: usize| w[p * 7 + c];
        let want = [
            ((1, 0), 0.8414709568023682f32),
            ((3, 2), 0.015537798404693604),
            ((9, 3), 0.003354828106239438),
            ((9, 4), -0.9111302495002747),
            ((5, 6), 0.9996646642684937),
        ];
        for ((p, c), v) in want {
            assert!(
                (at(p, c) - v).abs() <= 1e-7,
                "({p},{c}): {} vs {v}",
                at(p, c)
            );
        }
    }

    /// Sizes from config.json that overflow (2^62 rows once panicked here) are errors.
    #[test]
    fn huge_tables_are_errors_not_panics() {
        for (n, dim) in [
            (1usize << 62, 16),
            (16, 1 << 62),
            (usize::MAX, 2),
            (1 << 30, 512),
        ] {
            let e = marian_sinusoidal(n, dim).unwrap_err().to_string();
            assert!(e.contains(&format!("[{n}, {dim}]")), "{e}");
            let e = m2m100_sinusoidal(n, dim, Some(1)).unwrap_err().to_string();
            assert!(e.contains("M2M100"), "{e}");
        }
    }

    #[test]
    fn m2m100_matches_transformers() {
        let w = m2m100_sinusoidal(1030, 16, Some(1)).unwrap();
        let at = |p: usize, c: usize| w[p * 16 + c];
        let want = [
            ((0, 0), 0.0f32),
            ((1, 3), 0.0),
            ((2, 0), 0.9092974066734314),
            ((2, 8), -0.416146844625473),
            ((1029, 5), 0.9900752305984497),
            ((1029, 13), 0.1405385583639145),
            ((700, 7), 0.06994283944368362),
        ];
        for ((p, c), v) in want {
            assert!(
                (at(p, c) - v).abs() <= 2e-7,
                "({p},{c}): {} vs {v}",
                at(p, c)
            );
        }
        let odd = m2m100_sinusoidal(10, 7, Some(1)).unwrap();
        let want3 = [
            0.14112000167369843f32,
            0.029995499178767204,
            0.0002999999560415745,
            -0.9899924993515015,
            0.9995500445365906,
            0.9999999403953552,
            0.0,
        ];
        for (c, v) in want3.iter().enumerate() {
            assert!((odd[3 * 7 + c] - v).abs() <= 2e-7, "odd dim col {c}");
        }
    }
}
