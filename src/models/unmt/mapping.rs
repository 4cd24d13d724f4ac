//! Cross-lingual word vectors: an orthogonal map of one language's vectors onto the other's,
//! learnt without a dictionary (Artetxe et al. 2017, 2018; Conneau et al. 2018), and
//! word-by-word translation by nearest neighbour in the shared space.
//!
//! 1. Both sets are normalized as VecMap does: unit length, mean-centred, unit length again.
//! 2. The seed dictionary is every string in both vocabularies (numbers, names, punctuation).
//! 3. Each iteration solves orthogonal Procrustes on the dictionary — `W = U V^T` from the SVD
//!    `X_d^T Z_d = U S V^T` (nalgebra; D x D on the host) maximises `sum_d x_i W . z_j` over
//!    orthogonal W — then induces a new dictionary from the mapped vectors by CSLS retrieval
//!    in both directions (`CSLS(x, z) = 2 cos(x, z) - r_T(x) - r_S(z)`, r the mean cosine of
//!    the k nearest neighbours in the other language; the similarities, top-k and arg-max run
//!    on the device in row blocks under the binding limit), the union of the source-to-target
//!    and target-to-source nearest neighbours among the `max_vocab` most frequent words of
//!    each side. Induction is stochastic (Artetxe et al. 2018): each similarity survives
//!    with probability p, starting at `keep` and doubled whenever the objective (the mean
//!    CSLS of the source words' matches) has not improved for `patience` iterations, so the
//!    early dictionaries explore instead of locking into the first map's errors. It stops
//!    when p = 1 stops improving, after `iterations`, or when the dictionary repeats at p = 1.
//! 4. The file keeps the mapped source vectors, the target vectors, W, and both
//!    directions' CSLS nearest neighbour of every word (word-by-word translation tables).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::vectors::{WordVectors, parse_meta};
use crate::HostTensor;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::files;
use crate::models::nmt::text;
use crate::ops;
use crate::tensor::Tensor;

/// `map-embeddings`' settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapConfig {
    /// Self-learning iterations at most.
    pub iterations: usize,
    /// Neighbours in CSLS's r.
    pub csls_k: usize,
    /// The most frequent words of each side that dictionary induction considers.
    pub max_vocab: usize,
    /// The first keep probability of stochastic induction (1: deterministic).
    pub keep: f32,
    /// Iterations without improvement before the keep probability doubles.
    pub patience: usize,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            iterations: 40,
            csls_k: 10,
            max_vocab: 1_000,
            keep: 0.1,
            patience: 2,
        }
    }
}

/// One self-learning iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Iteration {
    /// The dictionary pairs W was fitted on.
    pub dictionary: usize,
    /// The keep probability of the induction after it.
    pub keep: f32,
    /// The mean CSLS score of the source words' nearest neighbours after it.
    pub mean_csls: f64,
}

/// Both languages' vectors in one space.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// The source vectors, normalized and mapped (`x W`).
    pub src: WordVectors,
    /// The target vectors, normalized.
    pub tgt: WordVectors,
    /// `W [D, D]` row-major.
    pub map: Vec<f32>,
    /// CSLS nearest target word of every source word.
    pub src_to_tgt: Vec<u32>,
    /// CSLS nearest source word of every target word.
    pub tgt_to_src: Vec<u32>,
    /// The seed dictionary's size.
    pub seed_pairs: usize,
    /// What each iteration did.
    pub history: Vec<Iteration>,
}

/// VecMap's normalization: unit length, mean-centred over the words, unit length.
pub fn normalize(v: &WordVectors) -> WordVectors {
    let mut n = v.normalized();
    let d = n.dim;
    let mut mean = vec![0.0f64; d];
    for r in n.data.chunks(d) {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64;
        }
    }
    let rows = n.len().max(1) as f64;
    for r in n.data.chunks_mut(d) {
        for (x, m) in r.iter_mut().zip(&mean) {
            *x = (*x as f64 - m / rows) as f32;
        }
    }
    n.normalized()
}

