//! The cross-attention heatmap. The picture is drawn by a small render pipeline
//! (`heatmap.wgsl`) inside an egui paint callback, reading the probabilities buffer that the
//! engine's attention kernel wrote: nothing goes through the host for it. The numbers in the
//! hover tooltip come from a host copy of the same buffer.

use std::sync::Arc;

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};
use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, RenderState, ScreenDescriptor};
use eframe::wgpu;
use seqbridge_gpu::Tensor;

/// Colour stops, low weight to high, in sRGB bytes: the shader gets them from here
/// (`shader_source`) and [`colormap`] reads the same table.
pub const STOPS: [[u8; 3]; 5] = [
    [16, 18, 32],
    [58, 44, 122],
    [176, 54, 120],
    [246, 132, 56],
    [252, 240, 166],
];

/// The colour of weight `p` (clamped to 0..1), sRGB in 0..1: piecewise linear over [`STOPS`],
/// as `colormap` in the shader computes it.
pub fn colormap(p: f32) -> [f32; 3] {
    let n = STOPS.len();
    let t = p.clamp(0.0, 1.0) * (n - 1) as f32;
    let i = (t.floor() as usize).min(n - 2);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    std::array::from_fn(|c| {
        let (a, b) = (f32::from(a[c]) / 255.0, f32::from(b[c]) / 255.0);
        a + (b - a) * f
    })
}

fn shader_source() -> String {
    let stops: Vec<String> = STOPS
        .iter()
        .map(|s| {
            format!(
                "vec3<f32>({:?}, {:?}, {:?})",
                f32::from(s[0]) / 255.0,
                f32::from(s[1]) / 255.0,
                f32::from(s[2]) / 255.0
            )
        })
        .collect();
    format!(
        "const N_STOPS: u32 = {}u;\nconst STOPS = array<vec3<f32>, {}>({});\n{}",
        STOPS.len(),
        STOPS.len(),
        stops.join(", "),
        include_str!("heatmap.wgsl")
    )
}

/// `Params` of heatmap.wgsl (48 bytes: the WGSL struct's size, tested below).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    heads: u32,
    head: u32,
    srgb_target: u32,
    _pad: [u32; 3],
    origin: [f32; 2],
    size: [f32; 2],
}

/// The cross-attention of one result, on the GPU (for the picture) and on the host (for the
/// hover numbers), with the tokens that label its axes.
pub struct AttentionMap {
    /// Per decoder layer, f32 `[1, heads, rows, cols]` as the attention kernel wrote it.
    pub layers: Vec<Tensor>,
    /// The same, read back once (tooltips and tests).
    pub host: Vec<Vec<f32>>,
    pub heads: usize,
    /// Target tokens (rows: the query that produced each) and source tokens (columns).
    pub target_tokens: Vec<String>,
    pub source_tokens: Vec<String>,
}

impl AttentionMap {
    pub fn rows(&self) -> usize {
        self.target_tokens.len()
    }
    pub fn cols(&self) -> usize {
        self.source_tokens.len()
    }

    /// The weight the shader draws at (`row`, `col`): one head's, or the mean over heads.
    pub fn weight(&self, layer: usize, head: Option<usize>, row: usize, col: usize) -> f32 {
        let (rows, cols) = (self.rows(), self.cols());
        let Some(probs) = self.host.get(layer) else {
            return 0.0;
        };
        let at = |h: usize| {
            probs
                .get((h * rows + row) * cols + col)
                .copied()
                .unwrap_or(0.0)
        };
        match head {
            Some(h) => at(h),
            None => (0..self.heads).map(at).sum::<f32>() / self.heads.max(1) as f32,
        }
    }
}

/// The pipeline, kept in egui's callback resources.
struct Pipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    srgb_target: bool,
    /// Made in `prepare` for the map being drawn, used in `paint`.
    bind_group: Option<wgpu::BindGroup>,
}

/// Builds the pipeline for the window's target format and hands it to egui's renderer.
/// Drawn without multisampling or depth, as the app's renderer is configured.
pub fn install(rs: &RenderState) {
    let device = &rs.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("heatmap"),
        source: wgpu::ShaderSource::Wgsl(shader_source().into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("heatmap"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(size_of::<Params>() as u64),
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("heatmap"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("heatmap"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(rs.target_format.into())],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let params = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("heatmap params"),
        size: size_of::<Params>() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    rs.renderer.write().callback_resources.insert(Pipeline {
        pipeline,
        layout,
        params,
        srgb_target: rs.target_format.is_srgb(),
        bind_group: None,
    });
}

/// One frame's heatmap: which layer and head of which map.
struct Callback {
    map: Arc<AttentionMap>,
    layer: usize,
    head: Option<usize>,
    rect: Rect,
}

impl CallbackTrait for Callback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get_mut::<Pipeline>() else {
            return Vec::new();
        };
        let Some(tensor) = self.map.layers.get(self.layer) else {
            p.bind_group = None;
            return Vec::new();
        };
        let ppp = screen.pixels_per_point;
        let params = Params {
            rows: self.map.rows() as u32,
            cols: self.map.cols() as u32,
            heads: self.map.heads as u32,
            head: self.head.map_or(u32::MAX, |h| h as u32),
            srgb_target: u32::from(p.srgb_target),
            _pad: [0; 3],
            origin: [self.rect.min.x * ppp, self.rect.min.y * ppp],
            size: [self.rect.width() * ppp, self.rect.height() * ppp],
        };
        queue.write_buffer(&p.params, 0, bytemuck::bytes_of(&params));
        p.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap"),
            layout: &p.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: p.params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: tensor.buffer(),
                        offset: tensor.byte_offset(),
                        size: wgpu::BufferSize::new(tensor.byte_len()),
                    }),
                },
            ],
        }));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(p) = resources.get::<Pipeline>() else {
            return;
        };
        let Some(bg) = &p.bind_group else {
            return;
        };
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, bg, &[]);
        pass.draw(0..3, 0..1);
    }
}

