//! The heatmap's colours, read back from the rendered texture, agree with the weights that
//! `Model::cross_attentions` reads back for the same input: the GPU picture shows the
//! engine's numbers, for the mean over heads and for a single head, in every layer.

mod common;

use seqbridge_desktop::heatmap::colormap;
use seqbridge_desktop::worker::shipped_model;
use seqbridge_models::{GenerateOptions, Model};

use common::{DATE, harness, translate};

#[test]
fn rendered_cells_have_the_colours_of_model_cross_attentions() {
    let mut h = harness();
    translate(&mut h, DATE);
    let map = h.state().app().map().unwrap().clone();

    // The same input through the library, on the app's own device.
    let model = Model::load(shipped_model(), h.state().app().gpu()).unwrap();
    let tok = model.tokenizer().unwrap();
    let source = tok.encode(DATE).unwrap();
    let opts = GenerateOptions {
        num_beams: Some(1),
        max_new_tokens: Some(32),
        ..Default::default()
    };
    let g = model
        .generate(std::slice::from_ref(&source), &opts)
        .unwrap();
    let seq = &g.sequences[0][0];
    let dec_in = &seq[..seq.len() - 1];
    let layers = model.cross_attentions(&source, dec_in).unwrap();
    let (rows, cols) = (dec_in.len(), source.len());
    assert_eq!((map.rows(), map.cols()), (rows, cols));
    let heads = layers[0].len() / (rows * cols);

    let mut checked = 0;
    for (layer, probs) in layers.iter().enumerate() {
        for head in [None, Some(heads - 1)] {
            h.state_mut().app_mut().select(layer, head);
            h.run_steps(2);
            let image = h.render().unwrap();
            let at = h.state().app().heatmap_at().unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    let p = at.cell_centre(rows, cols, r, c);
                    let px = image.get_pixel(p.x as u32, p.y as u32).0;
                    let at_head = |hd: usize| probs[(hd * rows + r) * cols + c];
                    let w = match head {
                        Some(hd) => at_head(hd),
                        None => (0..heads).map(at_head).sum::<f32>() / heads as f32,
                    };
                    let want = colormap(w).map(|v| (v * 255.0).round() as i32);
                    for ch in 0..3 {
                        // One level for the shader's f32 against ours, one for the target's rounding.
                        assert!(
                            (i32::from(px[ch]) - want[ch]).abs() <= 2,
                            "layer {layer} head {head:?} cell ({r}, {c}): weight {w}, drawn {px:?}, expected {want:?}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, layers.len() * 2 * rows * cols);
}
