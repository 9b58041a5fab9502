//! Input mutations for the stable driver (`src/bin/drive.rs`), where libFuzzer's own
//! mutator is not available: random bytes, bit flips, byte edits, truncations, splices of
//! two seeds, and JSON-aware edits (numbers swapped for extreme values, values for other
//! types, brackets dropped), because most inputs here are JSON and a random byte flip
//! rarely gets past the parser.

use rand::Rng;
use rand::seq::IndexedRandom;

/// Values that stress what parsers and validators do with numbers and types.
const JSON_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e999",
    "-0.0",
    "0.5",
    "NaN",
    "null",
    "true",
    "[]",
    "[0]",
    "[[]]",
    "[0, 4294967296]",
    "{}",
    "\"\"",
    "\"marian\"",
    "\"t5\"",
    "\"whisper\"",
    "\"m2m_100\"",
    "\"vision-encoder-decoder\"",
    "\"../../etc/passwd\"",
    "\"/dev/zero\"",
    "\"model.safetensors\"",
];

/// Tokens for argument lists and id lists (the CLI target splits arguments on NUL).
const CLI_TOKENS: &[&str] = &[
    "generate",
    "score",
    "translate",
    "bench",
    "eval",
    "--input-ids",
    "--num-beams",
    "--max-new-tokens",
    "--length-penalty",
    "--forced-eos-token-id",
    "--batch-size",
    "--help",
    "-1",
    "0",
    "4294967296",
    "18446744073709551615",
    "NaN",
    "inf",
    "1e400",
    "5,17,,0",
    ",",
    "\u{0}",
    "=",
];

/// One mutated input from `seeds` (or pure random bytes now and then).
pub fn mutate(rng: &mut impl Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.random_ratio(1, 16) {
        let n = rng.random_range(0..256);
        return (0..n).map(|_| rng.random()).collect();
    }
    let mut data = seeds.choose(rng).cloned().unwrap_or_default();
    let edits = 1 + rng.random_range(0..4);
    for _ in 0..edits {
        edit(rng, seeds, &mut data);
    }
    data
}

fn edit(rng: &mut impl Rng, seeds: &[Vec<u8>], data: &mut Vec<u8>) {
    let len = data.len();
    match rng.random_range(0..10) {
        // Bit flip.
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            data[i] ^= 1 << rng.random_range(0..8);
        }
        // Random byte, or an interesting one.
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            data[i] = *[
                0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'}', b'[', b']', b',', b':',
            ]
            .choose(rng)
            .unwrap_or(&0);
        }
        // Truncate.
        2 if len > 0 => data.truncate(rng.random_range(0..len)),
        // Splice: our head, another seed's tail.
        3 => {
            let other = seeds.choose(rng).cloned().unwrap_or_default();
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..=other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // Delete or duplicate a range.
        4 if len > 1 => {
            let a = rng.random_range(0..len);
            let b = rng.random_range(a..=len.min(a + 64));
            if rng.random_bool(0.5) {
                data.drain(a..b);
            } else {
                let chunk = data[a..b].to_vec();
                data.splice(a..a, chunk);
            }
        }
        // Little-endian integer overwrite (safetensors' header length, protobuf varints).
        5 if len >= 8 => {
            let i = rng.random_range(0..=len - 8);
            let v: u64 = *[0, 1, u64::MAX, u32::MAX as u64, 1 << 40, rng.random()]
                .choose(rng)
                .unwrap_or(&0);
            data[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        // JSON: replace a value (after a ':' or inside a list) with an extreme one.
        6 | 7 => replace_json_value(rng, data),
        // Insert a CLI token (NUL separated) or a JSON value at a random point.
        8 => {
            let at = rng.random_range(0..=len);
            let mut tok = CLI_TOKENS.choose(rng).unwrap_or(&"").as_bytes().to_vec();
            tok.push(0);
            data.splice(at..at, tok);
        }
        _ => {
            let at = rng.random_range(0..=len);
            let v = JSON_VALUES.choose(rng).unwrap_or(&"0").as_bytes().to_vec();
            data.splice(at..at, v);
        }
    }
}

/// Replaces the JSON value that starts after a random ':' or '[' or ',' with another.
fn replace_json_value(rng: &mut impl Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b':' || b == b'[' || b == b',')
        .map(|(i, _)| i + 1)
        .collect();
    let Some(&start) = starts.choose(rng) else {
        return;
    };
    // The old value runs to the next ',', '}' or ']' at the same shallow level (roughly).
    let mut end = start;
    let mut depth = 0i32;
    let mut in_str = false;
    while end < data.len() {
        let b = data[end];
        match b {
            b'"' => in_str = !in_str,
            b'[' | b'{' if !in_str => depth += 1,
            b']' | b'}' if !in_str => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b',' if !in_str && depth == 0 => break,
            _ => {}
        }
        end += 1;
    }
    let v = JSON_VALUES.choose(rng).unwrap_or(&"0").as_bytes().to_vec();
    data.splice(start..end, v);
}
