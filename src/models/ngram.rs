//! Interpolated Kneser-Ney n-gram language model (Chen & Goodman 1998, "interpolated KN") with one
//! absolute discount `D` used at every order. Pure CPU code, std only, deterministic.
//!
//! # The model
//!
//! Let `n` be the order, `D` the discount (0 < D ≤ 1) and `V` the vocabulary size; tokens are the
//! ids `0..V`. A query P(w | history) uses the last `m = min(len(history), n - 1)` tokens of the
//! history, so its *top level* is order `m + 1` (a short history at the start of a stream is scored
//! exactly like an (m+1)-gram model). Each level k = 1..=m+1 has a context `h` of the last `k - 1`
//! history tokens and counts `a(h w)`:
//!
//! - at the top level, the raw training counts `a(h w) = c(h w)`;
//! - below the top, continuation counts `a(h w) = N1+(• h w)`, the number of distinct tokens `v`
//!   such that `v h w` occurs in training (the first training token has no predecessor, so it adds
//!   no continuation count).
//!
//! With `A(h) = Σ_w a(h w)` and `N1+(h •) = #{w : a(h w) > 0}`:
//!
//! ```text
//! A(h) == 0:  P_k(w | h) = P_{k-1}(w | h')                      (h' = h without its oldest token)
//! otherwise:  P_k(w | h) = max(a(h w) - D, 0) / A(h) + γ(h) · P_{k-1}(w | h')
//!             γ(h)       = Σ_w min(D, a(h w)) / A(h) = D · N1+(h •) / A(h)
//! P_0(w)      = 1 / V                                           (the uniform distribution)
//! ```
//!
//! The two forms of γ agree because counts are integers ≥ 1 and D ≤ 1, so `min(D, a) = D` for
//! every seen `w`. Hence Σ_w P(w | h) = 1 for every history and every P(w | h) > 0 for `w < V`.
//!
//! # Storage
//!
//! An n-gram of length k is packed into a `u128` key of k fields of `b = ceil(log2(V + 1))` bits,
//! the oldest token in the highest field, each field holding `token + 1` (so keys of different
//! lengths never collide and the empty history is key 0); `n · b ≤ 128` is required. One hash map
//! per length 0..=n maps a key to its raw count, its continuation count and, for the gram used as a
//! history, the integer totals `A(h)` and `N1+(h •)` for both kinds of counts. A query is then two
//! hash lookups per level, and every sum is integer arithmetic, so hash-map iteration order never
//! changes a result.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::{Error, Result};

/// The largest supported order.
const MAX_ORDER: usize = 10;

/// A fast, deterministic hasher for the packed `u128` keys (splitmix64 finaliser).
#[derive(Default)]
struct KeyHasher(u64);

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u128(&mut self, k: u128) {
        self.0 = mix(self.0 ^ (k as u64) ^ mix((k >> 64) as u64));
    }
}

type Map = HashMap<u128, Stats, BuildHasherDefault<KeyHasher>>;

/// Everything known about one packed gram `g`.
#[derive(Default, Clone, Copy)]
struct Stats {
    /// c(g): occurrences of `g` in training.
    raw: u32,
    /// N1+(• g): distinct tokens preceding `g` in training.
    cont: u32,
    /// As a history h = g: Σ_w c(h w).
    raw_total: u32,
    /// As a history: #{w : c(h w) > 0}.
    raw_types: u32,
    /// As a history: Σ_w N1+(• h w).
    cont_total: u32,
    /// As a history: #{w : N1+(• h w) > 0}.
    cont_types: u32,
}

/// An interpolated Kneser-Ney n-gram model over token ids 0..vocab.
///
/// See the module documentation for the exact formulas.
pub struct KneserNey {
    order: usize,
    vocab: usize,
    discount: f64,
    /// Bits per token in a packed key.
    bits: usize,
    /// `grams[k]`: the statistics of every training k-gram, k = 0..=order (`grams[0]` holds the
    /// empty history, key 0).
    grams: Vec<Map>,
}

