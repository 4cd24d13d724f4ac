//! Reference of `dropout.wgsl`: the same counter-based 32-bit hash, bit for bit.

/// lowbias32 (C. Wellons), as `mix32` in the shader.
pub fn mix32(x: u32) -> u32 {
    let mut v = x;
    v ^= v >> 16;
    v = v.wrapping_mul(0x7feb352d);
    v ^= v >> 15;
    v = v.wrapping_mul(0x846ca68b);
    v ^= v >> 16;
    v
}

/// `round(p * 2^24)`: an element is dropped when its 24-bit hash is below it.
pub fn threshold(p: f32) -> u32 {
    ((p.clamp(0.0, 1.0) as f64) * (1u32 << 24) as f64).round() as u32
}

/// The factor kept values are multiplied by: `1 / (1 - p)` (0 when p = 1, everything dropped).
pub fn scale(p: f32) -> f32 {
    if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 }
}

/// Whether element (t, b, unit) of stream `stream` survives dropout with probability `p`.
pub fn keep(seed: u32, stream: u32, t: u32, b: u32, unit: u32, p: f32) -> bool {
    let mut h = mix32(seed ^ 0x9e37_79b9);
    h = mix32(h ^ stream);
    h = mix32(h ^ t);
    h = mix32(h ^ b);
    h = mix32(h ^ unit);
    (h >> 8) >= threshold(p)
}

/// Applies the mask to `x [T, B, U]` (forward, or a gradient for the backward).
pub fn dropout(x: &[f64], batch: usize, units: usize, seed: u32, stream: u32, p: f32) -> Vec<f64> {
    let s = scale(p) as f64;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let unit = i % units;
            let row = i / units;
            if keep(
                seed,
                stream,
                (row / batch) as u32,
                (row % batch) as u32,
                unit as u32,
                p,
            ) {
                v * s
            } else {
                0.0
            }
        })
        .collect()
}
