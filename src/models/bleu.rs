//! Corpus BLEU exactly as sacreBLEU 2.x computes it with its defaults
//! (`sacrebleu.corpus_bleu(hyps, [refs])`): the mteval-v13a tokenizer, n-grams of orders 1 to
//! 4 clipped by one reference per line, the reference length of each line summed, the
//! brevity penalty, and the exponential ("mteval") smoothing of orders with no match;
//! case-sensitive unless lowercased. `tests/fixtures/bleu/` holds sacreBLEU's own numbers for
//! fixture files (made by `scripts/sacrebleu_fixtures.py`), token for token.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::corpus::read_maybe_gz;
use crate::error::{Error, Result};

/// The highest n-gram order.
pub const MAX_ORDER: usize = 4;

/// sacreBLEU's `13a` tokenization of one line (mteval-v13a's, as used by WMT): `<skipped>`
/// removed, four HTML entities unescaped, ASCII punctuation and symbols split off, periods
/// and commas split off unless between digits, a hyphen split off after a digit, whitespace
/// collapsed. Returns the tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut chars: Vec<char> = Vec::with_capacity(2 * s.len() + 2);
    for c in format!(" {s} ").chars() {
        if is_symbol(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let period = |c: char| c == '.' || c == ',';
    // r'([^0-9])([\.,])' -> r'\1 \2 '
    let chars = substitute_pairs(
        &chars,
        |a, b| !digit(a) && period(b),
        |a, b| [a, ' ', b, ' '],
    );
    // r'([\.,])([^0-9])' -> r' \1 \2'
    let chars = substitute_pairs(
        &chars,
        |a, b| period(a) && !digit(b),
        |a, b| [' ', a, ' ', b],
    );
    // r'([0-9])(-)' -> r'\1 \2 '
    let chars = substitute_pairs(&chars, |a, b| digit(a) && b == '-', |a, b| [a, ' ', b, ' ']);
    let text: String = chars.into_iter().collect();
    text.split(is_python_space)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first rule's class `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
fn is_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// Python's `re.sub` of a two-character pattern: scanning left to right, a matching pair is
/// replaced and the scan resumes after it (matches never overlap).
fn substitute_pairs(
    s: &[char],
    pattern: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> [char; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && pattern(s[i], s[i + 1]) {
            out.extend(replace(s[i], s[i + 1]));
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// What Python's `str.split()` splits on: Unicode White_Space and the four separators
/// U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Sufficient statistics of a corpus: per order, clipped matches and hypothesis n-grams, and
/// the hypothesis and reference lengths in tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BleuStats {
    /// Clipped n-gram matches, orders 1..=4.
    pub correct: [u64; MAX_ORDER],
    /// Hypothesis n-grams, orders 1..=4.
    pub total: [u64; MAX_ORDER],
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens.
    pub ref_len: u64,
}

impl BleuStats {
    /// Adds the statistics of one already tokenized line pair (tokens separated by spaces).
    pub fn add_tokenized(&mut self, hyp: &str, reference: &str) {
        let h: Vec<&str> = hyp.split(' ').filter(|t| !t.is_empty()).collect();
        let r: Vec<&str> = reference.split(' ').filter(|t| !t.is_empty()).collect();
        let ref_counts = ngram_counts(&r);
        for (gram, &count) in &ngram_counts(&h) {
            let n = gram.len() - 1;
            self.total[n] += count;
            self.correct[n] += count.min(ref_counts.get(gram).copied().unwrap_or(0));
        }
        self.sys_len += h.len() as u64;
        self.ref_len += r.len() as u64;
    }

    /// The score of these statistics.
    pub fn score(&self) -> Bleu {
        let (sys, reference) = (self.sys_len as f64, self.ref_len as f64);
        let bp = if self.sys_len >= self.ref_len {
            1.0
        } else if self.sys_len > 0 {
            (1.0 - reference / sys).exp()
        } else {
            0.0
        };
        let mut precisions = [0.0f64; MAX_ORDER];
        let mut score = 0.0;
        if self.correct.iter().any(|&c| c > 0) {
            let mut smooth = 1.0f64;
            for (n, p) in precisions.iter_mut().enumerate() {
                if self.total[n] == 0 {
                    break;
                }
                let total = self.total[n] as f64;
                *p = if self.correct[n] == 0 {
                    smooth *= 2.0;
                    100.0 / (smooth * total)
                } else {
                    100.0 * self.correct[n] as f64 / total
                };
            }
            // sacreBLEU's my_log: log 0 is floored to -9999999999, which zeroes the score.
            let logs: f64 = precisions
                .iter()
                .map(|&p| if p == 0.0 { -9_999_999_999.0 } else { p.ln() })
                .sum();
            score = bp * (logs / MAX_ORDER as f64).exp();
        }
        Bleu {
            score,
            precisions,
            bp,
            ratio: if self.ref_len > 0 {
                sys / reference
            } else {
                0.0
            },
            stats: *self,
        }
    }
}

/// Every n-gram of orders 1..=4 of `tokens` with its count.
fn ngram_counts<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], u64> {
    let mut m = HashMap::new();
    for n in 1..=MAX_ORDER.min(tokens.len()) {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// A corpus BLEU score and its parts (sacreBLEU's `BLEUScore`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bleu {
    /// BLEU on the 0-100 scale.
    pub score: f64,
    /// The (smoothed) n-gram precisions in percent, orders 1..=4.
    pub precisions: [f64; MAX_ORDER],
    /// The brevity penalty.
    pub bp: f64,
    /// Hypothesis length over reference length.
    pub ratio: f64,
    /// The statistics behind it.
    pub stats: BleuStats,
}

impl fmt::Display for Bleu {
    /// `BLEU = 41.69` on the first line, then sacreBLEU's verbose part:
    /// `85.9/54.9/38.7/27.6 (BP = 0.880 ratio = 0.886 hyp_len = 4546 ref_len = 5129)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        write!(
            f,
            "BLEU = {:.2}\n{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            p.join("/"),
            self.bp,
            self.ratio,
            self.stats.sys_len,
            self.stats.ref_len
        )
    }
}

/// Corpus BLEU of `hyps` against `refs` (one reference per hypothesis, raw detokenized text;
/// each line right-stripped, optionally lowercased, then 13a-tokenized).
pub fn corpus_bleu<S: AsRef<str>>(hyps: &[S], refs: &[S], lowercase: bool) -> Result<Bleu> {
    if hyps.len() != refs.len() {
        return Err(Error::config(format!(
            "{} hypotheses for {} references",
            hyps.len(),
            refs.len()
        )));
    }
    let prep = |s: &str| {
        let s = s.trim_end_matches(is_python_space);
        if lowercase {
            tokenize_13a(&s.to_lowercase())
        } else {
            tokenize_13a(s)
        }
    };
    let mut stats = BleuStats::default();
    for (h, r) in hyps.iter().zip(refs) {
        stats.add_tokenized(&prep(h.as_ref()), &prep(r.as_ref()));
    }
    Ok(stats.score())
}

/// The lines of a text file (plain or gzip, UTF-8): split at line feeds, a final line feed
/// ending the last line.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = read_maybe_gz(path)?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if body.is_empty() && text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body.split('\n').map(str::to_string).collect())
}

/// `wgrnn bleu`: BLEU of the hypothesis file against the reference file, line by line; a
/// different number of lines is an error naming both files.
pub fn bleu_files(reference: &Path, hyp: &Path, lowercase: bool) -> Result<Bleu> {
    let refs = read_lines(reference)?;
    let hyps = read_lines(hyp)?;
    if refs.len() != hyps.len() || refs.is_empty() {
        return Err(Error::Format {
            path: hyp.display().to_string(),
            problem: format!(
                "{} lines, but the references ({}) have {}",
                hyps.len(),
                reference.display(),
                refs.len()
            ),
        });
    }
    corpus_bleu(&hyps, &refs, lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_rules_do_not_overlap_like_python() {
        // Expected strings are sacreBLEU 2.6.0's Tokenizer13a()(s). In 'a..b' the second
        // rule consumes 'a.', so the second period's pair is ('.', '.'), which it leaves;
        // the third rule then splits both periods off.
        assert_eq!(tokenize_13a("a..b"), "a . . b");
        assert_eq!(tokenize_13a("1,000.50 3-4"), "1,000.50 3 - 4");
        assert_eq!(tokenize_13a("e-mail U.S."), "e-mail U . S .");
        assert_eq!(tokenize_13a(""), "");
    }

    #[test]
    fn identical_text_scores_100_and_disjoint_text_0() {
        let a = ["a cat sat on the mat .", "two dogs ran in the park"];
        // exp(ln 100) is 100 to the last bits only (sacreBLEU prints 100.00000000000004 too).
        assert!((corpus_bleu(&a, &a, false).unwrap().score - 100.0).abs() < 1e-9);
        let b = ["x y z", "u v w"];
        assert_eq!(corpus_bleu(&b, &a, false).unwrap().score, 0.0);
        assert!(corpus_bleu(&a[..1], &a, false).is_err());
    }
}
