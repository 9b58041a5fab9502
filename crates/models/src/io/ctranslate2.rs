//! CTranslate2 checkpoints: the `model.bin` of a converted model directory, memory-mapped
//! and checked, and the Hugging Face Whisper names mapped onto CTranslate2's Whisper
//! variables, split out of its fused tensors. [`Checkpoint::open`](super::Checkpoint::open)
//! opens such a directory when it finds `model.bin` and no safetensors, so `Checkpoint::load`
//! and [`Vars`](super::Vars) read it like any other checkpoint.
//!
//! # The `model.bin` layout
//!
//! One flat little-endian file without padding or alignment: a header, the variables with
//! their data inline, then the aliases. What each binary version has:
//!
//! | field | encoding | versions |
//! |---|---|---|
//! | binary version | u32 | all (1 to 6 are read) |
//! | spec name, e.g. `WhisperSpec` | string | ≥ 2 |
//! | spec revision | u32 | ≥ 2 (taken as 1 before) |
//! | number of variables | u32 | all |
//! | *each variable:* name | string | all |
//! | rank, then the dimensions | u8, then rank × u32 | all |
//! | dtype id, then the data size in bytes | u8 (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16), u32 | ≥ 4 |
//! | item size, then the element count | u8 (4 → float32, 2 → int16, 1 → int8), u32 | ≤ 3 |
//! | data | that many bytes, row-major, little-endian | all |
//! | number of aliases | u32 | ≥ 3 |
//! | *each alias:* its name, the variable it names | string, string | ≥ 3 |
//!
//! A string is a u16 byte count, which includes a closing NUL, then the bytes (UTF-8; the
//! text ends at the first NUL). Versions 4, 5 and 6 share one layout. Before version 4 the
//! item size stood for the dtype, so a float16 tensor of such a file reads as int16, as it
//! does in CTranslate2 itself. Converters write the variables sorted by name.
//!
//! Every count, length and offset is checked against the file size before anything is
//! sliced or allocated, and each variable's byte size must equal its shape times its dtype's
//! width; a truncated or corrupt file is an [`Error::Ctranslate2`] naming the file and the
//! byte offset of the bad field. Trailing bytes after the alias table are only logged, as
//! CTranslate2 ignores them.
//!
//! What else a `model.bin` holds:
//!
//! - **Attributes.** Configuration is stored as variables too: rank-0 integers
//!   (`decoder/num_heads` int16, flags such as `decoder/pre_norm` int8,
//!   `decoder/activation` int8 where 3 is GELU) and strings as int8 vectors of UTF-8 bytes.
//!   [`ModelBin::attribute`] reads them.
//! - **Quantization.** An int8 weight `X` comes with a float vector `X_scale`, one entry per
//!   row, and reads back as `q / X_scale[row]`; an int16 weight with a scalar `X_scale`
//!   (1000 when absent, CTranslate2's old global scale). Both load as f32 (or f16 when asked).
//! - **Aliases.** When two variables hold equal values the converter keeps the
//!   alphabetically first and stores the others as aliases of it; an alias's `_scale` is its
//!   target's. Whisper has one: `decoder/projection/weight` names `decoder/embeddings/weight`
//!   (the tied output projection).
//!
//! The vocabulary and CTranslate2's own `config.json` (for Whisper: `suppress_ids`,
//! `suppress_ids_begin`, `lang_ids`, `alignment_heads`) are files beside `model.bin`, read by
//! [`vocabulary`] and [`config`]; the binary versions read here hold neither.
//!
//! # Names
//!
//! A key is looked up as a CTranslate2 name first (`encoder/conv1/weight`; `.` is read as `/`,
//! so `Vars::pp`, which joins with `.`, works on CTranslate2 names as well), through the
//! aliases. For a `WhisperSpec` model a key that is not a CTranslate2 name is then read as a
//! Hugging Face `WhisperForConditionalGeneration` name (with or without the `model.` prefix),
//! mapped as follows, `E` standing for `model.encoder.layers.{i}` ↔ `encoder/layer_{i}` and
//! `D` for `model.decoder.layers.{i}` ↔ `decoder/layer_{i}`; `d` is d_model:
//!
//! | Hugging Face | CTranslate2 | part taken |
//! |---|---|---|
//! | `model.encoder.conv1.{weight,bias}` `[d, n_mels, 3]`, `conv2` `[d, d, 3]` | `encoder/conv1/…`, `encoder/conv2/…` (same layout) | all |
//! | `model.encoder.embed_positions.weight` `[1500, d]` | `encoder/position_encodings/encodings` | all |
//! | `E.self_attn.q_proj.{weight,bias}` | `E/self_attention/linear_0/{weight,bias}`, fused `[3d, d]`, `[3d]` | rows `0..d` |
//! | `E.self_attn.k_proj.weight` (no bias in HF) | the same fused QKV | rows `d..2d` |
//! | `E.self_attn.v_proj.{weight,bias}` | the same fused QKV | rows `2d..3d` |
//! | `E.self_attn.out_proj.{weight,bias}` | `E/self_attention/linear_1/…` | all |
//! | `E.self_attn_layer_norm.{weight,bias}` | `E/self_attention/layer_norm/{gamma,beta}` | all |
//! | `E.fc1.…`, `E.fc2.…` | `E/ffn/linear_0/…`, `E/ffn/linear_1/…` | all |
//! | `E.final_layer_norm.{weight,bias}` | `E/ffn/layer_norm/{gamma,beta}` | all |
//! | `model.encoder.layer_norm.{weight,bias}` | `encoder/layer_norm/{gamma,beta}` | all |
//! | `model.decoder.embed_tokens.weight` `[vocab, d]` | `decoder/embeddings/weight` | all |
//! | `model.decoder.embed_positions.weight` `[448, d]` | `decoder/position_encodings/encodings` | all |
//! | `D.self_attn.…`, `D.self_attn_layer_norm.…` | `D/self_attention/…`, as in the encoder (fused QKV) | as above |
//! | `D.encoder_attn.q_proj.{weight,bias}` | `D/attention/linear_0/…` | all |
//! | `D.encoder_attn.k_proj.weight` (no bias in HF) | `D/attention/linear_1/weight`, fused KV `[2d, d]` | rows `0..d` |
//! | `D.encoder_attn.v_proj.{weight,bias}` | `D/attention/linear_1/{weight,bias}`, `[2d, d]`, `[2d]` | rows `d..2d` |
//! | `D.encoder_attn.out_proj.…` | `D/attention/linear_2/…` | all |
//! | `D.encoder_attn_layer_norm.…` | `D/attention/layer_norm/{gamma,beta}` | all |
//! | `D.fc1`, `D.fc2`, `D.final_layer_norm` | `D/ffn/linear_0`, `D/ffn/linear_1`, `D/ffn/layer_norm` | all |
//! | `model.decoder.layer_norm.{weight,bias}` | `decoder/layer_norm/{gamma,beta}` | all |
//! | `proj_out.weight` | `decoder/projection/weight` (an alias of `decoder/embeddings/weight`) | all |
//!
//! So exactly two tensors per attention block are fused: self-attention's Q, K and V
//! (weights and biases stacked along the output rows, in that order) and cross-attention's
//! K and V (stacked the same way). Hugging Face's Whisper has no K bias; CTranslate2's
//! converter fills those rows of the fused biases with zeros, and `*.k_proj.bias` stays
//! absent here as in the Hugging Face state dict. A loader that fuses Q/K/V itself can ask
//! for the CTranslate2 name and skip the split and re-stack.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::checkpoint::{FloatBytes, HostData, WeightDtype, convert_floats};
use crate::error::{Error, Result};