impl KneserNey {
    /// Counts `tokens` (ids < vocab; error naming the position otherwise) for a model of `order`
    /// (1..=10) with discount `discount` in (0, 1]. Errors are [`Error::Config`] for the order,
    /// discount, vocabulary size and packing limits, and [`Error::Shape`] for a token out of range.
    ///
    /// `order · ceil(log2(vocab + 1))` must not exceed 128 (the packed key's width). An empty
    /// `tokens` is allowed and gives the uniform distribution.
    pub fn train(tokens: &[u32], vocab: usize, order: usize, discount: f64) -> Result<Self> {
        if order == 0 || order > MAX_ORDER {
            return Err(Error::config(format!(
                "n-gram order must be in 1..={MAX_ORDER}, got {order}"
            )));
        }
        if !(discount > 0.0 && discount <= 1.0) {
            return Err(Error::config(format!(
                "Kneser-Ney discount must be in (0, 1], got {discount}"
            )));
        }
        if vocab == 0 {
            return Err(Error::config("n-gram vocabulary size must be at least 1"));
        }
        let bits = (usize::BITS - vocab.leading_zeros()) as usize;
        if order * bits > 128 {
            return Err(Error::config(format!(
                "n-gram order {order} with vocabulary {vocab} needs {order} x {bits} = {} key \
                 bits, more than 128",
                order * bits
            )));
        }
        if tokens.len() > u32::MAX as usize {
            return Err(Error::shape(
                "tokens",
                format!(
                    "{} tokens exceed the counter limit of {}",
                    tokens.len(),
                    u32::MAX
                ),
            ));
        }
        if let Some((i, &t)) = tokens
            .iter()
            .enumerate()
            .find(|&(_, &t)| t as usize >= vocab)
        {
            return Err(Error::shape(
                "tokens",
                format!("token {t} at position {i} is not below the vocabulary size {vocab}"),
            ));
        }

        // Raw counts, one length at a time with a rolling key.
        let mut grams: Vec<Map> = Vec::with_capacity(order + 1);
        let mut root = Map::default();
        root.insert(0, Stats::default());
        grams.push(root);
        for k in 1..=order {
            let mut map = Map::default();
            if tokens.len() >= k {
                let mask = field_mask(k * bits);
                let mut key = 0u128;
                for (i, &t) in tokens.iter().enumerate() {
                    key = ((key << bits) | (u128::from(t) + 1)) & mask;
                    if i + 1 >= k {
                        map.entry(key).or_default().raw += 1;
                    }
                }
            }
            grams.push(map);
        }

        // Continuation counts: each distinct (k+1)-gram v g adds one to N1+(• g).
        for k in 1..order {
            let (lo, hi) = grams.split_at_mut(k + 1);
            let shorter = &mut lo[k];
            let mask = field_mask(k * bits);
            for &key in hi[0].keys() {
                shorter.entry(key & mask).or_default().cont += 1;
            }
        }

        // Per-history totals: each distinct k-gram h w adds to the statistics of h.
        for k in 1..=order {
            let (lo, hi) = grams.split_at_mut(k);
            let histories = &mut lo[k - 1];
            for (&key, s) in hi[0].iter() {
                let h = histories.entry(key >> bits).or_default();
                h.raw_total += s.raw;
                h.raw_types += 1;
                if s.cont > 0 {
                    h.cont_total += s.cont;
                    h.cont_types += 1;
                }
            }
        }

        Ok(KneserNey {
            order,
            vocab,
            discount,
            bits,
            grams,
        })
    }

    /// The order n.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The vocabulary size V.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// P(w | history): `history` holds the previous tokens, oldest first; only its last
    /// `order - 1` tokens are used; a shorter history (start of a stream) is allowed.
    ///
    /// Returns 0 for `w >= vocab`. A context containing a history token `>= vocab` counts as
    /// never seen (its level defers entirely to the level below).
    pub fn prob(&self, history: &[u32], w: u32) -> f64 {
        if w as usize >= self.vocab {
            return 0.0;
        }
        let d = self.discount;
        let m = history.len().min(self.order - 1);
        let h = &history[history.len() - m..];
        let top = m + 1;
        let mut p = 1.0 / self.vocab as f64;
        // Packed key of the last k - 1 history tokens; None once it holds an invalid token.
        let mut ctx = Some(0u128);
        for k in 1..=top {
            if k > 1 {
                let t = h[m - (k - 1)];
                ctx = ctx
                    .filter(|_| (t as usize) < self.vocab)
                    .map(|c| c | ((u128::from(t) + 1) << ((k - 2) * self.bits)));
            }
            let Some(c) = ctx else { break };
            let Some(hs) = self.grams[k - 1].get(&c) else {
                continue;
            };
            let raw = k == top;
            let (total, types) = if raw {
                (hs.raw_total, hs.raw_types)
            } else {
                (hs.cont_total, hs.cont_types)
            };
            if total == 0 {
                continue;
            }
            let key = (c << self.bits) | (u128::from(w) + 1);
            let a = self.grams[k]
                .get(&key)
                .map_or(0, |s| if raw { s.raw } else { s.cont });
            let total = f64::from(total);
            let discounted = if a > 0 {
                (f64::from(a) - d) / total
            } else {
                0.0
            };
            p = discounted + d * f64::from(types) / total * p;
        }
        p
    }

    /// Scores `stream[1..]`: every token after the first is predicted from the tokens before it
    /// within `stream` (so the first tokens use the shorter history available).
    /// Returns (sum of -ln P over the scored tokens, number of scored tokens = len - 1).
    pub fn score(&self, stream: &[u32]) -> (f64, usize) {
        let mut nll = 0.0;
        for i in 1..stream.len() {
            let lo = i.saturating_sub(self.order - 1);
            nll -= self.prob(&stream[lo..i], stream[i]).ln();
        }
        (nll, stream.len().saturating_sub(1))
    }
}

/// A mask of the low `bits` bits of a `u128` (`bits` ≤ 128).
fn field_mask(bits: usize) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}
