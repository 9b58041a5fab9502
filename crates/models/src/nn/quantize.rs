//! Weight-only int8: linear weights stored as int8 with one f32 scale per output row
//! (symmetric, scale = max |w| / 127), dequantized inside the matmul kernels. Activations,
//! norms, biases and embeddings keep their float dtype.

/// How [`crate::LoadOptions`] stores linear layers' weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// Linear weights in the weight dtype (f32 or f16).
    #[default]
    None,
    /// Linear weights as int8 with per-output-row scales; a layer whose input width is not a
    /// multiple of 4 (four weights share one GPU word) keeps the weight dtype.
    Int8,
    /// The values `Int8` stores, dequantized on the host and stored as f32: `Int8`'s
    /// numerics without its kernels, which tests compare it with.
    #[doc(hidden)]
    Int8Dequantized,
}

/// `int8_rows` and back: each value replaced by `q · scale`.
pub fn dequantized_rows(values: &[f32], cols: usize) -> Vec<f32> {
    let (q, scales) = int8_rows(values, cols);
    q.iter()
        .zip(
            scales
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, cols.max(1))),
        )
        .map(|(&q, s)| f32::from(q) * s)
        .collect()
}

/// Quantizes a `[rows, cols]` row-major matrix row by row: (q, scales) with
/// `q[r·cols + c] · scales[r] ≈ values[r·cols + c]`, |error| ≤ scales[r] / 2. An all-zero row
/// gets scale 1 (any scale reproduces it exactly).
pub fn int8_rows(values: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = cols.max(1);
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / cols);
    for row in values.chunks(cols) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        // |v / scale| ≤ 127 up to rounding; the clamp keeps a rounding excess in range.
        q.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_within_half_a_step() {
        let values: Vec<f32> = (0..60)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173)
            .collect();
        let (q, s) = int8_rows(&values, 12);
        assert_eq!((q.len(), s.len()), (60, 5));
        for (i, v) in values.iter().enumerate() {
            let back = f32::from(q[i]) * s[i / 12];
            assert!(
                (back - v).abs() <= s[i / 12] / 2.0 + 1e-7,
                "{i}: {v} → {back}"
            );
        }
        // Each row's largest magnitude maps to ±127 exactly.
        for (r, row) in q.chunks(12).enumerate() {
            let top = row.iter().map(|x| x.unsigned_abs()).max();
            assert_eq!(top, Some(127), "row {r}");
        }
    }

    #[test]
    fn zero_rows_and_lone_values() {
        let (q, s) = int8_rows(&[0.0, 0.0, 0.0, 0.0, -2.5, 0.0, 0.0, 0.0], 4);
        assert_eq!(q, [0, 0, 0, 0, -127, 0, 0, 0]);
        assert_eq!(s, [1.0, 2.5 / 127.0]);
    }
}