/// The file name of a CTranslate2 model inside its directory.
pub const MODEL_FILE: &str = "model.bin";

/// The newest binary version this reader understands.
pub const MAX_BINARY_VERSION: u32 = 6;

/// The spec whose variables get Hugging Face names.
const WHISPER_SPEC: &str = "WhisperSpec";

/// CTranslate2's scale for int16 weights saved without one.
const GLOBAL_INT16_SCALE: f32 = 1000.0;

/// How many alias hops a lookup follows before calling it a cycle.
const MAX_ALIAS_HOPS: usize = 16;

/// A variable's storage type, numbered as in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Ct2Dtype> {
        Some(match id {
            0 => Ct2Dtype::F32,
            1 => Ct2Dtype::I8,
            2 => Ct2Dtype::I16,
            3 => Ct2Dtype::I32,
            4 => Ct2Dtype::F16,
            5 => Ct2Dtype::Bf16,
            _ => return None,
        })
    }

    /// The pre-version-4 reading of an item size.
    fn from_item_size(size: u8) -> Option<Ct2Dtype> {
        Some(match size {
            4 => Ct2Dtype::F32,
            2 => Ct2Dtype::I16,
            1 => Ct2Dtype::I8,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 | Ct2Dtype::F16 | Ct2Dtype::Bf16 => 2,
            Ct2Dtype::F32 | Ct2Dtype::I32 => 4,
        }
    }

    /// CTranslate2's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Ct2Dtype::F32 => "float32",
            Ct2Dtype::I8 => "int8",
            Ct2Dtype::I16 => "int16",
            Ct2Dtype::I32 => "int32",
            Ct2Dtype::F16 => "float16",
            Ct2Dtype::Bf16 => "bfloat16",
        }
    }
}

impl std::fmt::Display for Ct2Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One stored variable: where its data lies in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    /// Byte offset of the data in the file.
    pub offset: usize,
    /// Byte length of the data (the shape's element count times the dtype's size).
    pub len: usize,
}

impl Variable {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A configuration value stored as a variable: a rank-0 number or an int8 string.
#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Attribute {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Attribute::Int(v) => Some(*v),
            _ => None,
        }
    }
}

enum Storage {
    /// The file, memory-mapped: tensors are converted straight from the page cache.
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A parsed CTranslate2 `model.bin`.
pub struct ModelBin {
    path: PathBuf,
    storage: Storage,
    binary_version: u32,
    spec: String,
    spec_revision: u32,
    variables: Vec<Variable>,
    index: HashMap<String, usize>,
    /// In file order: (alias, the name it stands for).
    aliases: Vec<(String, String)>,
    alias_index: HashMap<String, usize>,
}

/// A cursor over the file whose every read is checked against its end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, offset: usize, msg: impl Into<String>) -> Error {
        Error::Ctranslate2 {
            path: self.path.to_path_buf(),
            offset,
            msg: msg.into(),
        }
    }

    /// The bytes not read yet.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn short(&self, n: usize, what: &str) -> Error {
        self.err(
            self.pos,
            format!(
                "{what} needs {n} bytes but only {} are left (file of {} bytes: truncated?)",
                self.rest().len(),
                self.bytes.len()
            ),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let (s, _) = self
            .rest()
            .split_at_checked(n)
            .ok_or_else(|| self.short(n, what))?;
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array (a fixed-size field).
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let (&s, _) = self
            .rest()
            .split_first_chunk::<N>()
            .ok_or_else(|| self.short(N, what))?;
        self.pos += N;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let n = self.u16(what)? as usize;
        if n == 0 {
            return Err(self.err(
                at,
                format!("{what} has length 0 (not even its closing NUL)"),
            ));
        }
        let raw = self.take(n, what)?;
        let text = raw.split(|&b| b == 0).next().unwrap_or(raw);
        String::from_utf8(text.to_vec())
            .map_err(|_| self.err(at + 2, format!("{what} is not UTF-8: {text:?}")))
    }
}

impl ModelBin {
    /// Memory-maps and parses `path` (a `model.bin`).
    pub fn open(path: &Path) -> Result<ModelBin> {
        let io = |e: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            msg: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. A file modified by another
        // process while loading is outside what any loader can defend against; every offset
        // read below is checked against the mapped length.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        ModelBin::parse(path.to_path_buf(), Storage::Mapped(map))
    }

