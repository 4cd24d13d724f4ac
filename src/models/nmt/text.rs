//! Text for translation: a reversible word tokenizer, vocabularies with the four specials,
//! and a parallel corpus read line by line from `{split}.{lang}[.gz]`.
//!
//! Tokenization, chosen so that output detokenizes to plain cased text exactly: a line is
//! cut into maximal runs of alphanumeric characters (Unicode letters, digits and marks) and
//! single other non-space characters; case is kept. A token glued to the one before it (no
//! whitespace between) carries the prefix [`GLUE`]: `A man's hat.` is
//! `A man ##' ##s hat ##.`. [`detokenize`] joins with a space before every token that has no
//! prefix and strips the prefixes, so `detokenize(tokenize(x))` is `x` with its whitespace
//! runs collapsed to single spaces and trimmed (tested on every Multi30k sentence).

use std::path::{Path, PathBuf};

use super::super::bleu::read_lines;
use super::super::corpus::Vocab;
use crate::error::{Error, Result};

/// The prefix of a token glued to the previous one.
pub const GLUE: &str = "##";
/// Padding (id 0).
pub const PAD: &str = "<pad>";
/// Out-of-vocabulary tokens (id 1).
pub const UNK: &str = "<unk>";
/// Start of a target sentence (id 2): the decoder's first input.
pub const BOS: &str = "<s>";
/// End of a target sentence (id 3).
pub const EOS: &str = "</s>";
/// Ids of the specials.
pub const PAD_ID: u32 = 0;
/// See [`UNK`].
pub const UNK_ID: u32 = 1;
/// See [`BOS`].
pub const BOS_ID: u32 = 2;
/// See [`EOS`].
pub const EOS_ID: u32 = 3;

/// A word character: it continues a run.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// Combining marks (a decomposed accent stays with its letter).
fn is_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// The tokens of `line` (see the module docs).
pub fn tokenize(line: &str) -> Vec<String> {
    fn push(out: &mut Vec<String>, t: String, glued: bool) {
        out.push(if glued { format!("{GLUE}{t}") } else { t });
    }
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    let mut run_glued = false;
    let mut after_space = true;
    for c in line.chars() {
        if c.is_whitespace() {
            if !run.is_empty() {
                push(&mut out, std::mem::take(&mut run), run_glued);
            }
            after_space = true;
            continue;
        }
        let glued = !after_space; // a non-space character came just before
        if word_char(c) {
            if run.is_empty() {
                run_glued = glued;
            }
            run.push(c);
        } else {
            if !run.is_empty() {
                push(&mut out, std::mem::take(&mut run), run_glued);
            }
            push(&mut out, c.to_string(), glued);
        }
        after_space = false;
    }
    if !run.is_empty() {
        push(&mut out, run, run_glued);
    }
    out
}

/// Plain text of `tokens` (the inverse of [`tokenize`]).
pub fn detokenize<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut s = String::new();
    for t in tokens {
        let t = t.as_ref();
        match t.strip_prefix(GLUE) {
            Some(rest) if !rest.is_empty() => s.push_str(rest),
            _ => {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(t);
            }
        }
    }
    s
}

/// The specials every translation vocabulary starts with, in id order.
pub const SPECIALS: [&str; 4] = [PAD, UNK, BOS, EOS];

/// A language's vocabulary: [`SPECIALS`], then the training tokens seen at least
/// `min_count` times, most frequent first.
pub fn vocabulary(sentences: &[Vec<String>], min_count: usize) -> Result<Vocab> {
    Vocab::from_counts(
        sentences.iter().flatten().map(String::as_str),
        min_count.max(1),
        &SPECIALS,
    )
}

/// The ids of `tokens` (unknown ones [`UNK_ID`]), without `<s>` or `</s>`.
pub fn encode<S: AsRef<str>>(vocab: &Vocab, tokens: &[S]) -> Vec<u32> {
    vocab.encode_words(tokens, UNK_ID)
}

/// The plain text of decoder output `ids`: up to the first `</s>`, `<pad>` and `<s>`
/// skipped, `<unk>` written as `<unk>`.
pub fn decode(vocab: &Vocab, ids: &[u32]) -> String {
    let toks = vocab.tokens();
    let words: Vec<&str> = ids
        .iter()
        .take_while(|&&i| i != EOS_ID)
        .filter(|&&i| i != PAD_ID && i != BOS_ID)
        .map(|&i| toks.get(i as usize).map_or(UNK, String::as_str))
        .collect();
    detokenize(&words)
}

/// The file of a split and language in `dir`: `{split}.{lang}.gz`, else `{split}.{lang}`.
pub fn split_file(dir: &Path, split: &str, lang: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{split}.{lang}.gz"));
    let plain = dir.join(format!("{split}.{lang}"));
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else {
        Err(Error::Io {
            path: gz.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no such file (nor {})", plain.display()),
            ),
        })
    }
}

/// One split of a parallel corpus: raw lines and their tokens, line for line.
#[derive(Clone, Debug)]
pub struct Parallel {
    /// Raw source sentences.
    pub src: Vec<String>,
    /// Raw target sentences (the references).
    pub tgt: Vec<String>,
    /// Tokens of `src`.
    pub src_tokens: Vec<Vec<String>>,
    /// Tokens of `tgt`.
    pub tgt_tokens: Vec<Vec<String>>,
}

/// Reads `{split}.{src}` and `{split}.{tgt}` from `dir`; different line counts, or an empty
/// line on either side, are errors naming the file (and line).
pub fn read_parallel(dir: &Path, split: &str, src: &str, tgt: &str) -> Result<Parallel> {
    let (ps, pt) = (split_file(dir, split, src)?, split_file(dir, split, tgt)?);
    let (ls, lt) = (read_lines(&ps)?, read_lines(&pt)?);
    if ls.len() != lt.len() {
        return Err(Error::Format {
            path: pt.display().to_string(),
            problem: format!("{} lines, but {} has {}", lt.len(), ps.display(), ls.len()),
        });
    }
    let tok = |path: &Path, lines: &[String]| -> Result<Vec<Vec<String>>> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let t = tokenize(l);
                if t.is_empty() {
                    Err(Error::Format {
                        path: path.display().to_string(),
                        problem: format!("line {}: empty sentence", i + 1),
                    })
                } else {
                    Ok(t)
                }
            })
            .collect()
    };
    Ok(Parallel {
        src_tokens: tok(&ps, &ls)?,
        tgt_tokens: tok(&pt, &lt)?,
        src: ls,
        tgt: lt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_marks_what_touches() {
        let t = tokenize("A man's hat.  (2,5 m) -- \"Ok\"");
        assert_eq!(
            t,
            [
                "A", "man", "##'", "##s", "hat", "##.", "(", "##2", "##,", "##5", "m", "##)", "-",
                "##-", "\"", "##Ok", "##\""
            ]
        );
        assert_eq!(detokenize(&t), "A man's hat. (2,5 m) -- \"Ok\"");
        assert_eq!(detokenize(&tokenize("## #x")), "## #x");
        assert!(tokenize("  \t ").is_empty());
        assert_eq!(
            detokenize(&tokenize("Straße, Café\u{301}!")),
            "Straße, Café\u{301}!"
        );
    }
}