/// The seed dictionary: `(source row, target row)` of every string in both vocabularies.
pub fn identical_strings(src: &WordVectors, tgt: &WordVectors) -> Vec<(usize, usize)> {
    let t = tgt.index();
    src.words
        .iter()
        .enumerate()
        .filter_map(|(i, w)| t.get(w.as_str()).map(|&j| (i, j)))
        .collect()
}

/// Orthogonal Procrustes: the orthogonal `W [D, D]` maximising `sum (x_i W) . z_j` over the
/// `pairs`, `W = U V^T` from the SVD of `X_d^T Z_d`.
pub fn procrustes(x: &WordVectors, z: &WordVectors, pairs: &[(usize, usize)]) -> Result<Vec<f32>> {
    let d = x.dim;
    if z.dim != d {
        return Err(Error::config(format!(
            "the vectors have {d} and {} dimensions: a map needs equal sizes",
            z.dim
        )));
    }
    let mut m = nalgebra::DMatrix::<f64>::zeros(d, d);
    for &(i, j) in pairs {
        let (xi, zj) = (x.row(i), z.row(j));
        for a in 0..d {
            for b in 0..d {
                m[(a, b)] += xi[a] as f64 * zj[b] as f64;
            }
        }
    }
    let svd = m.svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return Err(Error::Device(
            "internal: the SVD gave no singular vectors".into(),
        ));
    };
    let w = u * vt;
    Ok((0..d * d).map(|k| w[(k / d, k % d)] as f32).collect())
}

/// `x W` of every row.
pub fn apply(x: &WordVectors, w: &[f32]) -> WordVectors {
    let d = x.dim;
    let mut out = x.clone();
    for (r, o) in x.data.chunks(d).zip(out.data.chunks_mut(d)) {
        for (b, ob) in o.iter_mut().enumerate() {
            *ob = (0..d)
                .map(|a| r[a] as f64 * w[a * d + b] as f64)
                .sum::<f64>() as f32;
        }
    }
    out
}

/// Rows per device block so that a `[rows, cols]` similarity block fits a binding.
fn block_rows(ctx: &Context, cols: usize) -> usize {
    let cap = (ctx.max_tensor_bytes() / 4) as usize / cols.max(1);
    cap.clamp(1, 4096)
}

/// For each row of `a [M, D]` (the first `m` rows of `a`): the mean cosine of its `k` nearest
/// rows of `b [C, D]` (the first `c` rows). Both must be unit rows.
fn knn_mean(
    ctx: &Context,
    a: &[f32],
    b: &Tensor,
    d: usize,
    c: usize,
    k: usize,
) -> Result<Vec<f32>> {
    let m = a.len() / d;
    let mut out = Vec::with_capacity(m);
    for chunk in a.chunks(block_rows(ctx, c) * d) {
        let r = chunk.len() / d;
        let q = Tensor::from_f32(ctx, "query vectors", &[1, r, d], chunk)?;
        let mut rec = Recorder::new(ctx);
        let sim = ops::record_bmm(&mut rec, &q, b, false, true)?.reshape(&[r, c])?;
        let (vals, _) = ops::record_topk(&mut rec, &sim, k.min(c))?;
        let mean = ops::record_row_mean(&mut rec, &vals)?;
        rec.submit()?;
        out.extend(mean.to_vec(ctx)?);
    }
    Ok(out)
}