    /// Parses a `model.bin` held in memory; `path` names it in messages.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<ModelBin> {
        ModelBin::parse(path.into(), Storage::Owned(bytes))
    }

    fn parse(path: PathBuf, storage: Storage) -> Result<ModelBin> {
        let bytes = storage.bytes();
        let mut r = Reader {
            bytes,
            pos: 0,
            path: &path,
        };
        let binary_version = r.u32("the binary version")?;
        if binary_version == 0 || binary_version > MAX_BINARY_VERSION {
            return Err(r.err(
                0,
                format!(
                    "binary version {binary_version}; this reader knows versions 1 to \
                     {MAX_BINARY_VERSION} (not a CTranslate2 model, or one from a newer \
                     CTranslate2)"
                ),
            ));
        }
        let (spec, spec_revision) = if binary_version >= 2 {
            (r.string("the spec name")?, r.u32("the spec revision")?)
        } else {
            (String::new(), 1)
        };
        let count_at = r.pos;
        let count = r.u32("the variable count")? as usize;
        // The smallest record: a 1-character name (2 + 2 bytes), rank, dtype and size fields.
        const MIN_RECORD: usize = 4 + 1 + 1 + 4;
        if count > r.rest().len() / MIN_RECORD {
            return Err(r.err(
                count_at,
                format!(
                    "{count} variables cannot fit in the {} bytes left",
                    r.rest().len()
                ),
            ));
        }
        let mut variables = Vec::with_capacity(count);
        let mut index = HashMap::with_capacity(count);
        for i in 0..count {
            let at = r.pos;
            let name = r.string(&format!("the name of variable {i}"))?;
            let rank = r.u8(&format!("the rank of {name}"))? as usize;
            let dims = r.take(4 * rank, &format!("the shape of {name}"))?;
            let shape: Vec<usize> = super::words(dims)
                .map(|c| u32::from_le_bytes(c) as usize)
                .collect();
            let type_at = r.pos;
            let (dtype, len) = if binary_version >= 4 {
                let id = r.u8(&format!("the dtype of {name}"))?;
                let dtype = Ct2Dtype::from_id(id).ok_or_else(|| {
                    r.err(
                        type_at,
                        format!("variable {name} has unknown dtype id {id}"),
                    )
                })?;
                (dtype, r.u32(&format!("the byte size of {name}"))? as u64)
            } else {
                let item = r.u8(&format!("the item size of {name}"))?;
                let dtype = Ct2Dtype::from_item_size(item).ok_or_else(|| {
                    r.err(
                        type_at,
                        format!("variable {name} has unknown item size {item}"),
                    )
                })?;
                let n = r.u32(&format!("the element count of {name}"))? as u64;
                (dtype, n * item as u64)
            };
            let expected = shape
                .iter()
                .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
            if expected != Some(len) {
                return Err(r.err(
                    type_at,
                    format!(
                        "variable {name} of shape {shape:?} and dtype {dtype} should hold {} \
                         bytes, the file says {len}",
                        expected.map_or("more than 2^64".to_string(), |e| e.to_string())
                    ),
                ));
            }
            let len = usize::try_from(len)
                .map_err(|_| r.err(type_at, format!("variable {name}: {len} bytes")))?;
            let offset = r.pos;
            r.take(len, &format!("the data of {name}"))?;
            if index.insert(name.clone(), variables.len()).is_some() {
                return Err(r.err(at, format!("variable {name} appears twice")));
            }
            variables.push(Variable {
                name,
                shape,
                dtype,
                offset,
                len,
            });
        }
        let mut aliases = Vec::new();
        let mut alias_index = HashMap::new();
        if binary_version >= 3 {
            let at = r.pos;
            let n = r.u32("the alias count")? as usize;
            // Two strings of at least 2 + 1 bytes each.
            if n > r.rest().len() / 6 {
                return Err(r.err(
                    at,
                    format!(
                        "{n} aliases cannot fit in the {} bytes left",
                        r.rest().len()
                    ),
                ));
            }
            for i in 0..n {
                let at = r.pos;
                let alias = r.string(&format!("alias {i}"))?;
                let target = r.string(&format!("the target of alias {alias}"))?;
                if index.contains_key(&alias) || alias_index.contains_key(&alias) {
                    return Err(r.err(at, format!("alias {alias} is also defined elsewhere")));
                }
                alias_index.insert(alias.clone(), aliases.len());
                aliases.push((alias, target));
            }
        }
        if !r.rest().is_empty() {
            log::warn!(
                "{}: {} bytes after the last table (offset {}) are ignored",
                path.display(),
                r.rest().len(),
                r.pos
            );
        }
        Ok(ModelBin {
            path,
            storage,
            binary_version,
            spec,
            spec_revision,
            variables,
            index,
            aliases,
            alias_index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn binary_version(&self) -> u32 {
        self.binary_version
    }
    /// The spec name (`WhisperSpec`, `TransformerSpec`, ...; empty in binary version 1).
    pub fn spec(&self) -> &str {
        &self.spec
    }
    pub fn spec_revision(&self) -> u32 {
        self.spec_revision
    }
    /// The stored variables, in file order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }
    /// The aliases, in file order: (alias, the name it stands for).
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// The file, spec and version, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (CTranslate2 {} revision {}, binary version {})",
            self.path.display(),
            if self.spec.is_empty() {
                "model"
            } else {
                &self.spec
            },
            self.spec_revision,
            self.binary_version
        )
    }

    /// The raw little-endian bytes of `v`; `None` when `v` (not one of [`ModelBin::variables`])
    /// reaches past the end of the file.
    pub fn data(&self, v: &Variable) -> Option<&[u8]> {
        self.storage
            .bytes()
            .get(v.offset..v.offset.checked_add(v.len)?)
    }

    /// [`ModelBin::data`], or an error naming `key`, the variable and its byte range.
    fn data_of(&self, v: &Variable, key: &str) -> Result<&[u8]> {
        self.data(v).ok_or_else(|| Error::Ctranslate2Tensor {
            key: key.to_string(),
            path: self.path.clone(),
            msg: format!(
                "{} at bytes {}+{} lies outside the file ({} bytes)",
                v.name,
                v.offset,
                v.len,
                self.storage.bytes().len()
            ),
        })
    }

    /// The variable a CTranslate2 name (or alias) stands for. `Ok(None)` when neither a
    /// variable nor an alias has that name; an error when an alias leads nowhere.
    fn resolve(&self, name: &str) -> Result<Option<&Variable>> {
        let mut cur = name;
        for _ in 0..MAX_ALIAS_HOPS {
            // Both maps hold positions pushed with their entries in `parse`.
            if let Some(v) = self.index.get(cur).and_then(|&i| self.variables.get(i)) {
                return Ok(Some(v));
            }
            match self.alias_index.get(cur).and_then(|&a| self.aliases.get(a)) {
                Some((_, target)) => cur = target,
                None if cur == name => return Ok(None),
                None => {
                    return Err(Error::Ctranslate2Tensor {
                        key: name.to_string(),
                        path: self.path.clone(),
                        msg: format!("it is an alias of {cur}, which is not in the file"),
                    });
                }
            }
        }
        Err(Error::Ctranslate2Tensor {
            key: name.to_string(),
            path: self.path.clone(),
            msg: format!("more than {MAX_ALIAS_HOPS} alias hops (a cycle?)"),
        })
    }

    /// The variable `name` (a CTranslate2 name or alias, `.` read as `/`), if present.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.native(name).ok().flatten()
    }

    fn native(&self, key: &str) -> Result<Option<&Variable>> {
        if let Some(v) = self.resolve(key)? {
            return Ok(Some(v));
        }
        if key.contains('.') {
            return self.resolve(&key.replace('.', "/"));
        }
        Ok(None)
    }

    /// Where `key` lives: a CTranslate2 name first, then (Whisper) a Hugging Face name.
    fn locate(&self, key: &str) -> Result<Option<(&Variable, Part)>> {
        if let Some(v) = self.native(key)? {
            return Ok(Some((v, Part::Whole)));
        }
        if self.spec == WHISPER_SPEC {
            if let Some((name, part)) = whisper_name(key) {
                return Ok(self.resolve(&name)?.map(|v| (v, part)));
            }
        }
        Ok(None)
    }

    /// Whether `key` can be loaded (see [`ModelBin::load`]).
    pub fn contains(&self, key: &str) -> bool {
        matches!(self.locate(key), Ok(Some(_)))
    }

    /// The shape `key` loads with, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        let (v, part) = self.locate(key).ok()??;
        part.shape(v)
    }

    /// A configuration value stored as a variable (`decoder/num_heads`, `decoder/pre_norm`,
    /// a string...): a rank-0 variable as a number, an int8 vector as UTF-8 text.
    pub fn attribute(&self, name: &str) -> Option<Attribute> {
        let v = self.variable(name)?;
        let b = self.data(v)?;
        let int = |x: i64| Some(Attribute::Int(x));
        let float = |x: f64| Some(Attribute::Float(x));
        match (v.shape.len(), v.dtype) {
            (0, Ct2Dtype::I8) => int(i8::from_le_bytes(*b.first_chunk()?).into()),
            (0, Ct2Dtype::I16) => int(i16::from_le_bytes(*b.first_chunk()?).into()),
            (0, Ct2Dtype::I32) => int(i32::from_le_bytes(*b.first_chunk()?).into()),
            (0, Ct2Dtype::F32) => float(f32::from_le_bytes(*b.first_chunk()?).into()),
            (0, Ct2Dtype::F16) => float(half::f16::from_le_bytes(*b.first_chunk()?).to_f64()),
            (0, Ct2Dtype::Bf16) => float(half::bf16::from_le_bytes(*b.first_chunk()?).to_f64()),
            (1, Ct2Dtype::I8) => String::from_utf8(b.to_vec()).ok().map(Attribute::Text),
            _ => None,
        }
    }

    /// The tensor `key` (a CTranslate2 name, or for Whisper a Hugging Face name), checked
    /// against `shape` and converted to the storage dtype: float32 / float16 / bfloat16 as
    /// safetensors are, int8 and int16 dequantized with their scales to f32 (f16 if asked).
    pub fn load(&self, key: &str, shape: &[usize], dtype: WeightDtype) -> Result<HostData> {
        let (v, part) = self.locate(key)?.ok_or_else(|| Error::MissingTensor {
            key: key.to_string(),
            files: self.describe(),
        })?;
        let tensor_err = |msg: String| Error::Ctranslate2Tensor {
            key: key.to_string(),
            path: self.path.clone(),
            msg,
        };
        let got = part.shape(v).ok_or_else(|| {
            tensor_err(format!(
                "{} of shape {:?} does not split into {part:?}",
                v.name, v.shape
            ))
        })?;
        if got != shape {
            return Err(Error::TensorShape {
                key: key.to_string(),
                path: self.path.clone(),
                got,
                expected: shape.to_vec(),
            });
        }
        let rows = part.rows(v);
        let row_elems: usize = v.shape.iter().skip(1).product();
        let elem = v.dtype.size();
        let row_bytes = row_elems * elem;
        let bytes = self
            .data_of(v, key)?
            .get(rows.start * row_bytes..rows.end * row_bytes)
            .ok_or_else(|| {
                tensor_err(format!(
                    "rows {rows:?} of {} lie outside its {} bytes",
                    v.name, v.len
                ))
            })?;
        let float = |kind| Ok(convert_floats(bytes, kind, dtype));
        let values: Vec<f32> = match v.dtype {
            Ct2Dtype::F32 => return float(FloatBytes::F32),
            Ct2Dtype::F16 => return float(FloatBytes::F16),
            Ct2Dtype::Bf16 => return float(FloatBytes::Bf16),
            Ct2Dtype::I32 => {
                return Err(tensor_err(format!(
                    "{} is int32; supported: float32, float16, bfloat16, and int8 or int16 \
                     with a _scale",
                    v.name
                )));
            }
            Ct2Dtype::I8 => {
                let scale = self.scale(v, key)?.ok_or_else(|| {
                    tensor_err(format!("int8 variable {} has no {}_scale", v.name, v.name))
                })?;
                let stored_rows = v.shape.first().copied().unwrap_or(1);
                let dequantize = |q: &u8, s: f32| q.cast_signed() as f32 / s;
                match scale.as_slice() {
                    &[s] => bytes.iter().map(|q| dequantize(q, s)).collect(),
                    per_row if per_row.len() == stored_rows => {
                        // One scale per stored row; `rows` lies within them (`Part::shape`).
                        let scales = per_row.get(rows.clone()).ok_or_else(|| {
                            tensor_err(format!("rows {rows:?} of {}_scale are missing", v.name))
                        })?;
                        bytes
                            .chunks(row_elems.max(1))
                            .zip(scales)
                            .flat_map(|(row, &s)| row.iter().map(move |q| dequantize(q, s)))
                            .collect()
                    }
                    other => {
                        return Err(tensor_err(format!(
                            "{}_scale has {} values for {stored_rows} rows",
                            v.name,
                            other.len()
                        )));
                    }
                }
            }
            Ct2Dtype::I16 => {
                let scale = match self.scale(v, key)?.as_deref() {
                    None => GLOBAL_INT16_SCALE,
                    Some(&[s]) => s,
                    Some(s) => {
                        return Err(tensor_err(format!(
                            "{}_scale has {} values; int16 weights have one scale",
                            v.name,
                            s.len()
                        )));
                    }
                };
                super::words(bytes)
                    .map(|c| i16::from_le_bytes(c) as f32 / scale)
                    .collect()
            }
        };
        Ok(match dtype {
            WeightDtype::F16 => {
                HostData::F16(values.into_iter().map(half::f16::from_f32).collect())
            }
            _ => HostData::F32(values),
        })
    }

    /// The quantization scale of `v` (`<name>_scale`, through the aliases), as f32.
    fn scale(&self, v: &Variable, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(s) = self.resolve(&format!("{}_scale", v.name))? else {
            return Ok(None);
        };
        let kind = match s.dtype {
            Ct2Dtype::F32 => FloatBytes::F32,
            Ct2Dtype::F16 => FloatBytes::F16,
            Ct2Dtype::Bf16 => FloatBytes::Bf16,
            d => {
                return Err(Error::Ctranslate2Tensor {
                    key: key.to_string(),
                    path: self.path.clone(),
                    msg: format!("the scale {} is {d}, not a float", s.name),
                });
            }
        };
        Ok(Some(
            convert_floats(self.data_of(s, key)?, kind, WeightDtype::F32).to_f32(),
        ))
    }
}

