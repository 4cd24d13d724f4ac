//! Monolingual word vectors: skip-gram with negative sampling trained on the device
//! ([`crate::nn::SkipGram`]), the vectors file, and nearest-neighbour queries.
//!
//! Training follows word2vec (Mikolov et al. 2013): text tokenized as for translation
//! ([`crate::models::nmt::text::tokenize`], case kept), a vocabulary of the tokens seen at
//! least `min_count` times, frequent tokens subsampled (kept with probability
//! `(sqrt(f / t) + 1) t / f`, f a token's share of the text), a dynamic window (each center
//! draws its window size uniformly from 1..=W), and K negatives per pair drawn from the
//! unigram distribution raised to 3/4 (a negative may equal the context; word2vec skips those,
//! which matters little at K = 5). The pairs of an epoch are a function of (seed, epoch),
//! shuffled and cut into batches; each batch is one submission: the fused loss, its gradients
//! into both tables, and Adam on the mean loss (word2vec's per-pair SGD has no deterministic
//! batched equivalent: a frequent word's summed gradient in a batch of thousands of pairs
//! would need a tiny rate).
//!
//! The vectors file is safetensors: `vectors [V, D]` (the input vectors) and the metadata
//! `kind` = `word-vectors`, `lang`, `vocab` (a JSON array of the tokens, most frequent first),
//! `counts` (their counts) and `config` (the training settings).

use std::collections::HashMap;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::HostTensor;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::files;
use crate::models::nmt::text;
use crate::nn::{AdamConfig, Optimizer, ParamStore, SkipGram};
use crate::ops;
use crate::tensor::Tensor;

/// Skip-gram settings (`train-embeddings`' flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkipGramConfig {
    /// Vector size D.
    pub dim: usize,
    /// Largest window W (each side).
    pub window: usize,
    /// Negatives per pair K.
    pub negatives: usize,
    /// Passes over the text.
    pub epochs: usize,
    /// Tokens seen fewer times are dropped.
    pub min_count: usize,
    /// Subsampling threshold t (0: none).
    pub subsample: f64,
    /// Pairs per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seed of the initialisation, subsampling, windows, negatives and order.
    pub seed: u64,
}

impl Default for SkipGramConfig {
    fn default() -> Self {
        SkipGramConfig {
            dim: 100,
            window: 5,
            negatives: 5,
            epochs: 5,
            min_count: 3,
            subsample: 1e-3,
            batch: 1024,
            lr: 2e-3,
            seed: 1,
        }
    }
}

impl SkipGramConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.window == 0 || self.negatives == 0 || self.batch == 0 {
            return Err(Error::config(
                "--dim, --window, --negatives and --batch must be at least 1",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite() && self.subsample >= 0.0) {
            return Err(Error::config("--lr must be > 0 and --subsample >= 0"));
        }
        Ok(())
    }
}

/// Word vectors with their vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    /// The language's name (`de`), may be empty.
    pub lang: String,
    /// Tokens, most frequent first.
    pub words: Vec<String>,
    /// Their counts in the training text.
    pub counts: Vec<u64>,
    /// D.
    pub dim: usize,
    /// `[V, D]` row-major.
    pub data: Vec<f32>,
}

