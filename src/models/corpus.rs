//! Text corpora for language models: reading a UTF-8 file (errors name the file and line), the
//! character and word vocabularies, the word tokeniser and the train / validation split.
//!
//! Character level, as char-rnn: tokens are Unicode scalar values; the vocabulary is every
//! distinct character of the whole file sorted by code point (id = rank); the first
//! `floor(0.95 N)` characters train and the rest validate. Validation is scored as one stream:
//! every validation token after the first is predicted, so `N_val - 1` tokens are scored.
//!
//! Word level ([`word_tokens`]): case kept, split on whitespace, every character that is
//! neither alphanumeric nor whitespace (punctuation, apostrophes included) a token of its own,
//! every line end (`\n`) an `<eos>` token. The split point `floor(0.95 N)` (characters) moves
//! forward to the next line start and each side is tokenised on its own. The vocabulary is
//! `<unk>`, `<eos>`, then the training tokens seen at least `min_count` times, most frequent
//! first; every other token maps to `<unk>`, which is scored like any token (PTB practice).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Token strings in id order and their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// A vocabulary of `tokens` in id order (each distinct).
    pub fn new(tokens: Vec<String>) -> Result<Vocab> {
        let mut index = HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if index.insert(t.clone(), i as u32).is_some() {
                return Err(Error::config(format!("vocabulary lists {t:?} twice")));
            }
        }
        if tokens.is_empty() {
            return Err(Error::config("empty vocabulary"));
        }
        Ok(Vocab { tokens, index })
    }

    /// Every distinct character of `text`, sorted by code point.
    pub fn chars_of(text: &str) -> Result<Vocab> {
        let mut cs: Vec<char> = text.chars().collect();
        cs.sort_unstable();
        cs.dedup();
        Self::new(cs.into_iter().map(String::from).collect())
    }

    /// A word vocabulary: `specials` first (e.g. `<pad>`, `<unk>`), then every token seen at
    /// least `min_count` times, most frequent first, ties in code-point order (deterministic).
    pub fn from_counts<'a>(
        tokens: impl IntoIterator<Item = &'a str>,
        min_count: usize,
        specials: &[&str],
    ) -> Result<Vocab> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in tokens {
            *counts.entry(t).or_default() += 1;
        }
        let mut kept: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|(t, c)| *c >= min_count.max(1) && !specials.contains(t))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Self::new(
            specials
                .iter()
                .map(|s| s.to_string())
                .chain(kept.into_iter().map(|(t, _)| t.to_string()))
                .collect(),
        )
    }

    /// The ids of `tokens`, `unk` for a token outside the vocabulary.
    pub fn encode_words<S: AsRef<str>>(&self, tokens: &[S], unk: u32) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| self.id(t.as_ref()).unwrap_or(unk))
            .collect()
    }

    /// V
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token strings in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of `token`.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The ids of `text`'s characters; an unknown character is an error naming `what`, the
    /// character and its position.
    pub fn encode_chars(&self, what: &str, text: &str) -> Result<Vec<u32>> {
        let mut buf = [0u8; 4];
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.id(c.encode_utf8(&mut buf)).ok_or_else(|| {
                    Error::config(format!(
                        "{what}: character {c:?} at position {i} is not in the model's vocabulary"
                    ))
                })
            })
            .collect()
    }

    /// The text of `ids` (each below V).
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| {
                self.tokens
                    .get(i as usize)
                    .map_or("\u{fffd}", |s| s.as_str())
            })
            .collect()
    }
}

/// The unknown-word token of word vocabularies (id 0).
pub const UNK: &str = "<unk>";
/// The line-end token of word vocabularies (id 1).
pub const EOS: &str = "<eos>";