/// The part of a stored variable a key covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Whole,
    /// Block `index` of `of` equal blocks of rows (the first dimension): one projection of a
    /// fused QKV or KV tensor.
    Rows {
        index: usize,
        of: usize,
    },
}

impl Part {
    /// The shape of the part, or None if the rows do not split evenly.
    fn shape(self, v: &Variable) -> Option<Vec<usize>> {
        match self {
            Part::Whole => Some(v.shape.clone()),
            Part::Rows { of, .. } => {
                let (&rows, rest) = v.shape.split_first()?;
                if !rows.is_multiple_of(of) {
                    return None;
                }
                Some(
                    std::iter::once(rows / of)
                        .chain(rest.iter().copied())
                        .collect(),
                )
            }
        }
    }

    /// The rows of `v` covered (call after `shape` succeeded).
    fn rows(self, v: &Variable) -> std::ops::Range<usize> {
        let rows = v.shape.first().copied().unwrap_or(1);
        match self {
            Part::Whole => 0..rows,
            Part::Rows { index, of } => {
                let n = rows / of;
                index * n..(index + 1) * n
            }
        }
    }
}

/// A Hugging Face layer norm parameter as CTranslate2 names it.
fn norm_param(p: &str) -> Option<&'static str> {
    match p {
        "weight" => Some("gamma"),
        "bias" => Some("beta"),
        _ => None,
    }
}