impl WordVectors {
    /// V.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Token -> row.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect()
    }

    /// Every row scaled to unit length (a zero row stays zero).
    pub fn normalized(&self) -> WordVectors {
        let mut v = self.clone();
        for r in v.data.chunks_mut(self.dim.max(1)) {
            let n = r
                .iter()
                .map(|&x| (x as f64) * (x as f64))
                .sum::<f64>()
                .sqrt();
            if n > 0.0 {
                r.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
            }
        }
        v
    }

    /// The metadata this file format writes, without `vocab` and `counts`.
    fn metadata(&self, extra: &[(&str, String)]) -> Result<HashMap<String, String>> {
        let mut m = HashMap::from([
            ("kind".to_string(), "word-vectors".to_string()),
            ("lang".to_string(), self.lang.clone()),
            ("vocab".to_string(), to_json(&self.words)?),
            ("counts".to_string(), to_json(&self.counts)?),
        ]);
        for (k, v) in extra {
            m.insert(k.to_string(), v.clone());
        }
        Ok(m)
    }

    /// Writes `path` atomically, with `extra` metadata entries (e.g. `config`).
    pub fn save(&self, path: &Path, extra: &[(&str, String)]) -> Result<()> {
        let t = HostTensor::new(vec![self.len(), self.dim], self.data.clone())?;
        files::write_safetensors(
            path,
            &[("vectors".to_string(), t)],
            Some(self.metadata(extra)?),
        )
    }

    /// Reads a vectors file written by [`Self::save`].
    pub fn load(path: &Path) -> Result<WordVectors> {
        let (tensors, meta) = files::read_f32_tensors(path)?;
        let bad = |problem: String| Error::Format {
            path: path.display().to_string(),
            problem,
        };
        if meta.get("kind").map(String::as_str) != Some("word-vectors") {
            return Err(bad(
                "not a word-vectors file (metadata kind is not `word-vectors`; write one with \
                 `wgrnn train-embeddings`)"
                    .into(),
            ));
        }
        let t = tensors
            .into_iter()
            .find(|(n, _)| n == "vectors")
            .map(|(_, t)| t)
            .ok_or_else(|| bad("no tensor `vectors`".into()))?;
        let lang = meta.get("lang").cloned().unwrap_or_default();
        WordVectors::from_parts(lang, &meta, ("vocab", "counts"), t).map_err(bad)
    }

    /// Vectors `t [V, D]` with the vocabulary and counts of the metadata entries `keys`;
    /// the error says what disagrees.
    pub(crate) fn from_parts(
        lang: String,
        meta: &HashMap<String, String>,
        (vocab, counts): (&str, &str),
        t: HostTensor,
    ) -> std::result::Result<WordVectors, String> {
        let words: Vec<String> = parse_meta(meta, vocab)?;
        let counts: Vec<u64> = parse_meta(meta, counts)?;
        if t.shape.len() != 2 || t.shape[0] != words.len() || counts.len() != words.len() {
            return Err(format!(
                "{vocab}: vectors {:?} do not match the {} vocabulary words and {} counts",
                t.shape,
                words.len(),
                counts.len()
            ));
        }
        Ok(WordVectors {
            lang,
            words,
            counts,
            dim: t.shape[1],
            data: t.data,
        })
    }
}

/// A JSON value of the safetensors metadata.
pub(crate) fn parse_meta<T: serde::de::DeserializeOwned>(
    meta: &HashMap<String, String>,
    key: &str,
) -> std::result::Result<T, String> {
    let s = meta
        .get(key)
        .ok_or_else(|| format!("no metadata entry `{key}`"))?;
    serde_json::from_str(s).map_err(|e| format!("metadata `{key}`: {e}"))
}

/// `v` as JSON for a metadata entry.
fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::config(format!("metadata: {e}")))
}

/// The language of a text file by its name: `train.de.gz` and `mono.de` give `de`.
pub fn lang_of(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit('.').next().unwrap_or("").to_string()
}

/// The vocabulary of `sentences` (tokens seen at least `min_count` times, most frequent
/// first, ties by first appearance) and the id sequences (dropped tokens removed).
pub fn vocabulary(
    sentences: &[Vec<String>],
    min_count: usize,
) -> (Vec<String>, Vec<u64>, Vec<Vec<u32>>) {
    let mut count: HashMap<&str, (u64, usize)> = HashMap::new();
    for (i, t) in sentences.iter().flatten().enumerate() {
        count.entry(t.as_str()).or_insert((0, i)).0 += 1;
    }
    let mut kept: Vec<(&str, u64, usize)> = count
        .into_iter()
        .filter(|(_, (c, _))| *c >= min_count.max(1) as u64)
        .map(|(w, (c, first))| (w, c, first))
        .collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let index: HashMap<&str, u32> = kept
        .iter()
        .enumerate()
        .map(|(i, (w, _, _))| (*w, i as u32))
        .collect();
    let ids = sentences
        .iter()
        .map(|s| {
            s.iter()
                .filter_map(|t| index.get(t.as_str()).copied())
                .collect()
        })
        .collect();
    (
        kept.iter().map(|(w, _, _)| w.to_string()).collect(),
        kept.iter().map(|(_, c, _)| *c).collect(),
        ids,
    )
}

