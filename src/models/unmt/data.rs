//! The data protocol of unsupervised translation and the denoising noise.
//!
//! **Protocol.** The parallel training split (`train.{a}`, `train.{b}`, N lines each) is cut
//! by line number: language a keeps lines `0..N/2` only, language b lines `N/2..N` only, so no
//! training sentence of one side has its translation on the other. Validation and test stay
//! parallel: validation selects the checkpoint (`best/`), test is only scored.
//!
//! **Noise** (Lample et al. 2018's `C(x)`): word dropout, then a local shuffle.
//! - Each token is dropped with probability `drop`, independently; when every token of a
//!   sentence would go, its first one stays (a source is never empty). Nothing else is lost:
//!   the output is a permutation of the kept tokens.
//! - The kept tokens are reordered by sorting the keys `q_i = i + U(0, k + 1)` (ties by
//!   position): a token moves at most `k` places from its index among the kept tokens
//!   (q_i < q_j whenever j >= i + k + 1). `k = 0` keeps the order.
//!
//! The noise of a sentence is a function of (seed, step, sentence index).

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::bleu::read_lines;
use crate::models::nmt::text::split_file;

/// The two monolingual halves.
#[derive(Clone, Debug, PartialEq)]
pub struct Halves {
    /// Language a's sentences: training lines `0..split`.
    pub a: Vec<String>,
    /// Language b's sentences: training lines `split..N`.
    pub b: Vec<String>,
    /// N / 2.
    pub split: usize,
}

/// Reads `train.{a}` and `train.{b}` of `dir` (equal line counts) and keeps the halves of the
/// protocol.
pub fn halves(dir: &Path, a: &str, b: &str) -> Result<Halves> {
    let (pa, pb) = (split_file(dir, "train", a)?, split_file(dir, "train", b)?);
    let (la, lb) = (read_lines(&pa)?, read_lines(&pb)?);
    if la.len() != lb.len() {
        return Err(Error::Format {
            path: pb.display().to_string(),
            problem: format!("{} lines, but {} has {}", lb.len(), pa.display(), la.len()),
        });
    }
    if la.len() < 2 {
        return Err(Error::Format {
            path: pa.display().to_string(),
            problem: format!("{} line(s): the protocol needs two or more", la.len()),
        });
    }
    let split = la.len() / 2;
    Ok(Halves {
        a: la[..split].to_vec(),
        b: lb[split..].to_vec(),
        split,
    })
}

/// The denoising noise (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// Word-dropout probability.
    pub drop: f64,
    /// The largest displacement of the local shuffle.
    pub shuffle: usize,
}

impl Default for Noise {
    /// Lample et al.'s settings: p_wd = 0.1, k = 3.
    fn default() -> Self {
        Noise {
            drop: 0.1,
            shuffle: 3,
        }
    }
}

impl Noise {
    /// Checks the rate.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.drop) {
            return Err(Error::config(format!(
                "--word-dropout {} must lie in [0, 1)",
                self.drop
            )));
        }
        Ok(())
    }

    /// The noisy version of `x` under `rng`.
    pub fn apply<T: Copy>(&self, x: &[T], rng: &mut ChaCha8Rng) -> Vec<T> {
        let mut kept: Vec<T> = x
            .iter()
            .copied()
            .filter(|_| rng.random::<f64>() >= self.drop)
            .collect();
        if kept.is_empty() && !x.is_empty() {
            kept.push(x[0]);
        }
        if self.shuffle == 0 {
            return kept;
        }
        let alpha = (self.shuffle + 1) as f64;
        let mut keyed: Vec<(f64, usize, T)> = kept
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i as f64 + rng.random::<f64>() * alpha, i, t))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed.into_iter().map(|(_, _, t)| t).collect()
    }
}

/// The generator of sentence `i`'s noise at `step`.
pub fn noise_rng(seed: u64, step: u64, i: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (i as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_loses_only_dropped_tokens_and_moves_at_most_k() {
        for k in [0usize, 1, 3, 6] {
            let n = Noise {
                drop: 0.1,
                shuffle: k,
            };
            let (mut dropped, mut total) = (0usize, 0usize);
            for i in 0..2000 {
                let len = 1 + i % 23;
                let x: Vec<u32> = (0..len as u32).collect();
                let y = n.apply(&x, &mut noise_rng(5, 7, i));
                assert!(!y.is_empty(), "sentence {i}: empty output");
                // Only tokens of x, each at most once: a permutation of the kept tokens.
                let mut kept = y.clone();
                kept.sort_unstable();
                kept.dedup();
                assert_eq!(kept.len(), y.len(), "sentence {i}: a token repeated");
                assert!(y.iter().all(|t| x.contains(t)));
                // Displacement against the kept tokens' order.
                for (pos, t) in y.iter().enumerate() {
                    let orig = kept.iter().position(|u| u == t).unwrap();
                    assert!(
                        pos.abs_diff(orig) <= k,
                        "sentence {i}, k = {k}: token {t} moved from {orig} to {pos}"
                    );
                }
                if k == 0 {
                    assert_eq!(y, kept, "k = 0 must keep the order");
                }
                dropped += len - y.len();
                total += len;
            }
            // 24,000 tokens at p = 0.1: the rate's standard error is ~0.002 (the kept-one
            // rule adds a little on 1-token sentences, which cannot lose their only token).
            let rate = dropped as f64 / total as f64;
            assert!((0.08..0.11).contains(&rate), "k = {k}: dropout rate {rate}");
        }
    }

    #[test]
    fn halves_share_no_line_index() {
        let dir = std::env::temp_dir().join(format!("wgrnn-halves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = 11;
        let de: Vec<String> = (0..n).map(|i| format!("satz {i}")).collect();
        let en: Vec<String> = (0..n).map(|i| format!("sentence {i}")).collect();
        std::fs::write(dir.join("train.de"), de.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("train.en"), en.join("\n") + "\n").unwrap();
        let h = halves(&dir, "de", "en").unwrap();
        assert_eq!((h.split, h.a.len(), h.b.len()), (5, 5, 6));
        // No German line's partner (the English line of the same index) is in the English half.
        for (i, _) in h.a.iter().enumerate() {
            assert!(
                !h.b.contains(&en[i]),
                "the partner of German line {i} is in the English half"
            );
        }
        assert_eq!(h.a, de[..5]);
        assert_eq!(h.b, en[5..]);
        std::fs::write(dir.join("train.en"), "one line\n").unwrap();
        let e = halves(&dir, "de", "en").unwrap_err().to_string();
        assert!(e.contains("train.en") && e.contains("1 lines"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
