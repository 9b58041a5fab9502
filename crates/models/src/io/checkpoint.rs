//! Checkpoint reading: one `model.safetensors` or a sharded `model.safetensors.index.json`,
//! f32 / f16 / bf16 tensors, the older key spellings of published checkpoints, and a prefix
//! builder ([`Vars`]) whose errors name the exact key, shape and file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::ctranslate2::{self, ModelBin};
use super::words;
use crate::error::{Error, Result};

/// One tensor's place in a checkpoint file.
#[derive(Clone, Debug)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range inside the file.
    start: usize,
    end: usize,
}

struct ShardFile {
    path: PathBuf,
    /// The whole file, memory-mapped: tensors are converted straight from the page cache and
    /// never held twice in RAM.
    bytes: Mmap,
}

/// How weights are stored on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightDtype {
    /// f16 checkpoints stay f16; f32 and bf16 (exactly) become f32.
    #[default]
    Auto,
    F32,
    F16,
}

/// Host copy of one matrix, in its GPU storage dtype.
#[derive(Clone, Debug)]
pub enum HostData {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl HostData {
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends `other` (same dtype, or widened to f32).
    pub fn extend(&mut self, other: HostData) {
        match (self, other) {
            (HostData::F32(a), HostData::F32(b)) => a.extend(b),
            (HostData::F16(a), HostData::F16(b)) => a.extend(b),
            (HostData::F32(a), HostData::F16(b)) => a.extend(b.iter().map(|x| x.to_f32())),
            (s @ HostData::F16(_), HostData::F32(b)) => {
                let mut v = s.to_f32();
                v.extend(b);
                *s = HostData::F32(v);
            }
        }
    }
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v.clone(),
            HostData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        }
    }
    /// The first element that is NaN or infinite: (index, value), `None` when all are
    /// finite. One pass over data that was just converted, so it costs little at load.
    pub fn first_non_finite(&self) -> Option<(usize, f32)> {
        match self {
            HostData::F32(v) => v.iter().copied().enumerate().find(|(_, x)| !x.is_finite()),
            HostData::F16(v) => v
                .iter()
                .enumerate()
                .find(|(_, x)| !x.is_finite())
                .map(|(i, x)| (i, x.to_f32())),
        }
    }

    /// Elements `start .. start + n`; `None` when they are not all inside.
    pub fn slice(&self, start: usize, n: usize) -> Option<HostData> {
        let range = start..start.checked_add(n)?;
        Some(match self {
            HostData::F32(v) => HostData::F32(v.get(range)?.to_vec()),
            HostData::F16(v) => HostData::F16(v.get(range)?.to_vec()),
        })
    }
}

/// How a run of little-endian floats is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatBytes {
    F32,
    F16,
    Bf16,
}

/// Converts little-endian floats (`bytes.len()` a multiple of the element size) to the storage
/// dtype: f16 stays f16 unless f32 is asked for, f32 and bf16 become f32 unless f16 is.
pub(crate) fn convert_floats(bytes: &[u8], kind: FloatBytes, dtype: WeightDtype) -> HostData {
    let f32s = |b: &[u8]| -> Vec<f32> { words(b).map(f32::from_le_bytes).collect() };
    let halves = |b: &[u8]| -> Vec<u16> { words(b).map(u16::from_le_bytes).collect() };
    match (kind, dtype) {
        (FloatBytes::F32, WeightDtype::F16) => {
            HostData::F16(f32s(bytes).into_iter().map(f16::from_f32).collect())
        }
        (FloatBytes::F32, _) => HostData::F32(f32s(bytes)),
        (FloatBytes::F16, WeightDtype::F32) => HostData::F32(
            halves(bytes)
                .into_iter()
                .map(|h| f16::from_bits(h).to_f32())
                .collect(),
        ),
        (FloatBytes::F16, _) => {
            HostData::F16(halves(bytes).into_iter().map(f16::from_bits).collect())
        }
        (FloatBytes::Bf16, WeightDtype::F16) => HostData::F16(
            halves(bytes)
                .into_iter()
                .map(|h| f16::from_f32(bf16::from_bits(h).to_f32()))
                .collect(),
        ),
        (FloatBytes::Bf16, _) => HostData::F32(
            halves(bytes)
                .into_iter()
                .map(|h| bf16::from_bits(h).to_f32())
                .collect(),
        ),
    }
}

/// The tensors of a model directory, memory-mapped.
pub struct Checkpoint {
    files: Vec<ShardFile>,
    index: HashMap<String, Entry>,
    /// Set for a checkpoint of random weights made on the fly (benchmarks).
    random: Option<RandomWeights>,
    /// Set for a CTranslate2 directory (`model.bin`), which answers every lookup.
    ct2: Option<ModelBin>,
}