/// The (center, context) pairs of one epoch, shuffled: subsampling and windows drawn from
/// (seed, epoch).
pub fn epoch_pairs(
    ids: &[Vec<u32>],
    counts: &[u64],
    c: &SkipGramConfig,
    epoch: u64,
) -> Vec<(u32, u32)> {
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let total: u64 = counts.iter().sum();
    let keep: Vec<f64> = counts
        .iter()
        .map(|&n| {
            if c.subsample <= 0.0 {
                return 1.0;
            }
            let f = n as f64 / total.max(1) as f64;
            ((f / c.subsample).sqrt() + 1.0) * c.subsample / f
        })
        .collect();
    let mut pairs = Vec::new();
    for s in ids {
        let kept: Vec<u32> = s
            .iter()
            .copied()
            .filter(|&w| rng.random::<f64>() < keep[w as usize])
            .collect();
        for (i, &w) in kept.iter().enumerate() {
            let b = rng.random_range(1..=c.window);
            let lo = i.saturating_sub(b);
            let hi = (i + b).min(kept.len() - 1);
            for (j, &o) in kept.iter().enumerate().take(hi + 1).skip(lo) {
                if j != i {
                    pairs.push((w, o));
                }
            }
        }
    }
    for i in (1..pairs.len()).rev() {
        let j = rng.random_range(0..=i);
        pairs.swap(i, j);
    }
    pairs
}

/// Cumulative unigram^(3/4) weights for drawing negatives.
fn negative_table(counts: &[u64]) -> Vec<f64> {
    let mut acc = 0.0;
    counts
        .iter()
        .map(|&n| {
            acc += (n as f64).powf(0.75);
            acc
        })
        .collect()
}

fn draw(table: &[f64], rng: &mut ChaCha8Rng) -> u32 {
    let total = table.last().copied().unwrap_or(0.0);
    let u = rng.random::<f64>() * total;
    table.partition_point(|&c| c <= u).min(table.len() - 1) as u32
}

/// What [`train`] reports.
pub enum Progress {
    /// Training began: the adapter, V, the pairs of the first epoch, the batches in all.
    Started {
        /// Adapter name.
        adapter: String,
        /// Vocabulary size.
        vocab: usize,
        /// Pairs per epoch (the first one's).
        pairs: usize,
        /// Batches of all epochs (estimated from the first).
        batches: usize,
    },
    /// A batch finished.
    Step,
    /// An epoch finished with this loss (the mean of its batch means).
    Epoch {
        /// 1-based.
        epoch: usize,
        /// Nats per pair.
        loss: f64,
    },
}

