//! Vanishing gradients, measured with the engine's own backward: the norm of the gradient of
//! a loss J at the last step T with respect to each step's input, `||dJ / dx_t||` for
//! t = 1..T (`wgrnn grad-flow`).
//!
//! - A fresh stack (PyTorch's initialisation from the seed): inputs `x_t ~ N(0, 1)` (seeded),
//!   one sequence, `J = sum(h_T)` of the top layer's output at the last step.
//! - A trained recurrent language model: the first T + 1 tokens of its validation split, x_t
//!   the embeddings of tokens 1..T, J the cross-entropy of token T + 1 (dropout off).
//!
//! Each curve is one forward and one backward in one submission; the T row norms are
//! computed from the read-back `[T, 1, I]` input gradient.

use std::path::Path;

use plotters::prelude::*;

use super::{LanguageModel, LmCheckpoint, validation_ids};
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::models::checkpoint;
use crate::models::metrics::draw_png;
use crate::nn::{normal, record_softmax_cross_entropy};
use crate::rnn::{ForwardInputs, Mode, Rnn, RnnConfig, Upstream};
use crate::tensor::{DType, Tensor};

/// One model's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// What the `model` column and the legend say.
    pub label: String,
    /// `norms[t - 1] = ||dJ / dx_t||`, t = 1..T.
    pub norms: Vec<f64>,
}

/// A fresh stack to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FreshStack {
    /// The cell.
    pub mode: Mode,
    /// Input size I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Layers L.
    pub layers: usize,
}

/// The inputs of a fresh stack's measurement: `[T, 1, I]`, N(0, 1) from `seed`.
pub fn fresh_inputs(input: usize, seq_len: usize, seed: u64) -> Vec<f32> {
    normal(seed ^ 0x9e37_79b9_7f4a_7c15, seq_len * input)
}