/// The word tokens of `text` (see the module docs): `"Hi, you're\n"` is
/// `Hi , you ' re <eos>`.
pub fn word_tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if c == '\n' {
            out.push(EOS);
        } else if !c.is_whitespace() {
            out.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// Word tokens back to text: tokens joined by single spaces, `<eos>` as a line end (no space
/// around it). `word_tokens(&join_words(t)) == t` for every token list `word_tokens` makes.
pub fn join_words<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut out = String::new();
    for t in tokens {
        let t = t.as_ref();
        if t == EOS {
            out.push('\n');
        } else {
            if !(out.is_empty() || out.ends_with('\n')) {
                out.push(' ');
            }
            out.push_str(t);
        }
    }
    out
}

/// What a language model's tokens are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Unicode scalar values.
    Char,
    /// [`word_tokens`].
    Word,
}

impl Unit {
    /// `char` or `word`.
    pub fn parse(s: &str) -> Result<Unit> {
        match s {
            "char" => Ok(Unit::Char),
            "word" => Ok(Unit::Word),
            _ => Err(Error::config(format!(
                "--unit {s:?}: expected char or word"
            ))),
        }
    }

    /// `char` or `word`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Char => "char",
            Unit::Word => "word",
        }
    }

    /// The token a line end is: `\n` or `<eos>`.
    pub fn line_end(self) -> &'static str {
        match self {
            Unit::Char => "\n",
            Unit::Word => EOS,
        }
    }

    /// The ids of a prime (or any text) under `vocab`: characters must be in the vocabulary
    /// (the error names `what` and the position); words outside it become `<unk>`.
    pub fn encode(self, vocab: &Vocab, what: &str, text: &str) -> Result<Vec<u32>> {
        match self {
            Unit::Char => vocab.encode_chars(what, text),
            Unit::Word => {
                let unk = vocab
                    .id(UNK)
                    .ok_or_else(|| Error::config(format!("{what}: the vocabulary has no {UNK}")))?;
                Ok(vocab.encode_words(&word_tokens(text), unk))
            }
        }
    }

    /// The text of `ids`, to follow text that ended with a line end (`at_line_start`) or not:
    /// characters as they are; words with a space before each except after a line end.
    pub fn render(self, vocab: &Vocab, ids: &[u32], at_line_start: bool) -> String {
        match self {
            Unit::Char => vocab.decode(ids),
            Unit::Word => {
                let mut out = String::new();
                let mut line_start = at_line_start;
                for &i in ids {
                    let t = vocab
                        .tokens()
                        .get(i as usize)
                        .map_or("\u{fffd}", |s| s.as_str());
                    if t == EOS {
                        out.push('\n');
                        line_start = true;
                    } else {
                        if !line_start {
                            out.push(' ');
                        }
                        out.push_str(t);
                        line_start = false;
                    }
                }
                out
            }
        }
    }
}

/// A tokenised corpus: vocabulary, training and validation ids.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The file it came from (for messages and checkpoints).
    pub path: String,
    /// Characters or words.
    pub unit: Unit,
    /// The vocabulary.
    pub vocab: Vocab,
    /// The training ids (the first `floor(0.95 N)` tokens).
    pub train: Vec<u32>,
    /// The validation ids (the rest), scored as one stream.
    pub valid: Vec<u32>,
}

/// Reads `path` (plain or gzip) as text.
pub fn read_maybe_gz(path: &Path) -> Result<String> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: p.clone(),
        source: e,
    })?;
    decode(&p, bytes)
}

/// The text of a file's bytes (UTF-8), gunzipped when they start with gzip's magic bytes;
/// `name` names the input in errors.
pub fn decode(name: &str, bytes: Vec<u8>) -> Result<String> {
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Format {
                path: name.to_string(),
                problem: format!("not a valid gzip file: {e}"),
            })?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Format {
            path: name.to_string(),
            problem: format!("line {line}: not valid UTF-8"),
        }
    })
}

/// Reads `path` as UTF-8; invalid UTF-8 and an empty file are errors naming the file and line.
pub fn read_text(path: &Path) -> Result<String> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: p.clone(),
        source: e,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Format {
            path: p.clone(),
            problem: format!("line {line}: not valid UTF-8 (byte {at})"),
        }
    })?;
    if text.is_empty() {
        return Err(Error::Format {
            path: p,
            problem: "the file is empty".into(),
        });
    }
    Ok(text)
}