/// Trains skip-gram vectors on tokenized `sentences` of language `lang`.
pub fn train(
    ctx: &Context,
    sentences: &[Vec<String>],
    lang: &str,
    c: &SkipGramConfig,
    on: &mut dyn FnMut(Progress),
) -> Result<WordVectors> {
    c.validate()?;
    let (words, counts, ids) = vocabulary(sentences, c.min_count);
    if words.len() < 2 {
        return Err(Error::config(format!(
            "the text has {} token(s) seen at least {} times: skip-gram needs two or more",
            words.len(),
            c.min_count
        )));
    }
    let model = SkipGram::random(ctx, words.len(), c.dim, c.seed)?;
    let grads = model.zero_grads(ctx)?;
    let mut store = ParamStore::new();
    model.register(&mut store, &grads)?;
    let mut opt = Optimizer::adam(ctx, &store, AdamConfig::adam(c.lr))?;
    let table = negative_table(&counts);
    let total = Tensor::zeros(ctx, "skip-gram epoch loss", &[1])?;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed.wrapping_add(0x5eed));
    for epoch in 0..c.epochs {
        let pairs = epoch_pairs(&ids, &counts, c, epoch as u64);
        if pairs.is_empty() {
            return Err(Error::config(
                "the text gives no (center, context) pairs: it needs sentences of two or more \
                 kept tokens",
            ));
        }
        if epoch == 0 {
            on(Progress::Started {
                adapter: ctx.adapter_name().to_string(),
                vocab: words.len(),
                pairs: pairs.len(),
                batches: pairs.len().div_ceil(c.batch) * c.epochs,
            });
        }
        let slots = c.negatives + 1;
        for (bi, chunk) in pairs.chunks(c.batch).enumerate() {
            let centers: Vec<u32> = chunk.iter().map(|p| p.0).collect();
            let mut contexts = Vec::with_capacity(chunk.len() * slots);
            for p in chunk {
                contexts.push(p.1);
                contexts.extend((0..c.negatives).map(|_| draw(&table, &mut rng)));
            }
            let bt = model.batch(ctx, &centers, &contexts)?;
            let mut rec = Recorder::new(ctx);
            store.record_zero_grads(&mut rec)?;
            // The batch mean: its gradient, and its loss added to the epoch's total.
            model.record_loss(
                &mut rec,
                &bt,
                1.0 / chunk.len() as f32,
                &total,
                bi > 0,
                Some(&grads),
            )?;
            opt.record_step(&mut rec, &store)?;
            rec.submit()?;
            on(Progress::Step);
        }
        let batches = pairs.len().div_ceil(c.batch);
        let loss = total.to_vec(ctx)?[0] as f64 / batches as f64;
        on(Progress::Epoch {
            epoch: epoch + 1,
            loss,
        });
    }
    Ok(WordVectors {
        lang: lang.to_string(),
        words,
        counts,
        dim: c.dim,
        data: model.input.weight.to_vec(ctx)?,
    })
}

/// The `k` nearest neighbours of each of `queries` (rows of `v`) by cosine similarity, on the
/// device: `(row, similarity)` best first, the query itself excluded, ties to the lower row.
pub fn neighbours(
    ctx: &Context,
    v: &WordVectors,
    queries: &[usize],
    k: usize,
) -> Result<Vec<Vec<(usize, f32)>>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let n = v.normalized();
    let k1 = (k + 1).min(n.len());
    let table = Tensor::from_f32(ctx, "word vectors", &[1, n.len(), n.dim], &n.data)?;
    let q: Vec<f32> = queries.iter().flat_map(|&i| n.row(i).to_vec()).collect();
    let q = Tensor::from_f32(ctx, "query vectors", &[1, queries.len(), n.dim], &q)?;
    let mut rec = Recorder::new(ctx);
    let sim = ops::record_bmm(&mut rec, &q, &table, false, true)?;
    let (vals, idx) = ops::record_topk(&mut rec, &sim.reshape(&[queries.len(), n.len()])?, k1)?;
    rec.submit()?;
    let (vals, idx) = (vals.to_vec(ctx)?, idx.to_vec_u32(ctx)?);
    Ok(queries
        .iter()
        .enumerate()
        .map(|(r, &qi)| {
            (0..k1)
                .map(|j| (idx[r * k1 + j] as usize, vals[r * k1 + j]))
                .filter(|&(i, _)| i != qi)
                .take(k)
                .collect()
        })
        .collect())
}

/// The tokenized non-empty lines of a text file (plain or gzip).
pub fn read_sentences(path: &Path) -> Result<Vec<Vec<String>>> {
    Ok(crate::models::bleu::read_lines(path)?
        .iter()
        .map(|l| text::tokenize(l))
        .filter(|t| !t.is_empty())
        .collect())
}