/// The CTranslate2 variable and part for a Hugging Face Whisper name (the table in the
/// module documentation), or None if `key` is not one.
fn whisper_name(key: &str) -> Option<(String, Part)> {
    let key = key.strip_prefix("model.").unwrap_or(key);
    if key == "proj_out.weight" {
        return Some(("decoder/projection/weight".into(), Part::Whole));
    }
    let parts: Vec<&str> = key.split('.').collect();
    let (&side, rest) = parts.split_first()?;
    let decoder = match side {
        "encoder" => false,
        "decoder" => true,
        _ => return None,
    };
    let (name, part) = match rest {
        [conv @ ("conv1" | "conv2"), p @ ("weight" | "bias")] if !decoder => {
            (format!("{conv}/{p}"), Part::Whole)
        }
        ["embed_positions", "weight"] => ("position_encodings/encodings".into(), Part::Whole),
        ["embed_tokens", "weight"] if decoder => ("embeddings/weight".into(), Part::Whole),
        ["layer_norm", p] => (format!("layer_norm/{}", norm_param(p)?), Part::Whole),
        ["layers", i, sub @ ..] if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => {
            let (name, part) = whisper_layer_name(sub, decoder)?;
            (format!("layer_{i}/{name}"), part)
        }
        _ => return None,
    };
    Some((format!("{side}/{name}"), part))
}

/// The part of [`whisper_name`] inside one layer.
fn whisper_layer_name(sub: &[&str], decoder: bool) -> Option<(String, Part)> {
    let rows = |index, of| Part::Rows { index, of };
    match sub {
        [
            block @ ("self_attn" | "encoder_attn"),
            proj,
            p @ ("weight" | "bias"),
        ] => {
            let cross = *block == "encoder_attn";
            if cross && !decoder || *proj == "k_proj" && *p == "bias" {
                return None;
            }
            let (linear, part) = match (cross, *proj) {
                (false, "q_proj") => (0, rows(0, 3)),
                (false, "k_proj") => (0, rows(1, 3)),
                (false, "v_proj") => (0, rows(2, 3)),
                (false, "out_proj") => (1, Part::Whole),
                (true, "q_proj") => (0, Part::Whole),
                (true, "k_proj") => (1, rows(0, 2)),
                (true, "v_proj") => (1, rows(1, 2)),
                (true, "out_proj") => (2, Part::Whole),
                _ => return None,
            };
            let scope = if cross { "attention" } else { "self_attention" };
            Some((format!("{scope}/linear_{linear}/{p}"), part))
        }
        [norm, p] if norm.ends_with("layer_norm") => {
            let scope = match *norm {
                "self_attn_layer_norm" => "self_attention",
                "encoder_attn_layer_norm" if decoder => "attention",
                "final_layer_norm" => "ffn",
                _ => return None,
            };
            Some((
                format!("{scope}/layer_norm/{}", norm_param(p)?),
                Part::Whole,
            ))
        }
        [fc @ ("fc1" | "fc2"), p @ ("weight" | "bias")] => {
            let linear = if *fc == "fc1" { 0 } else { 1 };
            Some((format!("ffn/linear_{linear}/{p}"), Part::Whole))
        }
        _ => None,
    }
}

/// The vocabulary beside a CTranslate2 `model.bin`: `vocabulary.json` (a JSON list of
/// tokens) or `vocabulary.txt` (one token a line). `Ok(None)` when there is neither.
pub fn vocabulary(dir: &Path) -> Result<Option<Vec<String>>> {
    let json = dir.join("vocabulary.json");
    if json.exists() {
        let text = read(&json)?;
        let tokens: Vec<String> = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: json.clone(),
            msg: format!("expected a JSON list of tokens: {e}"),
        })?;
        return Ok(Some(tokens));
    }
    let txt = dir.join("vocabulary.txt");
    if txt.exists() {
        let text = read(&txt)?;
        return Ok(Some(text.lines().map(str::to_string).collect()));
    }
    Ok(None)
}