impl Corpus {
    /// The character corpus of `text` (from `path`): vocabulary of the whole text, split at
    /// `floor(0.95 N)` characters. Needs at least two validation characters.
    pub fn chars(path: &str, text: &str) -> Result<Corpus> {
        let vocab = Vocab::chars_of(text)?;
        let ids = vocab.encode_chars(path, text)?;
        let split = (ids.len() as f64 * 0.95).floor() as usize;
        if ids.len() - split < 2 || split < 2 {
            return Err(Error::Format {
                path: path.to_string(),
                problem: format!(
                    "{} characters are too few to split 95% / 5% with two of each",
                    ids.len()
                ),
            });
        }
        Ok(Corpus {
            path: path.to_string(),
            unit: Unit::Char,
            vocab,
            valid: ids[split..].to_vec(),
            train: ids[..split].to_vec(),
        })
    }

    /// [`Corpus::chars`] of the file at `path`.
    pub fn read_chars(path: &Path) -> Result<Corpus> {
        Self::chars(&path.display().to_string(), &read_text(path)?)
    }

    /// The word corpus of `text` (from `path`; see the module docs); `vocab` given (a
    /// checkpoint's), the text is encoded with it instead of building one from `min_count`.
    pub fn words(
        path: &str,
        text: &str,
        min_count: usize,
        vocab: Option<&Vocab>,
    ) -> Result<Corpus> {
        let n = text.chars().count();
        let k = (n as f64 * 0.95).floor() as usize;
        let at = text.char_indices().nth(k).map_or(text.len(), |(b, _)| b);
        let split = if at == 0 || text[..at].ends_with('\n') {
            at
        } else {
            text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
        };
        let (train, valid) = (word_tokens(&text[..split]), word_tokens(&text[split..]));
        if train.len() < 2 || valid.len() < 2 {
            return Err(Error::Format {
                path: path.to_string(),
                problem: format!(
                    "{} training and {} validation words: too few (the split is at the first line start after 95% of the characters)",
                    train.len(),
                    valid.len()
                ),
            });
        }
        let vocab = match vocab {
            Some(v) => v.clone(),
            None => Vocab::from_counts(train.iter().copied(), min_count, &[UNK, EOS])?,
        };
        let unk = vocab.id(UNK).ok_or_else(|| Error::Format {
            path: path.to_string(),
            problem: format!("the vocabulary has no {UNK}"),
        })?;
        Ok(Corpus {
            path: path.to_string(),
            unit: Unit::Word,
            train: vocab.encode_words(&train, unk),
            valid: vocab.encode_words(&valid, unk),
            vocab,
        })
    }

    /// The corpus of the file at `path` in `unit`s ([`Corpus::chars`] or [`Corpus::words`]).
    pub fn read(
        path: &Path,
        unit: Unit,
        min_count: usize,
        vocab: Option<&Vocab>,
    ) -> Result<Corpus> {
        let text = read_text(path)?;
        let p = path.display().to_string();
        match unit {
            Unit::Char => Self::chars(&p, &text),
            Unit::Word => Self::words(&p, &text, min_count, vocab),
        }
    }
}