/// Each row of `a`'s CSLS nearest row of `b` and its score, given `ra` (a's neighbourhood
/// means in b) and `rb` (b's in a).
fn csls_nearest(
    ctx: &Context,
    a: &[f32],
    b: &Tensor,
    d: usize,
    ra: &[f32],
    rb: &Tensor,
    (seed, keep): (u32, f32),
) -> Result<(Vec<u32>, Vec<f32>)> {
    let c = rb.numel();
    let (mut best, mut score) = (Vec::new(), Vec::new());
    let rows = block_rows(ctx, c);
    for (ci, chunk) in a.chunks(rows * d).enumerate() {
        let r = chunk.len() / d;
        let q = Tensor::from_f32(ctx, "query vectors", &[1, r, d], chunk)?;
        let rq = Tensor::from_f32(
            ctx,
            "query neighbourhoods",
            &[r],
            &ra[ci * rows..ci * rows + r],
        )?;
        let mut rec = Recorder::new(ctx);
        let sim = ops::record_bmm(&mut rec, &q, b, false, true)?.reshape(&[r, c])?;
        let mask = ops::CslsMask {
            seed,
            keep,
            row0: ci * rows,
        };
        let csls = ops::record_csls(&mut rec, &sim, &rq, rb, mask)?;
        let (vals, idx) = ops::record_topk(&mut rec, &csls, 1)?;
        rec.submit()?;
        best.extend(idx.to_vec_u32(ctx)?);
        score.extend(vals.to_vec(ctx)?);
    }
    Ok((best, score))
}

/// A word's match in the other language and its CSLS score (-3e38: every entry of its row
/// was dropped).
type Matches = (Vec<u32>, Vec<f32>);

/// CSLS nearest neighbours in both directions between `x` (mapped) and `z` over their first
/// `nx`, `nz` rows under the stochastic mask `(seed, keep)`: `(x -> z, z -> x)`.
fn both_ways(
    ctx: &Context,
    x: &WordVectors,
    z: &WordVectors,
    (nx, nz): (usize, usize),
    k: usize,
    (seed, keep): (u32, f32),
) -> Result<(Matches, Matches)> {
    let d = x.dim;
    let (xa, za) = (&x.data[..nx * d], &z.data[..nz * d]);
    let xt = Tensor::from_f32(ctx, "source vectors", &[1, nx, d], xa)?;
    let zt = Tensor::from_f32(ctx, "target vectors", &[1, nz, d], za)?;
    let rx = knn_mean(ctx, xa, &zt, d, nz, k)?;
    let rz = knn_mean(ctx, za, &xt, d, nx, k)?;
    let (rxt, rzt) = (
        Tensor::from_f32(ctx, "source neighbourhoods", &[nx], &rx)?,
        Tensor::from_f32(ctx, "target neighbourhoods", &[nz], &rz)?,
    );
    let fwd = csls_nearest(ctx, xa, &zt, d, &rx, &rzt, (seed, keep))?;
    let bwd = csls_nearest(ctx, za, &xt, d, &rz, &rxt, (seed ^ 0x5555_5555, keep))?;
    Ok((fwd, bwd))
}

