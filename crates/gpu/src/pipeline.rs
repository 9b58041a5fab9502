//! Kernel families, specialisation keys and the pipeline cache.
//!
//! A kernel is compiled once per [`KernelKey`]: the family (which WGSL file), the entry point
//! and the constants it was specialised for (tile sizes, workgroup size, weight dtype,
//! epilogue). The constants become WGSL `const` declarations in front of the family's source,
//! and boolean constants also drive `//#if NAME` / `//#else` / `//#endif` lines, so variants
//! that need different features (subgroups) come from one source. Shared WGSL [`Module`]s
//! (the workgroup reductions) are composed only into the families that list them in
//! [`Family::modules`], through the same preprocessor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gate::GlGate;

/// One WGSL file in `shaders/` per family. Adding a family touches this table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Elementwise,
    Matmul,
    Softmax,
    Attention,
    Norm,
    Embedding,
    Sampling,
    Cache,
    PositionBias,
    Conv,
    LogitRules,
    TokenMask,
    Heads,
    Roofline,
    NextIds,
}

macro_rules! shader {
    ($file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shaders/",
            $file
        ))
    };
}

/// Helpers every kernel can use (grid indexing, f16 weight loads).
const COMMON: &str = shader!("common.wgsl");

impl Family {
    pub const ALL: [Family; 15] = [
        Family::Elementwise,
        Family::Matmul,
        Family::Softmax,
        Family::Attention,
        Family::Norm,
        Family::Embedding,
        Family::Sampling,
        Family::Cache,
        Family::PositionBias,
        Family::Conv,
        Family::LogitRules,
        Family::TokenMask,
        Family::Heads,
        Family::Roofline,
        Family::NextIds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Elementwise => "elementwise",
            Family::Matmul => "matmul",
            Family::Softmax => "softmax",
            Family::Attention => "attention",
            Family::Norm => "norm",
            Family::Embedding => "embedding",
            Family::Sampling => "sampling",
            Family::Cache => "cache",
            Family::PositionBias => "position_bias",
            Family::Conv => "conv",
            Family::LogitRules => "logit_rules",
            Family::TokenMask => "token_mask",
            Family::Heads => "heads",
            Family::Roofline => "roofline",
            Family::NextIds => "next_ids",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Family::Elementwise => shader!("elementwise.wgsl"),
            Family::Matmul => shader!("matmul.wgsl"),
            Family::Softmax => shader!("softmax.wgsl"),
            Family::Attention => shader!("attention.wgsl"),
            Family::Norm => shader!("norm.wgsl"),
            Family::Embedding => shader!("embedding.wgsl"),
            Family::Sampling => shader!("sampling.wgsl"),
            Family::Cache => shader!("cache.wgsl"),
            Family::PositionBias => shader!("position_bias.wgsl"),
            Family::Conv => shader!("conv.wgsl"),
            Family::LogitRules => shader!("logit_rules.wgsl"),
            Family::TokenMask => shader!("token_mask.wgsl"),
            Family::Heads => shader!("heads.wgsl"),
            Family::Roofline => shader!("roofline.wgsl"),
            Family::NextIds => shader!("next_ids.wgsl"),
        }
    }

    /// The shared modules composed in front of this family's source.
    pub fn modules(self) -> &'static [Module] {
        match self {
            Family::Softmax
            | Family::Attention
            | Family::Norm
            | Family::Sampling
            | Family::LogitRules => &[Module::Reduce],
            Family::Elementwise => &[Module::Activation],
            Family::Matmul => &[Module::Activation, Module::NormPrologue],
            Family::Embedding
            | Family::Cache
            | Family::PositionBias
            | Family::Conv
            | Family::Heads
            | Family::TokenMask
            | Family::Roofline
            | Family::NextIds => &[],
        }
    }
}

/// A WGSL file in `shaders/` that families opt into through [`Family::modules`]. It relies on
/// constants the family's keys define; its header states which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// Workgroup sum and max (subgroup and shared-tree variants); needs `WG` and `SUBGROUPS`.
    Reduce,
    /// The activation functions (gelu erf, gelu tanh, relu, silu) and `activate`, which
    /// applies the one `ACT` selects; needs `ACT`.
    Activation,
    /// Matmul's row normalisation of A (`NORM_A`, `RMS_A`, `KEEP`); with `NORM_A` it needs
    /// the rows kernel's `MR`, `WG`, `SUBGROUPS`, `MAX_SG` and `red`.
    NormPrologue,
}

impl Module {
    pub fn file(self) -> &'static str {
        match self {
            Module::Reduce => "reduce.wgsl",
            Module::Activation => "activation.wgsl",
            Module::NormPrologue => "norm_prologue.wgsl",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Module::Reduce => shader!("reduce.wgsl"),
            Module::Activation => shader!("activation.wgsl"),
            Module::NormPrologue => shader!("norm_prologue.wgsl"),
        }
    }
}