/// Where the last frame drew the map (tests read the pixels there).
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// The whole panel: labels and grid.
    pub panel: Rect,
    /// The grid of cells alone.
    pub grid: Rect,
}

impl Placement {
    /// The centre of cell (`row`, `col`) of a `rows` × `cols` map, in points.
    pub fn cell_centre(&self, rows: usize, cols: usize, row: usize, col: usize) -> Pos2 {
        let cell = self.grid.size() / Vec2::new(cols as f32, rows as f32);
        self.grid.min + Vec2::new((col as f32 + 0.5) * cell.x, (row as f32 + 0.5) * cell.y)
    }
}

const MAX_CELL: f32 = 26.0;

/// Draws the map with its token labels; hovering a cell shows its tokens and weight.
pub fn show(
    ui: &mut egui::Ui,
    map: &Arc<AttentionMap>,
    layer: usize,
    head: Option<usize>,
) -> Placement {
    let (rows, cols) = (map.rows().max(1), map.cols().max(1));
    let font = egui::FontId::monospace(11.0);
    let color = ui.visuals().text_color();
    let galleys = |tokens: &[String]| -> Vec<Arc<egui::Galley>> {
        tokens
            .iter()
            .map(|t| ui.painter().layout_no_wrap(t.clone(), font.clone(), color))
            .collect()
    };
    let (row_labels, col_labels) = (galleys(&map.target_tokens), galleys(&map.source_tokens));
    let widest = |g: &[Arc<egui::Galley>]| g.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let left = widest(&row_labels) + 6.0;
    let top = widest(&col_labels) + 6.0;
    let cell = ((ui.available_width() - left) / cols as f32).clamp(4.0, MAX_CELL);
    let size = Vec2::new(left + cell * cols as f32, top + cell * rows as f32);
    let (panel, response) = ui.allocate_exact_size(size, Sense::hover());
    let grid = Rect::from_min_size(
        panel.min + Vec2::new(left, top),
        Vec2::new(cell * cols as f32, cell * rows as f32),
    );
    let painter = ui.painter_at(panel);
    for (r, g) in row_labels.into_iter().enumerate() {
        let y = grid.min.y + (r as f32 + 0.5) * cell - g.size().y / 2.0;
        painter.galley(Pos2::new(grid.min.x - 4.0 - g.size().x, y), g, color);
    }
    for (c, g) in col_labels.into_iter().enumerate() {
        // Rotated a quarter turn: the text runs upwards from just above its column.
        let x = grid.min.x + (c as f32 + 0.5) * cell - g.size().y / 2.0;
        let shape = egui::epaint::TextShape::new(Pos2::new(x, grid.min.y - 4.0), g, color)
            .with_angle(-std::f32::consts::FRAC_PI_2);
        painter.add(shape);
    }
    painter.add(egui_wgpu::Callback::new_paint_callback(
        grid,
        Callback {
            map: map.clone(),
            layer,
            head,
            rect: grid,
        },
    ));
    if let Some(pos) = response.hover_pos().filter(|p| grid.contains(*p)) {
        let col = (((pos.x - grid.min.x) / cell) as usize).min(cols - 1);
        let row = (((pos.y - grid.min.y) / cell) as usize).min(rows - 1);
        let cell_rect = Rect::from_min_size(
            grid.min + Vec2::new(col as f32 * cell, row as f32 * cell),
            Vec2::splat(cell),
        );
        painter.rect_stroke(
            cell_rect,
            0.0,
            Stroke::new(1.5, Color32::WHITE),
            egui::StrokeKind::Inside,
        );
        let w = map.weight(layer, head, row, col);
        let (src, tgt) = (&map.source_tokens[col], &map.target_tokens[row]);
        response.on_hover_text_at_pointer(format!(
            "source {src:?} (#{col})\ntarget {tgt:?} (#{row})\nweight {w:.4}"
        ));
    }
    Placement { panel, grid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_hits_its_stops_and_clamps() {
        let byte = |c: [f32; 3]| c.map(|v| (v * 255.0).round() as u8);
        assert_eq!(byte(colormap(0.0)), STOPS[0]);
        assert_eq!(byte(colormap(0.5)), STOPS[2]);
        assert_eq!(byte(colormap(1.0)), STOPS[4]);
        assert_eq!(byte(colormap(-3.0)), STOPS[0]);
        assert_eq!(byte(colormap(7.0)), STOPS[4]);
        // Halfway between the first two stops.
        let mid = byte(colormap(0.125));
        assert_eq!(mid, [37, 31, 77]);
    }

    #[test]
    fn params_match_the_wgsl_struct() {
        let module = naga::front::wgsl::parse_str(&shader_source()).expect("heatmap.wgsl parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .expect("Params in heatmap.wgsl");
        naga::valid::Validator::new(Default::default(), naga::valid::Capabilities::empty())
            .validate(&module)
            .expect("heatmap.wgsl validates");
        let wgsl_size = ty.inner.size(module.to_ctx());
        assert_eq!(wgsl_size as usize, size_of::<Params>());
    }
}