/// Learns the map from `src` onto `tgt` (see the module docs); `on` sees each iteration.
pub fn map(
    ctx: &Context,
    src: &WordVectors,
    tgt: &WordVectors,
    c: &MapConfig,
    on: &mut dyn FnMut(usize, &Iteration),
) -> Result<Mapped> {
    if src.dim != tgt.dim {
        return Err(Error::config(format!(
            "the vectors have {} and {} dimensions: a map needs equal sizes",
            src.dim, tgt.dim
        )));
    }
    if c.iterations == 0 || c.csls_k == 0 || c.max_vocab == 0 || c.patience == 0 {
        return Err(Error::config(
            "--iterations, --csls-k, --max-vocab and --patience must be at least 1",
        ));
    }
    if !(c.keep > 0.0 && c.keep <= 1.0) {
        return Err(Error::config(format!(
            "--keep {} must lie in (0, 1]",
            c.keep
        )));
    }
    let (x, z) = (normalize(src), normalize(tgt));
    let seed = identical_strings(&x, &z);
    if seed.is_empty() {
        return Err(Error::config(
            "the two vocabularies share no string: the seed dictionary of identical strings is \
             empty",
        ));
    }
    let lim = (c.max_vocab.min(x.len()), c.max_vocab.min(z.len()));
    let mut dict: Vec<(usize, usize)> = seed.clone();
    let mut history = Vec::new();
    let (mut keep, mut best, mut stall) = (c.keep, f64::NEG_INFINITY, 0);
    for it in 0..c.iterations {
        let w = procrustes(&x, &z, &dict)?;
        let xw = apply(&x, &w);
        let ((fwd, fs), (bwd, bs)) = both_ways(ctx, &xw, &z, lim, c.csls_k, (it as u32, keep))?;
        // Rows whose every entry the mask dropped have no match.
        let live = |s: f32| s > -1e37;
        let scored: Vec<f64> = fs.iter().filter(|&&s| live(s)).map(|&s| s as f64).collect();
        let objective = scored.iter().sum::<f64>() / scored.len().max(1) as f64;
        let next: BTreeSet<(usize, usize)> = fwd
            .iter()
            .zip(&fs)
            .enumerate()
            .filter(|(_, (_, s))| live(**s))
            .map(|(i, (&j, _))| (i, j as usize))
            .chain(
                bwd.iter()
                    .zip(&bs)
                    .enumerate()
                    .filter(|(_, (_, s))| live(**s))
                    .map(|(j, (&i, _))| (i as usize, j)),
            )
            .collect();
        let next: Vec<(usize, usize)> = next.into_iter().collect();
        let mut cur = dict.clone();
        cur.sort_unstable();
        let repeated = next == cur && keep >= 1.0;
        if objective > best + 1e-6 {
            (best, stall) = (objective, 0);
        } else {
            stall += 1;
        }
        let rec = Iteration {
            dictionary: dict.len(),
            mean_csls: objective,
            keep,
        };
        on(it + 1, &rec);
        history.push(rec);
        if repeated || (stall >= c.patience && keep >= 1.0) {
            break;
        }
        if stall >= c.patience {
            (keep, best, stall) = ((2.0 * keep).min(1.0), f64::NEG_INFINITY, 0);
        }
        if !next.is_empty() {
            dict = next;
        }
    }
    let w = procrustes(&x, &z, &dict)?;
    let xw = apply(&x, &w);
    let ((src_to_tgt, _), (tgt_to_src, _)) =
        both_ways(ctx, &xw, &z, (x.len(), z.len()), c.csls_k, (0, 1.0))?;
    Ok(Mapped {
        src: xw,
        tgt: z,
        map: w,
        src_to_tgt,
        tgt_to_src,
        seed_pairs: seed.len(),
        history,
    })
}