/// The Euclidean norm of each of the `rows` rows of `v`.
fn row_norms(v: &[f32], rows: usize) -> Vec<f64> {
    let w = v.len() / rows.max(1);
    v.chunks(w.max(1))
        .take(rows)
        .map(|r| {
            r.iter()
                .map(|&x| (x as f64) * (x as f64))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The curve of a fresh stack (weights from `seed`, inputs from [`fresh_inputs`]).
pub fn fresh(ctx: &Context, s: &FreshStack, seq_len: usize, seed: u64) -> Result<Curve> {
    if seq_len == 0 {
        return Err(Error::config("--seq-len must be >= 1"));
    }
    let cfg = RnnConfig::new(s.mode, s.input, s.hidden).layers(s.layers);
    let rnn = Rnn::random(ctx, &cfg, seed)?;
    let x = Tensor::from_f32(
        ctx,
        "grad-flow input",
        &[seq_len, 1, s.input],
        &fresh_inputs(s.input, seq_len, seed),
    )?;
    let mut dy = vec![0f32; seq_len * s.hidden];
    dy[(seq_len - 1) * s.hidden..].fill(1.0); // J = sum(h_T)
    let dy = Tensor::from_f32(ctx, "dJ/dh", &[seq_len, 1, s.hidden], &dy)?;
    let mut rec = Recorder::new(ctx);
    let (_, saved) = rnn.record_forward(&mut rec, &x, &ForwardInputs::default(), true)?;
    let saved = saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
    let up = Upstream {
        output: Some(&dy),
        ..Default::default()
    };
    let g = rnn.record_backward(&mut rec, &saved, &up, None)?;
    rec.submit()?;
    Ok(Curve {
        label: format!(
            "{} H={} L={} fresh",
            s.mode.torch_name().to_lowercase(),
            s.hidden,
            s.layers
        ),
        norms: row_norms(&g.input.to_vec(ctx)?, seq_len),
    })
}

/// The curve of a trained recurrent language model at `dir` (a checkpoint or a training
/// output), on its training file's validation split (`data` overrides the file).
pub fn trained(ctx: &Context, dir: &Path, data: Option<&Path>, seq_len: usize) -> Result<Curve> {
    if seq_len == 0 {
        return Err(Error::config("--seq-len must be >= 1"));
    }
    let dir = checkpoint::resolve(dir)?;
    let conf = checkpoint::read_config(&dir, "lm")?;
    let mut info = LmCheckpoint::from_config(&conf, &dir.join("config.json"), dir.clone())?;
    if info.config.is_window() {
        return Err(Error::config(format!(
            "{}: grad-flow needs a recurrent model; this is a fixed-window model",
            dir.display()
        )));
    }
    info.config.dropout = 0.0; // the measurement is of the model, not of a dropout mask
    let model = LanguageModel::new(ctx, &info.vocab, &info.config)?;
    model.load_tensors(ctx, &dir)?;
    let data = data.map_or_else(|| info.data.clone().into(), Path::to_path_buf);
    let ids = validation_ids(&info, &data)?;
    if ids.len() < seq_len + 1 {
        return Err(Error::config(format!(
            "--seq-len {seq_len}: the validation split of {} has only {} tokens",
            data.display(),
            ids.len()
        )));
    }
    let h = info.config.hidden;
    let inputs = model.embedding.ids(ctx, &[seq_len, 1], &ids[..seq_len])?;
    let target = model.embedding.ids(ctx, &[1], &ids[seq_len..seq_len + 1])?;
    let rnn = model.rnn()?;
    let mut rec = Recorder::new(ctx);
    let x = model.embedding.record_forward(&mut rec, &inputs)?;
    let (out, saved) = rnn.record_forward(&mut rec, &x, &ForwardInputs::default(), true)?;
    let saved = saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
    let last = Tensor::empty(ctx, "last output", &[1, h], DType::F32)?;
    rec.copy(&out.output, (seq_len - 1) * h, &last, 0, h)?;
    let logits = model.decoder.record_forward(&mut rec, &last)?;
    let ce = record_softmax_cross_entropy(&mut rec, &logits, &target, None, true)?;
    let dlogits = ce.grad()?;
    let ddec = model.decoder.zero_grads(ctx)?;
    let dlast = model
        .decoder
        .record_backward(&mut rec, &last, dlogits, &ddec, false)?;
    let dout = Tensor::zeros(ctx, "dJ/dh", &[seq_len, 1, h])?;
    rec.copy(&dlast, 0, &dout, (seq_len - 1) * h, h)?;
    let up = Upstream {
        output: Some(&dout),
        ..Default::default()
    };
    let g = rnn.record_backward(&mut rec, &saved, &up, None)?;
    rec.submit()?;
    let c = &info.config;
    Ok(Curve {
        label: format!(
            "{} H={} L={} trained ({} steps)",
            c.mode, c.hidden, c.layers, info.step
        ),
        norms: row_norms(&g.input.to_vec(ctx)?, seq_len),
    })
}

/// Writes `png` (the curves on a log scale) and the CSV beside it (`png` with extension
/// `.csv`; columns `t,norm,model`), each atomically.
pub fn write(png: &Path, curves: &[Curve]) -> Result<()> {
    let mut csv = String::from("t,norm,model\n");
    for c in curves {
        for (t, n) in c.norms.iter().enumerate() {
            csv.push_str(&format!(
                "{},{:e},{}\n",
                t + 1,
                n,
                c.label.replace(',', ";")
            ));
        }
    }
    write_atomic(&png.with_extension("csv"), csv.as_bytes())?;
    let finite = curves
        .iter()
        .flat_map(|c| c.norms.iter().copied())
        .filter(|n| n.is_finite() && *n > 0.0);
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(0.0, f64::max);
    let (lo, hi) = if lo <= hi {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e-12, 1.0)
    };
    let t_max = curves
        .iter()
        .map(|c| c.norms.len())
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    draw_png(png, (900, 540), "the curves", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "gradient reaching each step: ||dJ_T / dx_t||",
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(1.0..t_max, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step t")
            .y_desc("gradient norm (log scale)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        const PALETTE: [RGBColor; 8] = [
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
            RGBColor(227, 119, 194),
            RGBColor(127, 127, 127),
        ];
        for (i, c) in curves.iter().enumerate() {
            let col = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = c
                .norms
                .iter()
                .enumerate()
                .filter(|(_, n)| n.is_finite() && **n > 0.0)
                .map(|(t, &n)| ((t + 1) as f64, n))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(c.label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], col.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}
