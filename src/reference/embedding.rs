//! Reference of `embedding.wgsl`: lookup and its gradient, summed in position order.

/// `table [V, E]`, `ids [N]` -> `[N, E]`. An id `>= V` gives a NaN row, as the kernel does for
/// ids it cannot validate.
pub fn embedding_forward(table: &[f64], ids: &[u32], vocab: usize, dim: usize) -> Vec<f64> {
    let mut out = vec![0.0; ids.len() * dim];
    for (n, &id) in ids.iter().enumerate() {
        for e in 0..dim {
            out[n * dim + e] = if (id as usize) < vocab {
                table[id as usize * dim + e]
            } else {
                f64::NAN
            };
        }
    }
    out
}

/// `dy [N, E]` -> `dtable [V, E]`: row v is the sum of `dy[n]` over the positions n with
/// `ids[n] = v`, in increasing n. The padding row and ids `>= V` get no gradient.
pub fn embedding_backward(
    ids: &[u32],
    dy: &[f64],
    vocab: usize,
    dim: usize,
    padding: Option<u32>,
) -> Vec<f64> {
    let mut dtable = vec![0.0; vocab * dim];
    for (n, &id) in ids.iter().enumerate() {
        if (id as usize) >= vocab || Some(id) == padding {
            continue;
        }
        for e in 0..dim {
            dtable[id as usize * dim + e] += dy[n * dim + e];
        }
    }
    dtable
}