/// Weights drawn on demand for any key and shape: uniform with the std of transformers'
/// `init_std`, layer norms at weight 1 and bias 0, seeded per key so they are reproducible.
#[derive(Clone, Copy, Debug)]
struct RandomWeights {
    seed: u64,
    std: f32,
}

/// SplitMix64: a small, fast, well-mixed generator for reproducible random weights.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RandomWeights {
    fn values(&self, key: &str, n: usize) -> Vec<f32> {
        let norm = key.contains("layer_norm") || key.contains("layernorm");
        if norm && key.ends_with(".weight") {
            return vec![1.0; n];
        }
        if norm && key.ends_with(".bias") {
            return vec![0.0; n];
        }
        let mut state = key.bytes().fold(self.seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        // Uniform on [-a, a) has std a/sqrt(3).
        let a = self.std * 3f32.sqrt();
        (0..n)
            .map(|_| {
                let u = (splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * u - 1.0) * a
            })
            .collect()
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

impl Checkpoint {
    /// Opens `dir/model.safetensors`, or the shards listed by `dir/model.safetensors.index.json`,
    /// or, when neither is there, a CTranslate2 `dir/model.bin` ([`Checkpoint::open_ctranslate2`]).
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let paths: Vec<PathBuf> = if single.exists() {
            vec![super::paths::inside(dir, "model.safetensors", &single)?]
        } else if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| io_err(&index_path, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::Safetensors {
                    path: index_path.clone(),
                    msg: format!("invalid index JSON: {e}"),
                })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::Safetensors {
                    path: index_path.clone(),
                    msg: "no weight_map object".into(),
                })?;
            let mut files: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            files.sort();
            files.dedup();
            files
                .iter()
                .map(|f| super::paths::inside(dir, f, &index_path))
                .collect::<Result<_>>()?
        } else if dir.join(ctranslate2::MODEL_FILE).exists() {
            return Checkpoint::open_ctranslate2(dir);
        } else {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                msg: "no model.safetensors, model.safetensors.index.json or (CTranslate2) \
                      model.bin in this directory"
                    .into(),
            });
        };
        let mut ck = Checkpoint {
            files: Vec::new(),
            index: HashMap::new(),
            random: None,
            ct2: None,
        };
        for path in paths {
            let file = std::fs::File::open(&path).map_err(|e| io_err(&path, e))?;
            // SAFETY: the map is read-only and private to this process. A checkpoint modified
            // by another process while loading is outside what any loader can defend against;
            // every offset read below is checked against the mapped length.
            let bytes = unsafe { Mmap::map(&file) }.map_err(|e| io_err(&path, e))?;
            let (n, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Safetensors {
                path: path.clone(),
                msg: format!(
                    "{e:?} (truncated or corrupt; {} bytes on disk)",
                    bytes.len()
                ),
            })?;
            let base = 8 + n;
            let file = ck.files.len();
            for (name, info) in meta.tensors() {
                ck.index.insert(
                    name,
                    Entry {
                        file,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start: base + info.data_offsets.0,
                        end: base + info.data_offsets.1,
                    },
                );
            }
            ck.files.push(ShardFile { path, bytes });
        }
        Ok(ck)
    }

    /// A checkpoint whose every tensor is drawn on demand (benchmarks on built-in shapes):
    /// uniform weights of standard deviation `std`, layer norms at 1 and 0. Position tables
    /// are absent, so sinusoidal ones are computed as for a real checkpoint.
    pub fn random(seed: u64, std: f32) -> Checkpoint {
        Checkpoint {
            files: Vec::new(),
            index: HashMap::new(),
            random: Some(RandomWeights { seed, std }),
            ct2: None,
        }
    }

    /// Opens the CTranslate2 model `dir/model.bin`, memory-mapped. Keys are its own variable
    /// names (`encoder/conv1/weight`, or with `.` for `/`) and, for a `WhisperSpec` model, the
    /// Hugging Face Whisper names, split out of CTranslate2's fused tensors (see
    /// [`ctranslate2`]).
    pub fn open_ctranslate2(dir: &Path) -> Result<Checkpoint> {
        Ok(Checkpoint {
            files: Vec::new(),
            index: HashMap::new(),
            random: None,
            ct2: Some(ModelBin::open(&super::paths::inside(
                dir,
                ctranslate2::MODEL_FILE,
                &dir.join(ctranslate2::MODEL_FILE),
            )?)?),
        })
    }

    /// The CTranslate2 model behind this checkpoint, when it is one (its spec, attributes,
    /// variables and aliases).
    pub fn ctranslate2(&self) -> Option<&ModelBin> {
        self.ct2.as_ref()
    }

    /// The stored key for `key`, trying the spellings of older checkpoints: with or without
    /// the `model.` prefix.
    fn resolve(&self, key: &str) -> Option<(&str, &Entry)> {
        let stripped = key.strip_prefix("model.");
        let prefixed = format!("model.{key}");
        [Some(key), stripped, Some(prefixed.as_str())]
            .into_iter()
            .flatten()
            .find_map(|k| self.index.get_key_value(k).map(|(k, e)| (k.as_str(), e)))
    }

    /// Whether the weights are drawn on demand (every key but position tables exists).
    pub fn is_random(&self) -> bool {
        self.random.is_some()
    }

    /// Whether the checkpoint has `key` (in any spelling).
    pub fn contains(&self, key: &str) -> bool {
        if self.random.is_some() {
            return !key.contains("embed_positions");
        }
        if let Some(m) = &self.ct2 {
            return m.contains(key);
        }
        self.resolve(key).is_some()
    }

    /// Names of the files read, for error messages.
    pub fn file_names(&self) -> String {
        if self.random.is_some() {
            return "random weights".into();
        }
        if let Some(m) = &self.ct2 {
            return m.describe();
        }
        self.files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The tensor `key`, checked against `shape`, converted to the storage dtype, with every
    /// value finite: a NaN or an infinity in a weight (or one made by narrowing f32 to f16)
    /// would otherwise run, and print garbage.
    pub fn load(&self, key: &str, shape: &[usize], dtype: WeightDtype) -> Result<HostData> {
        let data = self.load_unchecked(key, shape, dtype)?;
        if let Some((i, x)) = data.first_non_finite() {
            let narrowed = if dtype == WeightDtype::F16 {
                " (after conversion to f16)"
            } else {
                ""
            };
            let files = match self.resolve(key).and_then(|(_, e)| self.files.get(e.file)) {
                Some(f) if self.ct2.is_none() => f.path.display().to_string(),
                _ => self.file_names(),
            };
            return Err(Error::TensorValues {
                key: key.to_string(),
                files,
                msg: format!("element {i} of shape {shape:?} is {x}{narrowed}"),
            });
        }
        Ok(data)
    }

    fn load_unchecked(&self, key: &str, shape: &[usize], dtype: WeightDtype) -> Result<HostData> {
        if let Some(r) = &self.random {
            let v = r.values(key, shape.iter().product());
            return Ok(match dtype {
                WeightDtype::F16 => HostData::F16(v.into_iter().map(f16::from_f32).collect()),
                _ => HostData::F32(v),
            });
        }
        if let Some(m) = &self.ct2 {
            return m.load(key, shape, dtype);
        }
        let (_, e) = self.resolve(key).ok_or_else(|| Error::MissingTensor {
            key: key.to_string(),
            files: self.file_names(),
        })?;
        // `e.file` was pushed with its entries in `open`, so this lookup finds it.
        let shard = self.files.get(e.file).ok_or_else(|| Error::MissingTensor {
            key: key.to_string(),
            files: self.file_names(),
        })?;
        let path = &shard.path;
        if e.shape != shape {
            return Err(Error::TensorShape {
                key: key.to_string(),
                path: path.clone(),
                got: e.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        let bytes = shard
            .bytes
            .get(e.start..e.end)
            .ok_or_else(|| Error::Safetensors {
                path: path.clone(),
                msg: format!(
                    "tensor {key} at bytes {}..{} lies outside the file ({} bytes)",
                    e.start,
                    e.end,
                    shard.bytes.len()
                ),
            })?;
        let n: usize = shape.iter().product();
        let dtype_err = || Error::TensorDtype {
            key: key.to_string(),
            path: path.clone(),
            dtype: format!("{:?}", e.dtype),
        };
        let (elem, kind) = match e.dtype {
            Dtype::F32 => (4, FloatBytes::F32),
            Dtype::F16 => (2, FloatBytes::F16),
            Dtype::BF16 => (2, FloatBytes::Bf16),
            _ => return Err(dtype_err()),
        };
        if bytes.len() != n * elem {
            return Err(Error::Safetensors {
                path: path.clone(),
                msg: format!(
                    "tensor {key} holds {} bytes for shape {shape:?}",
                    bytes.len()
                ),
            });
        }
        Ok(convert_floats(bytes, kind, dtype))
    }

    /// The tensor `key` as f32 (norms, biases, position tables).
    pub fn load_f32(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(match self.load(key, shape, WeightDtype::F32)? {
            HostData::F32(v) => v,
            HostData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        })
    }
}

/// A prefix builder over a checkpoint: `vars.pp("encoder").pp("layers.0").matrix("fc1.weight", ..)`.
/// Errors name the full key, the expected and found shapes, and the file.
pub struct Vars<'a> {
    ckpt: &'a Checkpoint,
    prefix: String,
    dtype: WeightDtype,
}

impl<'a> Vars<'a> {
    pub fn root(ckpt: &'a Checkpoint, dtype: WeightDtype) -> Vars<'a> {
        Vars {
            ckpt,
            prefix: String::new(),
            dtype,
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<'a> Vars<'a> {
    pub fn pp(&self, name: &str) -> Vars<'a> {
        Vars {
            ckpt: self.ckpt,
            prefix: join(&self.prefix, name),
            dtype: self.dtype,
        }
    }
    /// The full key of `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        join(&self.prefix, name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.ckpt.contains(&self.key(name))
    }
    /// Whether the checkpoint's weights are random (benchmarks on built-in shapes).
    pub fn is_random(&self) -> bool {
        self.ckpt.is_random()
    }
    /// A matrix in the storage dtype.
    pub fn matrix(&self, name: &str, shape: &[usize]) -> Result<HostData> {
        self.ckpt.load(&self.key(name), shape, self.dtype)
    }
    /// A vector or table in f32.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.ckpt.load_f32(&self.key(name), shape)
    }
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write(dir: &Path, file: &str, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(file)).unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("seqbridge-weights-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn dtypes_convert_and_keys_resolve() {
        let d = tmp("dtypes");
        let f32b: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f16b: Vec<u8> = [f16::from_f32(0.5), f16::from_f32(-3.0)]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bf16b: Vec<u8> = [bf16::from_f32(1.0), bf16::from_f32(-0.25)]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        write(
            &d,
            "model.safetensors",
            &[
                ("model.a", Dtype::F32, vec![2], f32b),
                ("b", Dtype::F16, vec![2], f16b),
                ("model.c", Dtype::BF16, vec![1, 2], bf16b),
            ],
        );
        let ck = Checkpoint::open(&d).unwrap();
        assert_eq!(ck.load_f32("a", &[2]).unwrap(), vec![1.5, -2.0]);
        assert_eq!(ck.load_f32("model.b", &[2]).unwrap(), vec![0.5, -3.0]);
        assert!(matches!(
            ck.load("b", &[2], WeightDtype::Auto).unwrap(),
            HostData::F16(_)
        ));
        assert_eq!(
            ck.load("model.c", &[1, 2], WeightDtype::Auto)
                .unwrap()
                .to_f32(),
            vec![1.0, -0.25]
        );
        let e = ck
            .load("model.c", &[2, 1], WeightDtype::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.c")
                && e.contains("[1, 2]")
                && e.contains("[2, 1]")
                && e.contains("model.safetensors"),
            "{e}"
        );
        let e = ck
            .load("model.zz", &[1], WeightDtype::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing tensor model.zz"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn slices_outside_host_data_are_none() {
        let f32s = HostData::F32(vec![1.0, 2.0, 3.0]);
        let f16s = HostData::F16([1.0, 2.0, 3.0].map(f16::from_f32).to_vec());
        for d in [&f32s, &f16s] {
            assert_eq!(d.slice(1, 2).map(|s| s.to_f32()), Some(vec![2.0, 3.0]));
            assert_eq!(d.slice(3, 0).map(|s| s.len()), Some(0));
            for (start, n) in [(2, 2), (4, 0), (usize::MAX, 2)] {
                assert!(d.slice(start, n).is_none(), "{start}+{n}");
            }
        }
    }

    #[test]
    fn sharded_and_truncated() {
        let d = tmp("shards");
        let b: Vec<u8> = 7.0f32.to_le_bytes().to_vec();
        write(
            &d,
            "a.safetensors",
            &[("x", Dtype::F32, vec![1], b.clone())],
        );
        write(&d, "b.safetensors", &[("y", Dtype::F32, vec![1], b)]);
        std::fs::write(
            d.join("model.safetensors.index.json"),
            r#"{"metadata": {}, "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}"#,
        )
        .unwrap();
        let ck = Checkpoint::open(&d).unwrap();
        assert_eq!(ck.load_f32("y", &[1]).unwrap(), vec![7.0]);
        let bytes = std::fs::read(d.join("b.safetensors")).unwrap();
        std::fs::write(d.join("b.safetensors"), &bytes[..bytes.len() - 2]).unwrap();
        let e = Checkpoint::open(&d).err().unwrap().to_string();
        assert!(
            e.contains("b.safetensors") && e.contains("not a valid safetensors"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
