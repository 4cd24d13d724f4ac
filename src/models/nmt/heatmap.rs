//! Attention heat maps: one PNG per translated sentence, source tokens along the top (read
//! downwards), generated target tokens down the left, each cell's darkness its attention
//! weight (white 0, black 1), drawn with plotters and the DejaVu Sans font compiled in.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontTransform;

use crate::error::{Error, Result};
use crate::models::metrics::{draw_png, register_font};

/// Side of one cell in pixels.
pub const CELL: u32 = 26;
/// Label font size.
const FONT_PX: u32 = 15;
/// Space between labels and the grid, and around the picture.
const PAD: u32 = 8;
/// Labels longer than this many characters are cut with `…`.
const MAX_LABEL: usize = 24;

fn label(t: &str) -> String {
    if t.chars().count() > MAX_LABEL {
        let mut s: String = t.chars().take(MAX_LABEL - 1).collect();
        s.push('…');
        s
    } else {
        t.to_string()
    }
}

fn text_width(t: &str) -> u32 {
    register_font();
    ("sans-serif", FONT_PX as f64)
        .into_font()
        .box_size(&label(t))
        .map(|(w, _)| w)
        .unwrap_or(FONT_PX * t.chars().count() as u32)
}

/// (left margin, top margin) for these labels.
fn margins(src: &[String], tgt: &[String]) -> (u32, u32) {
    let widest = |v: &[String]| v.iter().map(|t| text_width(t)).max().unwrap_or(0);
    (widest(tgt) + 2 * PAD, widest(src) + 2 * PAD)
}

/// The picture's (width, height) for `src` columns and `tgt` rows.
pub fn size(src: &[String], tgt: &[String]) -> (u32, u32) {
    let (left, top) = margins(src, tgt);
    (
        left + CELL * src.len() as u32 + PAD,
        top + CELL * tgt.len() as u32 + PAD,
    )
}

/// Writes the heat map of `weights` (one row per target token, one column per source token)
/// to `path` atomically.
///
/// Errors: `weights` not `[tgt.len(), src.len()]`, nothing to draw, the file not writable.
pub fn write(path: &Path, src: &[String], tgt: &[String], weights: &[Vec<f32>]) -> Result<()> {
    let bad = |problem: String| Error::Format {
        path: path.display().to_string(),
        problem,
    };
    if src.is_empty() || tgt.is_empty() {
        return Err(bad("a heat map needs source and target tokens".into()));
    }
    if weights.len() != tgt.len() || weights.iter().any(|r| r.len() != src.len()) {
        return Err(bad(format!(
            "attention weights are not [{} target, {} source]",
            tgt.len(),
            src.len()
        )));
    }
    let (left, top) = margins(src, tgt);
    draw_png(path, size(src, tgt), "the heat map", |root| {
        let font = ("sans-serif", FONT_PX as f64).into_font();
        let style = TextStyle::from(font.clone()).color(&BLACK);
        for (i, row) in weights.iter().enumerate() {
            let y0 = (top + CELL * i as u32) as i32;
            for (j, &a) in row.iter().enumerate() {
                let x0 = (left + CELL * j as u32) as i32;
                let g = shade(a);
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + CELL as i32, y0 + CELL as i32)],
                    RGBColor(g, g, g).filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
            // Right-aligned, vertically centred on the row.
            let t = label(&tgt[i]);
            let tw = text_width(&tgt[i]) as i32;
            let x = left as i32 - PAD as i32 - tw;
            let y = y0 + (CELL as i32 - FONT_PX as i32) / 2;
            root.draw_text(&t, &style, (x, y))
                .map_err(|e| e.to_string())?;
        }
        let rotated = TextStyle::from(font.transform(FontTransform::Rotate270)).color(&BLACK);
        for (j, s) in src.iter().enumerate() {
            // Read bottom-up, ending just above the grid, centred on the column.
            let x = (left + CELL * j as u32) as i32 + (CELL as i32 - FONT_PX as i32) / 2;
            let y = top as i32 - PAD as i32;
            root.draw_text(&label(s), &rotated, (x, y))
                .map_err(|e| e.to_string())?;
        }
        let grid = RGBColor(200, 200, 200);
        root.draw(&Rectangle::new(
            [
                (left as i32 - 1, top as i32 - 1),
                (
                    (left + CELL * src.len() as u32) as i32,
                    (top + CELL * tgt.len() as u32) as i32,
                ),
            ],
            grid.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The grey level of weight `a`: 255 (white) at 0, 0 (black) at 1.
pub fn shade(a: f32) -> u8 {
    (255.0 * (1.0 - a.clamp(0.0, 1.0))).round() as u8
}

/// The pixel at the centre of cell (row `i`, column `j`) of a map for these tokens (tests).
pub fn cell_centre(src: &[String], tgt: &[String], i: usize, j: usize) -> (u32, u32) {
    let (left, top) = margins(src, tgt);
    (
        left + CELL * j as u32 + CELL / 2,
        top + CELL * i as u32 + CELL / 2,
    )
}