/// A specialisation constant's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Const {
    U32(u32),
    Bool(bool),
}

/// What a kernel was specialised for; the pipeline cache's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub family: Family,
    pub entry: &'static str,
    /// Constants in the order they are declared; every name must be used by the source's
    /// `const` references or `//#if` lines, and every `//#if` name must be here.
    pub consts: Vec<(&'static str, Const)>,
}

impl KernelKey {
    pub fn new(family: Family, entry: &'static str) -> Self {
        KernelKey {
            family,
            entry,
            consts: Vec::new(),
        }
    }

    pub fn u32(mut self, name: &'static str, v: u32) -> Self {
        self.consts.push((name, Const::U32(v)));
        self
    }

    pub fn flag(mut self, name: &'static str, v: bool) -> Self {
        self.consts.push((name, Const::Bool(v)));
        self
    }

    fn flag_value(&self, name: &str) -> Option<bool> {
        self.consts.iter().find_map(|(n, c)| match c {
            Const::Bool(b) if *n == name => Some(*b),
            _ => None,
        })
    }
}

/// Whether a storage binding is read or written by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The storage bindings of a kernel: `(binding index, access)`, binding 0 being the params.
pub type Bindings = &'static [(u32, Access)];

/// A compiled kernel: pipeline plus the layout its bind groups must follow.
pub struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) bindings: Bindings,
    /// Bytes of the params binding (the struct size rounded up to 16).
    pub(crate) params_size: u64,
    pub(crate) family: Family,
    pub(crate) label: String,
    /// Unique per kernel built in this process (the bind group cache's key).
    pub(crate) id: u64,
}