/// CTranslate2's `config.json` beside `model.bin` (for Whisper: `suppress_ids`,
/// `suppress_ids_begin`, `lang_ids`, `alignment_heads`), if present.
pub fn config(dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = dir.join("config.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = read(&path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Config {
            path,
            msg: format!("invalid JSON: {e}"),
        })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Checkpoint, Vars};
    use half::{bf16, f16};

    /// One variable for [`write`]: name, shape, dtype id, data.
    type Var = (String, Vec<u32>, u8, Vec<u8>);

    fn var(name: &str, shape: &[u32], dtype: u8, data: Vec<u8>) -> Var {
        (name.to_string(), shape.to_vec(), dtype, data)
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn f16s(v: &[f32]) -> Vec<u8> {
        v.iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect()
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u16 + 1).to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    }

    /// A model.bin of `version` in the layout the module documentation describes.
    fn write(version: u32, spec: &str, vars: &[Var], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = version.to_le_bytes().to_vec();
        if version >= 2 {
            string(&mut out, spec);
            out.extend(2u32.to_le_bytes());
        }
        out.extend((vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in vars {
            string(&mut out, name);
            out.push(shape.len() as u8);
            shape.iter().for_each(|d| out.extend(d.to_le_bytes()));
            if version >= 4 {
                out.push(*dtype);
                out.extend((data.len() as u32).to_le_bytes());
            } else {
                let item = match dtype {
                    0 => 4,
                    2 => 2,
                    1 => 1,
                    _ => panic!("no item size for dtype {dtype}"),
                };
                out.push(item);
                out.extend((data.len() as u32 / item as u32).to_le_bytes());
            }
            out.extend(data);
        }
        if version >= 3 {
            out.extend((aliases.len() as u32).to_le_bytes());
            for (a, t) in aliases {
                string(&mut out, a);
                string(&mut out, t);
            }
        }
        out
    }

    fn f32_of(m: &ModelBin, key: &str, shape: &[usize]) -> Vec<f32> {
        m.load(key, shape, WeightDtype::F32)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_f32()
    }

    /// Variables of every dtype, attributes and an alias to an int8 weight.
    fn mixed() -> (Vec<Var>, Vec<(&'static str, &'static str)>) {
        let vars = vec![
            var("a/f32", &[2, 2], 0, f32s(&[1.5, -2.0, 0.25, 8.0])),
            var("a/f16", &[3], 4, f16s(&[0.5, -3.0, 65504.0])),
            var(
                "a/bf16",
                &[2],
                5,
                [bf16::from_f32(1.0), bf16::from_f32(-0.25)]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
            // int8 [2, 3], one scale per row: values q / scale.
            var("a/q8/weight", &[2, 3], 1, vec![127, 0, 0x81, 10, 20, 30]),
            var("a/q8/weight_scale", &[2], 0, f32s(&[127.0, 10.0])),
            var(
                "a/q16/weight",
                &[2],
                2,
                [2000i16, -500]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
            var("a/q16/weight_scale", &[], 0, f32s(&[1000.0])),
            var("a/raw16/weight", &[1], 2, 3000i16.to_le_bytes().to_vec()),
            var("a/i32", &[1], 3, 7i32.to_le_bytes().to_vec()),
            var("cfg/activation", &[], 1, vec![3]),
            var("cfg/num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
            var("cfg/neg", &[], 1, vec![0xff]),
            var("cfg/name", &[2], 1, b"hi".to_vec()),
            var("cfg/eps", &[], 0, f32s(&[1e-5])),
        ];
        let aliases = vec![
            ("b/tied/weight", "a/q8/weight"),
            ("b/chain", "b/tied/weight"),
            ("b/dangling", "a/nothing"),
        ];
        (vars, aliases)
    }

    #[test]
    fn dtypes_scales_attributes_and_aliases() {
        let (vars, aliases) = mixed();
        let m = ModelBin::from_bytes("mixed.bin", write(6, "TestSpec", &vars, &aliases)).unwrap();
        assert_eq!(
            (m.binary_version(), m.spec(), m.spec_revision()),
            (6, "TestSpec", 2)
        );
        assert_eq!(m.variables().len(), vars.len());
        assert_eq!(m.aliases().count(), 3);
        assert_eq!(f32_of(&m, "a/f32", &[2, 2]), vec![1.5, -2.0, 0.25, 8.0]);
        assert!(matches!(
            m.load("a/f16", &[3], WeightDtype::Auto).unwrap(),
            HostData::F16(_)
        ));
        assert_eq!(f32_of(&m, "a/f16", &[3]), vec![0.5, -3.0, 65504.0]);
        assert_eq!(f32_of(&m, "a.bf16", &[2]), vec![1.0, -0.25]);
        assert_eq!(
            f32_of(&m, "a/q8/weight", &[2, 3]),
            vec![1.0, 0.0, -1.0, 1.0, 2.0, 3.0]
        );
        assert!(matches!(
            m.load("a/q8/weight", &[2, 3], WeightDtype::F16).unwrap(),
            HostData::F16(_)
        ));
        assert_eq!(f32_of(&m, "a/q16/weight", &[2]), vec![2.0, -0.5]);
        assert_eq!(f32_of(&m, "a/raw16/weight", &[1]), vec![3.0]);
        // Aliases resolve (through a chain) and use the target's scale.
        assert_eq!(
            f32_of(&m, "b/chain", &[2, 3]),
            vec![1.0, 0.0, -1.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(m.variable("b.tied.weight").unwrap().name, "a/q8/weight");
        let e = m
            .load("b/dangling", &[1], WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b/dangling") && e.contains("a/nothing") && e.contains("mixed.bin"),
            "{e}"
        );
        assert!(!m.contains("b/dangling"));
        let e = m
            .load("a/i32", &[1], WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("int32") && e.contains("a/i32"), "{e}");
        let e = m
            .load("a/f32", &[4], WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[2, 2]") && e.contains("[4]") && e.contains("mixed.bin"),
            "{e}"
        );
        let e = m
            .load("a/zz", &[1], WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing tensor a/zz") && e.contains("TestSpec"),
            "{e}"
        );
        assert_eq!(m.attribute("cfg/activation"), Some(Attribute::Int(3)));
        assert_eq!(m.attribute("cfg.num_heads"), Some(Attribute::Int(6)));
        assert_eq!(m.attribute("cfg/neg"), Some(Attribute::Int(-1)));
        assert_eq!(m.attribute("cfg/name"), Some(Attribute::Text("hi".into())));
        assert_eq!(
            m.attribute("cfg/eps"),
            Some(Attribute::Float(1e-5f32 as f64))
        );
        assert_eq!(m.attribute("a/f32"), None);
    }

    #[test]
    fn int8_without_scale_is_an_error() {
        let vars = vec![var("w/weight", &[1, 2], 1, vec![1, 2])];
        let m = ModelBin::from_bytes("q.bin", write(6, "S", &vars, &[])).unwrap();
        let e = m
            .load("w/weight", &[1, 2], WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("w/weight_scale") && e.contains("q.bin"), "{e}");
    }

    #[test]
    fn older_binary_versions() {
        // Version 3: item sizes and counts instead of dtype ids, aliases present.
        let vars = vec![
            var("x/weight", &[2, 2], 0, f32s(&[1.0, 2.0, 3.0, 4.0])),
            var("y/weight", &[1, 2], 1, vec![4, 0xfc]),
            var("y/weight_scale", &[1], 0, f32s(&[2.0])),
        ];
        let m =
            ModelBin::from_bytes("v3.bin", write(3, "Old", &vars, &[("z", "x/weight")])).unwrap();
        assert_eq!((m.binary_version(), m.spec()), (3, "Old"));
        assert_eq!(f32_of(&m, "z", &[2, 2]), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f32_of(&m, "y/weight", &[1, 2]), vec![2.0, -2.0]);
        // Version 2: no alias table. Version 1: no spec either.
        let m = ModelBin::from_bytes("v2.bin", write(2, "Old", &vars, &[])).unwrap();
        assert_eq!(f32_of(&m, "x/weight", &[2, 2]), vec![1.0, 2.0, 3.0, 4.0]);
        let m = ModelBin::from_bytes("v1.bin", write(1, "", &vars, &[])).unwrap();
        assert_eq!((m.spec(), m.spec_revision()), ("", 1));
        assert_eq!(f32_of(&m, "y.weight", &[1, 2]), vec![2.0, -2.0]);
        // A float16 tensor written before version 4 reads as int16, as in CTranslate2.
        let m = ModelBin::from_bytes(
            "v3h.bin",
            write(
                3,
                "Old",
                &[var("h", &[1], 2, 1000i16.to_le_bytes().to_vec())],
                &[],
            ),
        )
        .unwrap();
        assert_eq!(m.variable("h").unwrap().dtype, Ct2Dtype::I16);
    }

    #[test]
    fn truncated_or_corrupt_files_are_errors() {
        let (vars, aliases) = mixed();
        for version in [1, 3, 6] {
            let vars: Vec<Var> = if version < 4 {
                vars.iter()
                    .filter(|v| [0, 1, 2].contains(&v.2))
                    .cloned()
                    .collect()
            } else {
                vars.clone()
            };
            let bytes = write(version, "TestSpec", &vars, &aliases);
            ModelBin::from_bytes("full.bin", bytes.clone()).unwrap();
            // Every truncation fails (and none panics).
            for n in 0..bytes.len() {
                let e = ModelBin::from_bytes("cut.bin", bytes[..n].to_vec())
                    .err()
                    .unwrap_or_else(|| panic!("v{version} cut at {n} parsed"))
                    .to_string();
                assert!(e.contains("cut.bin") && e.contains("byte offset"), "{e}");
            }
            // Any single corrupted byte parses or fails, never panics; loading what parsed
            // fails cleanly too.
            for i in 0..bytes.len() {
                for x in [0x00, 0xff, 0x7f] {
                    let mut b = bytes.clone();
                    b[i] = x;
                    if let Ok(m) = ModelBin::from_bytes("flip.bin", b) {
                        for v in m.variables() {
                            let _ = m.load(&v.name, &v.shape, WeightDtype::Auto);
                            let _ = m.attribute(&v.name);
                        }
                        for (a, _) in m.aliases() {
                            let _ = m.load(a, &[1], WeightDtype::Auto);
                        }
                    }
                }
            }
        }
        let at = |bytes: Vec<u8>| {
            ModelBin::from_bytes("bad.bin", bytes)
                .err()
                .unwrap()
                .to_string()
        };
        let one = vec![var("w", &[2], 0, f32s(&[1.0, 2.0]))];
        let good = write(6, "S", &one, &[]);
        // Newer binary version.
        let mut b = good.clone();
        b[0] = 7;
        let e = at(b);
        assert!(
            e.contains("binary version 7") && e.contains("byte offset 0"),
            "{e}"
        );
        // Unknown dtype id: after version (4), spec (2 + 2), revision (4), count (4), name
        // (2 + 2), rank (1), dims (4).
        let dtype_at = 4 + 4 + 4 + 4 + 4 + 1 + 4;
        let mut b = good.clone();
        b[dtype_at] = 9;
        let e = at(b);
        assert!(
            e.contains("unknown dtype id 9") && e.contains(&format!("offset {dtype_at}")),
            "{e}"
        );
        // Byte size disagreeing with the shape.
        let mut b = good.clone();
        b[dtype_at + 1] = 12;
        let e = at(b);
        assert!(e.contains("should hold 8 bytes, the file says 12"), "{e}");
        // A huge byte size is caught before any slicing.
        let big = write(6, "S", &[var("w", &[0x4000_0000], 1, vec![])], &[]);
        let mut b = big.clone();
        b[dtype_at + 1..dtype_at + 5].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        let e = at(b);
        assert!(e.contains("the data of w needs 1073741824 bytes"), "{e}");
        // A huge variable count.
        let mut b = good.clone();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(at(b).contains("4294967295 variables cannot fit"));
        // An empty string record.
        let mut b = good.clone();
        b[4..6].copy_from_slice(&0u16.to_le_bytes());
        assert!(at(b).contains("the spec name has length 0"));
        // Twice the same name.
        let two = write(6, "S", &[one[0].clone(), one[0].clone()], &[]);
        assert!(at(two).contains("variable w appears twice"));
    }

    #[test]
    fn variables_reaching_past_the_file_have_no_data() {
        let m = ModelBin::from_bytes(
            "one.bin",
            write(6, "S", &[var("w", &[2], 0, f32s(&[1.0, 2.0]))], &[]),
        )
        .unwrap();
        let w = m.variables()[0].clone();
        assert_eq!(m.data(&w), Some(&f32s(&[1.0, 2.0])[..]));
        // A `Variable` is plain data: one made by hand, or taken from another file, may
        // point anywhere.
        for (offset, len) in [(w.offset, 1 << 20), (1 << 20, 1), (usize::MAX, 2)] {
            let v = Variable {
                offset,
                len,
                ..w.clone()
            };
            assert_eq!(m.data(&v), None, "{offset}+{len}");
        }
    }

    /// A Whisper-shaped model.bin: d = 2, 1 encoder and 1 decoder layer, 3 mels, vocabulary 5,
    /// each tensor filled with `base + index` so parts are recognisable.
    fn tiny_whisper(dir: &Path) {
        let d = 2u32;
        let mut vars = Vec::new();
        let mut n = 0.0f32;
        let mut fill = |name: &str, shape: &[u32]| {
            let len: u32 = shape.iter().product();
            let v: Vec<f32> = (0..len).map(|i| n + i as f32).collect();
            n += 20.0;
            vars.push(var(name, shape, 4, f16s(&v)));
        };
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            fill(&format!("{l}/self_attention/linear_0/weight"), &[3 * d, d]);
            fill(&format!("{l}/self_attention/linear_0/bias"), &[3 * d]);
            fill(&format!("{l}/self_attention/linear_1/weight"), &[d, d]);
            fill(&format!("{l}/self_attention/layer_norm/gamma"), &[d]);
            fill(&format!("{l}/ffn/linear_0/weight"), &[4 * d, d]);
            fill(&format!("{l}/ffn/layer_norm/beta"), &[d]);
            fill(&format!("{side}/layer_norm/gamma"), &[d]);
        }
        fill("encoder/conv1/weight", &[d, 3, 3]);
        fill("encoder/position_encodings/encodings", &[4, d]);
        fill("decoder/layer_0/attention/linear_0/weight", &[d, d]);
        fill("decoder/layer_0/attention/linear_1/weight", &[2 * d, d]);
        fill("decoder/layer_0/attention/linear_1/bias", &[2 * d]);
        fill("decoder/layer_0/attention/linear_2/bias", &[d]);
        fill("decoder/layer_0/attention/layer_norm/gamma", &[d]);
        fill("decoder/embeddings/weight", &[5, d]);
        vars.push(var(
            "decoder/num_heads",
            &[],
            2,
            1i16.to_le_bytes().to_vec(),
        ));
        vars.sort();
        let aliases = [("decoder/projection/weight", "decoder/embeddings/weight")];
        std::fs::write(
            dir.join(MODEL_FILE),
            write(6, WHISPER_SPEC, &vars, &aliases),
        )
        .unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seqbridge-ct2-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn whisper_names_split_fused_tensors() {
        let dir = tmp("whisper");
        tiny_whisper(&dir);
        std::fs::write(dir.join("vocabulary.txt"), "a\nb\n<|endoftext|>\n").unwrap();
        std::fs::write(dir.join("config.json"), r#"{"lang_ids": [1, 2]}"#).unwrap();
        let ck = Checkpoint::open(&dir).unwrap();
        let m = ck.ctranslate2().unwrap();
        assert_eq!(m.spec(), "WhisperSpec");
        let vars = Vars::root(&ck, WeightDtype::F32);
        let mm = vars.pp("model");
        let get = |v: &Vars, k: &str, s: &[usize]| v.f32(k, s).unwrap_or_else(|e| panic!("{e}"));
        let range = |a: f32, n: usize| (0..n).map(|i| a + i as f32).collect::<Vec<f32>>();
        // Names are sorted as CTranslate2 writes them; read off each tensor's base.
        let base = |name: &str| {
            m.variable(name)
                .map(|v| f32_of(m, &v.name, &v.shape)[0])
                .unwrap()
        };
        for side in ["encoder", "decoder"] {
            let qkv = base(&format!("{side}/layer_0/self_attention/linear_0/weight"));
            let qkv_b = base(&format!("{side}/layer_0/self_attention/linear_0/bias"));
            let sa = mm.pp(side).pp("layers.0").pp("self_attn");
            assert_eq!(get(&sa, "q_proj.weight", &[2, 2]), range(qkv, 4));
            assert_eq!(get(&sa, "k_proj.weight", &[2, 2]), range(qkv + 4.0, 4));
            assert_eq!(get(&sa, "v_proj.weight", &[2, 2]), range(qkv + 8.0, 4));
            assert_eq!(get(&sa, "q_proj.bias", &[2]), range(qkv_b, 2));
            assert_eq!(get(&sa, "v_proj.bias", &[2]), range(qkv_b + 4.0, 2));
            assert!(!sa.contains("k_proj.bias"));
            let e = sa.f32("k_proj.bias", &[2]).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "missing tensor model.{side}.layers.0.self_attn.k_proj.bias"
                )),
                "{e}"
            );
            let out = base(&format!("{side}/layer_0/self_attention/linear_1/weight"));
            assert_eq!(get(&sa, "out_proj.weight", &[2, 2]), range(out, 4));
            let l = mm.pp(side).pp("layers.0");
            let g = base(&format!("{side}/layer_0/self_attention/layer_norm/gamma"));
            assert_eq!(get(&l, "self_attn_layer_norm.weight", &[2]), range(g, 2));
            let fc1 = base(&format!("{side}/layer_0/ffn/linear_0/weight"));
            assert_eq!(get(&l, "fc1.weight", &[8, 2]), range(fc1, 16));
            let b = base(&format!("{side}/layer_0/ffn/layer_norm/beta"));
            assert_eq!(get(&l, "final_layer_norm.bias", &[2]), range(b, 2));
            let g = base(&format!("{side}/layer_norm/gamma"));
            assert_eq!(get(&mm.pp(side), "layer_norm.weight", &[2]), range(g, 2));
        }
        let ca = mm.pp("decoder.layers.0.encoder_attn");
        let kv = base("decoder/layer_0/attention/linear_1/weight");
        let kv_b = base("decoder/layer_0/attention/linear_1/bias");
        assert_eq!(get(&ca, "k_proj.weight", &[2, 2]), range(kv, 4));
        assert_eq!(get(&ca, "v_proj.weight", &[2, 2]), range(kv + 4.0, 4));
        assert_eq!(get(&ca, "v_proj.bias", &[2]), range(kv_b + 2.0, 2));
        assert!(!ca.contains("k_proj.bias"));
        let q = base("decoder/layer_0/attention/linear_0/weight");
        assert_eq!(get(&ca, "q_proj.weight", &[2, 2]), range(q, 4));
        let o = base("decoder/layer_0/attention/linear_2/bias");
        assert_eq!(get(&ca, "out_proj.bias", &[2]), range(o, 2));
        let g = base("decoder/layer_0/attention/layer_norm/gamma");
        assert_eq!(
            get(
                &mm.pp("decoder.layers.0"),
                "encoder_attn_layer_norm.weight",
                &[2]
            ),
            range(g, 2)
        );
        // The encoder has no cross-attention, whatever the name says.
        assert!(!mm.contains("encoder.layers.0.encoder_attn.q_proj.weight"));
        let emb = base("decoder/embeddings/weight");
        assert_eq!(get(&vars, "proj_out.weight", &[5, 2]), range(emb, 10));
        assert_eq!(
            get(&mm, "decoder.embed_tokens.weight", &[5, 2]),
            range(emb, 10)
        );
        let pos = base("encoder/position_encodings/encodings");
        assert_eq!(
            get(&mm, "encoder.embed_positions.weight", &[4, 2]),
            range(pos, 8)
        );
        let conv = base("encoder/conv1/weight");
        assert_eq!(
            get(&vars, "encoder.conv1.weight", &[2, 3, 3]),
            range(conv, 18)
        );
        // CTranslate2 names through Vars (`.` read as `/`), and shapes.
        let ffn = vars.pp("encoder").pp("layer_0").pp("ffn");
        assert_eq!(
            get(&ffn, "linear_0.weight", &[8, 2]),
            range(base("encoder/layer_0/ffn/linear_0/weight"), 16)
        );
        assert_eq!(
            m.shape("model.decoder.layers.0.encoder_attn.v_proj.weight"),
            Some(vec![2, 2])
        );
        assert_eq!(
            m.shape("decoder/layer_0/attention/linear_1/weight"),
            Some(vec![4, 2])
        );
        assert_eq!(m.attribute("decoder/num_heads"), Some(Attribute::Int(1)));
        // Shape errors name the Hugging Face key and the file.
        let e = mm
            .pp("decoder.layers.0.encoder_attn")
            .f32("k_proj.weight", &[4, 2])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.decoder.layers.0.encoder_attn.k_proj.weight")
                && e.contains("model.bin")
                && e.contains("[2, 2]"),
            "{e}"
        );
        // The files beside model.bin.
        assert_eq!(vocabulary(&dir).unwrap().unwrap().len(), 3);
        assert_eq!(config(&dir).unwrap().unwrap()["lang_ids"][1], 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hugging_face_names_only_for_whisper() {
        let vars = vec![var("decoder/embeddings/weight", &[1, 1], 0, f32s(&[1.0]))];
        let m = ModelBin::from_bytes("t.bin", write(6, "TransformerSpec", &vars, &[])).unwrap();
        assert!(m.contains("decoder.embeddings.weight"));
        assert!(!m.contains("model.decoder.embed_tokens.weight"));
    }

    #[test]
    fn checkpoint_open_finds_model_bin() {
        let dir = tmp("none");
        let e = Checkpoint::open(&dir).err().unwrap().to_string();
        assert!(
            e.contains("model.bin") && e.contains("model.safetensors"),
            "{e}"
        );
        std::fs::write(dir.join(MODEL_FILE), b"\x07\0\0\0").unwrap();
        let e = Checkpoint::open(&dir).err().unwrap().to_string();
        assert!(
            e.contains("binary version 7") && e.contains("model.bin"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