impl Mapped {
    /// Writes the file atomically: tensors `src [Vs, D]`, `tgt [Vt, D]`, `map [D, D]`;
    /// metadata `kind` = `cross-lingual-vectors`, `src_lang`, `tgt_lang`, `src_vocab`,
    /// `tgt_vocab`, `src_counts`, `tgt_counts`, `src_to_tgt`, `tgt_to_src`, `seed_pairs`,
    /// `history`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let d = self.src.dim;
        let t = |shape: Vec<usize>, data: &[f32]| HostTensor::new(shape, data.to_vec());
        let tensors = vec![
            (
                "src".to_string(),
                t(vec![self.src.len(), d], &self.src.data)?,
            ),
            (
                "tgt".to_string(),
                t(vec![self.tgt.len(), d], &self.tgt.data)?,
            ),
            ("map".to_string(), t(vec![d, d], &self.map)?),
        ];
        let j = |v: serde_json::Value| v.to_string();
        let meta = HashMap::from([
            ("kind".to_string(), "cross-lingual-vectors".to_string()),
            ("src_lang".to_string(), self.src.lang.clone()),
            ("tgt_lang".to_string(), self.tgt.lang.clone()),
            (
                "src_vocab".to_string(),
                j(serde_json::json!(self.src.words)),
            ),
            (
                "tgt_vocab".to_string(),
                j(serde_json::json!(self.tgt.words)),
            ),
            (
                "src_counts".to_string(),
                j(serde_json::json!(self.src.counts)),
            ),
            (
                "tgt_counts".to_string(),
                j(serde_json::json!(self.tgt.counts)),
            ),
            (
                "src_to_tgt".to_string(),
                j(serde_json::json!(self.src_to_tgt)),
            ),
            (
                "tgt_to_src".to_string(),
                j(serde_json::json!(self.tgt_to_src)),
            ),
            ("seed_pairs".to_string(), self.seed_pairs.to_string()),
            ("history".to_string(), j(serde_json::json!(self.history))),
        ]);
        files::write_safetensors(path, &tensors, Some(meta))
    }

    /// Reads a file written by [`Self::save`].
    pub fn load(path: &Path) -> Result<Mapped> {
        let (tensors, meta) = files::read_f32_tensors(path)?;
        let bad = |problem: String| Error::Format {
            path: path.display().to_string(),
            problem,
        };
        if meta.get("kind").map(String::as_str) != Some("cross-lingual-vectors") {
            return Err(bad(
                "not a cross-lingual vectors file (write one with `wgrnn map-embeddings`)".into(),
            ));
        }
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| bad(format!("no tensor `{name}`")))
        };
        let (s, t, m) = (get("src")?, get("tgt")?, get("map")?);
        let side = |lang: &str, keys: (&str, &str), v: HostTensor| -> Result<WordVectors> {
            let lang = meta.get(lang).cloned().unwrap_or_default();
            WordVectors::from_parts(lang, &meta, keys, v).map_err(bad)
        };
        let src = side("src_lang", ("src_vocab", "src_counts"), s)?;
        let tgt = side("tgt_lang", ("tgt_vocab", "tgt_counts"), t)?;
        let src_to_tgt: Vec<u32> = parse_meta(&meta, "src_to_tgt").map_err(bad)?;
        let tgt_to_src: Vec<u32> = parse_meta(&meta, "tgt_to_src").map_err(bad)?;
        let ok = src.dim == tgt.dim
            && m.data.len() == src.dim * src.dim
            && src_to_tgt.len() == src.len()
            && tgt_to_src.len() == tgt.len()
            && src_to_tgt.iter().all(|&j| (j as usize) < tgt.len())
            && tgt_to_src.iter().all(|&i| (i as usize) < src.len());
        if !ok {
            return Err(bad(
                "the sizes of the vectors, map and tables disagree".into()
            ));
        }
        Ok(Mapped {
            src,
            tgt,
            map: m.data,
            src_to_tgt,
            tgt_to_src,
            seed_pairs: parse_meta(&meta, "seed_pairs").map_err(bad)?,
            history: parse_meta(&meta, "history").map_err(bad)?,
        })
    }

    /// The vectors and the translation table of language `lang` as the source side:
    /// `(its vectors, the other side's, its word -> the other's word)`.
    pub fn side(&self, lang: &str) -> Result<(&WordVectors, &WordVectors, &[u32])> {
        if lang == self.src.lang {
            Ok((&self.src, &self.tgt, &self.src_to_tgt))
        } else if lang == self.tgt.lang {
            Ok((&self.tgt, &self.src, &self.tgt_to_src))
        } else {
            Err(Error::config(format!(
                "language `{lang}`: the cross-lingual vectors hold `{}` and `{}`",
                self.src.lang, self.tgt.lang
            )))
        }
    }

    /// Word-by-word translation of raw `lines` from language `from`: each token replaced by
    /// its CSLS nearest neighbour in the other language; a token outside the vocabulary (a
    /// rare name, a number) is copied.
    pub fn translate_words(&self, from: &str, lines: &[String]) -> Result<Vec<String>> {
        let (a, b, table) = self.side(from)?;
        let index = a.index();
        Ok(lines
            .iter()
            .map(|l| {
                let toks = text::tokenize(l);
                let out: Vec<&str> = toks
                    .iter()
                    .map(|t| match index.get(t.as_str()) {
                        Some(&i) => b.words[table[i] as usize].as_str(),
                        None => t.as_str(),
                    })
                    .collect();
                text::detokenize(&out)
            })
            .collect())
    }
}
