//! Training curves: `metrics.csv` (one row per logged step) and a PNG of the curves drawn with
//! plotters (fonts from the DejaVu Sans file shipped in `assets/fonts`, so a machine without
//! fonts draws the same picture). Both are rewritten atomically at every log.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::files::write_atomic;

/// One logged step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// Optimiser steps taken.
    pub step: u64,
    /// Mean training loss over the steps since the previous row (nats per token).
    pub train_loss: f64,
    /// Validation loss at this step, when it was measured.
    pub val_loss: Option<f64>,
    /// Training tokens per second since the previous row.
    pub tokens_per_s: f64,
    /// A fifth column some families log (translation: the validation perplexity).
    pub extra: Option<f64>,
}

/// The log of a training run.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// The rows in step order.
    pub rows: Vec<Row>,
}

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled in; registration cannot fail then.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

impl Metrics {
    /// Reads `path` (written by [`Metrics::write_csv`] with header `header`), keeping rows up to
    /// step `upto`: a resumed run continues from its checkpoint's step, and rows a crashed run
    /// logged after it are dropped. A missing file is an empty log.
    pub fn read_csv(path: &Path, upto: u64) -> Result<Metrics> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Metrics::default()),
            Err(e) => {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    source: e,
                });
            }
        };
        let bad = |line: usize| Error::Format {
            path: path.display().to_string(),
            problem: format!("line {line}: expected step,train_loss,val_loss,tokens_per_s[,extra]"),
        };
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 4 && f.len() != 5 {
                return Err(bad(i + 1));
            }
            let num = |s: &str| s.parse::<f64>().map_err(|_| bad(i + 1));
            let row = Row {
                step: f[0].parse().map_err(|_| bad(i + 1))?,
                train_loss: num(f[1])?,
                val_loss: if f[2].is_empty() {
                    None
                } else {
                    Some(num(f[2])?)
                },
                tokens_per_s: num(f[3])?,
                extra: match f.get(4) {
                    Some(v) if !v.is_empty() => Some(num(v)?),
                    _ => None,
                },
            };
            if row.step <= upto {
                rows.push(row);
            }
        }
        Ok(Metrics { rows })
    }

    /// Writes the log as CSV with the column names of `header` (4 names: step, train loss,
    /// validation loss, tokens per second; a fifth names the `extra` column), atomically.
    pub fn write_csv(&self, path: &Path, header: &str) -> Result<()> {
        let five = header.split(',').count() == 5;
        let mut s = format!("{header}\n");
        for r in &self.rows {
            s.push_str(&format!(
                "{},{:.6},{},{:.1}",
                r.step,
                r.train_loss,
                r.val_loss.map_or(String::new(), |v| format!("{v:.6}")),
                r.tokens_per_s
            ));
            if five {
                s.push_str(&format!(
                    ",{}",
                    r.extra.map_or(String::new(), |v| format!("{v:.6}"))
                ));
            }
            s.push('\n');
        }
        write_atomic(path, s.as_bytes())
    }

    /// Draws training loss and a validation measure (`second` of each row, e.g. its
    /// `val_loss`) against steps into a PNG at `path` (written atomically), with `title` on
    /// top, `unit` naming the vertical axis and the second curve labelled `val_label`
    /// (`"validation loss"`, `"dev accuracy"`).
    pub fn plot(
        &self,
        path: &Path,
        title: &str,
        unit: &str,
        val_label: &str,
        second: fn(&Row) -> Option<f64>,
    ) -> Result<()> {
        draw_png(path, (900, 540), "the curves", |root| {
            let train: Vec<(f64, f64)> = self
                .rows
                .iter()
                .filter(|r| r.train_loss.is_finite())
                .map(|r| (r.step as f64, r.train_loss))
                .collect();
            let val: Vec<(f64, f64)> = self
                .rows
                .iter()
                .filter_map(|r| {
                    second(r)
                        .filter(|v| v.is_finite())
                        .map(|v| (r.step as f64, v))
                })
                .collect();
            let all = train.iter().chain(&val);
            let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
            let y_max = all.clone().map(|p| p.1).fold(f64::MIN, f64::max);
            let y_min = all.map(|p| p.1).fold(f64::MAX, f64::min);
            let (y_min, y_max) = if y_min <= y_max {
                let pad = ((y_max - y_min) * 0.05).max(1e-3);
                ((y_min - pad).max(0.0), y_max + pad)
            } else {
                (0.0, 1.0)
            };
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(42)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, y_min..y_max)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("step")
                .y_desc(unit)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
            let blue = RGBColor(31, 119, 180);
            let orange = RGBColor(255, 127, 14);
            chart
                .draw_series(LineSeries::new(train, blue.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label("training loss")
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2))
                });
            chart
                .draw_series(LineSeries::new(val.clone(), orange.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(val_label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], orange.stroke_width(2))
                });
            chart
                .draw_series(val.iter().map(|&p| Circle::new(p, 3, orange.filled())))
                .map_err(|e| e.to_string())?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

/// The one way the models draw a PNG: the shipped font registered, a white `w x h` canvas that
/// `draw` paints (its errors as text), the PNG written to `path` atomically. A failure is a
/// format error naming the file and `what` was being drawn.
pub(crate) fn draw_png(
    path: &Path,
    (w, h): (u32, u32),
    what: &str,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    let failed = |e: &dyn std::fmt::Display| Error::Format {
        path: path.display().to_string(),
        problem: format!("drawing {what} failed: {e}"),
    };
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        draw(&root).map_err(|e| failed(&e))?;
        root.present().map_err(|e| failed(&e))?;
    }
    let img = image_png(&buf, w, h).map_err(|e| failed(&e))?;
    write_atomic(path, &img)
}

/// Encodes an RGB8 buffer as PNG bytes.
fn image_png(rgb: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