/// Ids of built kernels.
static NEXT_KERNEL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Kernel {
    pub fn family(&self) -> Family {
        self.family
    }
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Builds the full WGSL text of a kernel: constants, params struct, common helpers, the
/// family's modules, then the family's source, `//#if` lines resolved in each.
pub fn compose_source(key: &KernelKey, params_wgsl: &str) -> Result<String> {
    let mut out = String::new();
    for (name, c) in &key.consts {
        match c {
            Const::U32(v) => out.push_str(&format!("const {name}: u32 = {v}u;\n")),
            Const::Bool(b) => out.push_str(&format!("const {name}: bool = {b};\n")),
        }
    }
    out.push_str(params_wgsl);
    out.push_str("@group(0) @binding(0) var<uniform> params: Params;\n");
    out.push_str(COMMON);
    for module in key.family.modules() {
        out.push_str(&preprocess(key, module.file(), module.source())?);
    }
    let file = format!("{}.wgsl", key.family.name());
    out.push_str(&preprocess(key, &file, key.family.source())?);
    Ok(out)
}

/// Resolves `//#if NAME`, `//#if !NAME`, `//#else` and `//#endif` lines of `src`, which
/// errors call `file`.
fn preprocess(key: &KernelKey, file: &str, src: &str) -> Result<String> {
    let err = |msg: String| Error::Compile {
        kernel: format!("{}::{}", key.family.name(), key.entry),
        msg: format!("{file} {msg}"),
    };
    // Each open block: (this branch is kept, the enclosing block is kept).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut out = String::with_capacity(src.len());
    for (n, line) in src.lines().enumerate() {
        let t = line.trim();
        let active = stack.last().is_none_or(|&(keep, _)| keep);
        if let Some(cond) = t.strip_prefix("//#if ") {
            let cond = cond.trim();
            let (neg, name) = match cond.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, cond),
            };
            let v = key.flag_value(name).ok_or_else(|| {
                err(format!(
                    "line {}: //#if {name} has no boolean constant in the key",
                    n + 1
                ))
            })?;
            stack.push((active && (v != neg), active));
        } else if t == "//#else" {
            let top = stack
                .last_mut()
                .ok_or_else(|| err(format!("line {}: //#else without //#if", n + 1)))?;
            top.0 = top.1 && !top.0;
        } else if t == "//#endif" {
            stack
                .pop()
                .ok_or_else(|| err(format!("line {}: //#endif without //#if", n + 1)))?;
        } else if active {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !stack.is_empty() {
        return Err(err("unterminated //#if".into()));
    }
    Ok(out)
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    kernels: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
}

impl PipelineCache {
    pub fn get_or_build(
        &self,
        device: &wgpu::Device,
        gate: &GlGate,
        key: &KernelKey,
        params_wgsl: &str,
        params_size: usize,
        bindings: Bindings,
    ) -> Result<Arc<Kernel>> {
        if let Some(k) = self.kernels.lock().map_err(poisoned)?.get(key) {
            return Ok(k.clone());
        }
        let kernel = {
            let _gl = gate.enter();
            Arc::new(build(device, key, params_wgsl, params_size, bindings)?)
        };
        self.kernels
            .lock()
            .map_err(poisoned)?
            .insert(key.clone(), kernel.clone());
        Ok(kernel)
    }

    pub fn len(&self) -> usize {
        self.kernels.lock().map(|k| k.len()).unwrap_or(0)
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Device("pipeline cache lock poisoned".into())
}

fn build(
    device: &wgpu::Device,
    key: &KernelKey,
    params_wgsl: &str,
    params_size: usize,
    bindings: Bindings,
) -> Result<Kernel> {
    let label = format!("{}::{}", key.family.name(), key.entry);
    let source = compose_source(key, params_wgsl)?;
    let params_size = (params_size as u64).div_ceil(16) * 16;

    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(params_size),
        },
        count: None,
    }];
    for &(binding, access) in bindings {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: access == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }

    // Compile errors come back as values, not through wgpu's panicking default handler.
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&label),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(key.entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &[],
            // Kernels initialise the workgroup memory they read; skipping the zero-fill saves a
            // pass over shared memory per workgroup.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Compile {
            kernel: format!("{label} {:?}", key.consts),
            msg: e.to_string(),
        });
    }
    Ok(Kernel {
        pipeline,
        layout,
        bindings,
        params_size,
        family: key.family,
        label,
        id: NEXT_KERNEL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_keeps_the_chosen_branches() {
        let key = KernelKey::new(Family::Elementwise, "x")
            .flag("A", true)
            .flag("B", false);
        let src = "x\n//#if A\na\n//#if B\nab\n//#else\nanb\n//#endif\n//#else\nna\n//#endif\n//#if !B\nnb\n//#endif\n";
        assert_eq!(preprocess(&key, "t.wgsl", src).unwrap(), "x\na\nanb\nnb\n");
    }

    #[test]
    fn preprocess_rejects_unknown_and_unbalanced() {
        let key = KernelKey::new(Family::Elementwise, "x");
        assert!(preprocess(&key, "t.wgsl", "//#if C\n//#endif\n").is_err());
        let key = key.flag("C", true);
        assert!(preprocess(&key, "t.wgsl", "//#if C\n").is_err());
        assert!(preprocess(&key, "t.wgsl", "//#endif\n").is_err());
    }

    const PARAMS: &str = "struct Params { n: u32, }\n";

    fn norm_key() -> KernelKey {
        KernelKey::new(Family::Norm, "layer_norm")
            .u32("WG", 64)
            .u32("VPT", 1)
            .flag("VPT_REGS", false)
    }

    /// The composed text without comments.
    fn code(src: &str) -> String {
        src.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn compose_puts_modules_between_common_and_the_family() {
        let src = compose_source(&norm_key().flag("SUBGROUPS", false), PARAMS).unwrap();
        let at = |s: &str| {
            assert_eq!(src.matches(s).count(), 1, "{s} once");
            src.find(s).unwrap()
        };
        assert!(at("fn group_index(") < at("fn wg_reduce("));
        assert!(at("fn wg_reduce(") < at("fn layer_norm("));
        assert!(src.starts_with("const WG: u32 = 64u;\n"));
        // The module's branches follow the key like the family's.
        assert!(!code(&src).contains("subgroup"));
        let src = compose_source(&norm_key().flag("SUBGROUPS", true), PARAMS).unwrap();
        assert!(code(&src).contains("subgroupAdd("));

        let src = compose_source(
            &KernelKey::new(Family::Elementwise, "add").u32("WG", 64),
            PARAMS,
        );
        assert!(!src.unwrap().contains("wg_reduce"));
    }

    #[test]
    fn compose_names_the_module_a_key_does_not_fit() {
        match compose_source(&norm_key(), PARAMS) {
            Err(Error::Compile { msg, .. }) => {
                assert!(msg.starts_with("reduce.wgsl line "), "{msg}");
                assert!(msg.contains("SUBGROUPS"), "{msg}");
            }
            other => panic!("expected a compile error, got {other:?}"),
        }
    }

    /// Families that call a module's functions list the module, and only those: the others
    /// are composed without it. No family defines the module's functions again.
    #[test]
    fn modules_match_what_families_use() {
        let calls: [(Module, &[&str]); 2] = [
            (
                Module::Reduce,
                &["LocalIds", "wg_sum(", "wg_max(", "wg_reduce("],
            ),
            (
                Module::Activation,
                &["activate(", "gelu_erf(", "gelu_tanh("],
            ),
        ];
        for f in Family::ALL {
            for (module, names) in calls {
                let uses = names.iter().any(|s| code(f.source()).contains(s));
                assert_eq!(
                    uses,
                    f.modules().contains(&module),
                    "{}.wgsl and {}",
                    f.name(),
                    module.file()
                );
                for name in names {
                    let def = format!("fn {name}");
                    assert!(
                        !code(f.source()).contains(&def),
                        "{}.wgsl defines {name} again",
                        f.name()
                    );
                }
            }
        }
    }
}