/// Batches of at most `batch` items bucketed by length: the items sorted by (length, index)
/// and cut into consecutive batches, whose order is then shuffled by a generator seeded with
/// `(seed, epoch)`; the same arguments always give the same batches.
pub fn buckets(lengths: &[usize], batch: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let mut out: Vec<Vec<usize>> = order.chunks(batch.max(1)).map(|c| c.to_vec()).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_sorted_by_code_point_and_the_split_is_95_percent() {
        let text = "hello world, héllo!\nabc abc abc abc abc abc abc abc abc abc abc";
        let c = Corpus::chars("t", text).unwrap();
        let toks = c.vocab.tokens();
        assert!(toks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(toks[0], "\n");
        let n = text.chars().count();
        assert_eq!(c.train.len(), (n as f64 * 0.95).floor() as usize);
        assert_eq!(c.train.len() + c.valid.len(), n);
        let all: Vec<u32> = c.train.iter().chain(&c.valid).copied().collect();
        assert_eq!(c.vocab.decode(&all), text);
        let e = c.vocab.encode_chars("prime", "abz").unwrap_err();
        assert!(e.to_string().contains("'z' at position 2"), "{e}");
    }

    #[test]
    fn word_vocabulary_and_buckets_are_deterministic() {
        let words = "b a c a b a <unk> d".split(' ');
        let v = Vocab::from_counts(words, 2, &["<pad>", "<unk>"]).unwrap();
        assert_eq!(v.tokens(), &["<pad>", "<unk>", "a", "b"]);
        assert_eq!(v.encode_words(&["a", "zz", "b"], 1), vec![2, 1, 3]);
        let lens = [5, 1, 3, 3, 9, 2, 7];
        let b = buckets(&lens, 3, 7, 0);
        assert_eq!(b, buckets(&lens, 3, 7, 0));
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        // Each batch holds neighbours in length order.
        assert!(b.iter().any(|x| x == &vec![1, 5, 2]));
    }

    #[test]
    fn word_tokens_split_punctuation_and_round_trip() {
        let text = "First Citizen:\nWe're  all\tresolved -- é, ok?\n\nend";
        let t = word_tokens(text);
        assert_eq!(
            t,
            [
                "First", "Citizen", ":", EOS, "We", "'", "re", "all", "resolved", "-", "-", "é",
                ",", "ok", "?", EOS, EOS, "end"
            ]
        );
        assert_eq!(word_tokens(&join_words(&t)), t);
        assert_eq!(join_words(&t[..4]), "First Citizen :\n");
        let v = Vocab::new(vec![UNK.into(), EOS.into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(
            Unit::Word.encode(&v, "p", "a zz b\n").unwrap(),
            vec![2, 0, 3, 1]
        );
        assert_eq!(Unit::Word.render(&v, &[2, 0, 1, 3], true), "a <unk>\nb");
        assert_eq!(Unit::Word.render(&v, &[3], false), " b");
    }

    #[test]
    fn word_split_moves_to_a_line_start_and_unknowns_map_to_unk() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!(
                "the cat {} sat\n",
                if i % 7 == 0 { "odd" } else { "fat" }
            ));
        }
        text.push_str("a zebra sat\n");
        let c = Corpus::words("t", &text, 2, None).unwrap();
        assert_eq!(c.vocab.tokens()[..2], [UNK.to_string(), EOS.to_string()]);
        let k = (text.chars().count() as f64 * 0.95).floor() as usize;
        let split = k + text[k..].find('\n').unwrap() + 1;
        assert_eq!(c.train.len(), word_tokens(&text[..split]).len());
        assert_eq!(c.valid.len(), word_tokens(&text[split..]).len());
        // "zebra" and "a" are only in validation: <unk> (id 0), scored as tokens.
        assert!(c.vocab.id("zebra").is_none());
        assert_eq!(&c.valid[c.valid.len() - 4..c.valid.len() - 2], &[0, 0]);
        assert!(c.vocab.id("odd").is_some());
        let again = Corpus::words("t", &text, 99, Some(&c.vocab)).unwrap();
        assert_eq!(
            (again.train, again.valid),
            (c.train.clone(), c.valid.clone())
        );
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let d = std::env::temp_dir().join(format!("wgrnn-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("bad.txt");
        std::fs::write(&f, b"ok line\nsecond \xff line\n").unwrap();
        let e = Corpus::read_chars(&f).unwrap_err();
        assert!(
            e.to_string().contains("bad.txt") && e.to_string().contains("line 2"),
            "{e}"
        );
        std::fs::write(&f, b"").unwrap();
        assert!(
            Corpus::read_chars(&f)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        std::fs::write(&f, b"abc").unwrap();
        assert!(
            Corpus::read_chars(&f)
                .unwrap_err()
                .to_string()
                .contains("too few")
        );
        assert!(Corpus::read_chars(&d.join("missing.txt")).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
