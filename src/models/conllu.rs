//! CoNLL-U files (Universal Dependencies): reading sentences' word forms and UPOS tags, and
//! writing a file back with column 4 (UPOS) replaced on word lines and every other byte as it
//! was. Plain or gzip input (by its magic bytes).
//!
//! A word line has ten tab-separated columns and an integer ID; multiword-token ranges (`1-2`)
//! and empty nodes (`1.1`) have ten columns too but are not words; comments start with `#`;
//! a blank line ends a sentence. Anything else is an error naming the file and line.

use std::path::Path;

use super::corpus::read_maybe_gz;
use crate::error::{Error, Result};

/// One word of a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// Column 2.
    pub form: String,
    /// Column 4.
    pub upos: String,
}

/// A document: its text (decompressed) and its sentences of words.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file, for messages.
    pub path: String,
    /// The whole text, as read.
    pub text: String,
    /// The sentences, words in order.
    pub sentences: Vec<Vec<Word>>,
}

/// What a line of a CoNLL-U file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    Word,
    /// A multiword-token range or an empty node.
    Other,
}

fn classify(line: &str, n: usize, path: &str) -> Result<Kind> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(Kind::Blank);
    }
    if line.starts_with('#') {
        return Ok(Kind::Comment);
    }
    let cols = line.split('\t').count();
    let bad = |p: String| Error::Format {
        path: path.to_string(),
        problem: format!("line {n}: {p}"),
    };
    if cols != 10 {
        return Err(bad(format!("{cols} tab-separated columns, expected 10")));
    }
    let id = line.split('\t').next().unwrap_or("");
    let int = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if int(id) {
        return Ok(Kind::Word);
    }
    if let Some((a, b)) = id.split_once('-').or_else(|| id.split_once('.'))
        && int(a)
        && int(b)
    {
        return Ok(Kind::Other);
    }
    Err(bad(format!(
        "ID {id:?} is not an integer, a range a-b or a decimal a.b"
    )))
}

/// Parses CoNLL-U `text` (from `path`, for messages).
pub fn parse(path: &str, text: String) -> Result<Document> {
    let mut sentences = Vec::new();
    let mut cur = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match classify(line, i + 1, path)? {
            Kind::Blank => {
                if !cur.is_empty() {
                    sentences.push(std::mem::take(&mut cur));
                }
            }
            Kind::Word => {
                let c: Vec<&str> = line.split('\t').collect();
                cur.push(Word {
                    form: c[1].to_string(),
                    upos: c[3].to_string(),
                });
            }
            Kind::Comment | Kind::Other => {}
        }
    }
    if !cur.is_empty() {
        sentences.push(cur);
    }
    Ok(Document {
        path: path.to_string(),
        text,
        sentences,
    })
}

/// Reads and parses a CoNLL-U file (plain or gzip).
pub fn read(path: &Path) -> Result<Document> {
    parse(&path.display().to_string(), read_maybe_gz(path)?)
}

/// The document's text with column 4 of the k-th word line replaced by `tags[k]` (word lines
/// in file order); every other byte (comments, blank lines, ranges, empty nodes, the other
/// columns, line endings) is kept.
pub fn retag(doc: &Document, tags: &[&str]) -> Result<String> {
    let mut out = String::with_capacity(doc.text.len() + tags.len());
    let mut k = 0;
    for (i, line) in doc.text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        if classify(body, i + 1, &doc.path)? != Kind::Word {
            out.push_str(line);
            continue;
        }
        let tag = tags
            .get(k)
            .ok_or_else(|| Error::Device("internal: too few tags".into()))?;
        k += 1;
        let mut cols = body.splitn(5, '\t');
        let (a, b, c) = (cols.next(), cols.next(), cols.next());
        let _old = cols.next();
        let rest = cols.next().unwrap_or("");
        out.push_str(&format!(
            "{}\t{}\t{}\t{tag}\t{rest}",
            a.unwrap_or(""),
            b.unwrap_or(""),
            c.unwrap_or("")
        ));
        out.push_str(&line[body.len()..]);
    }
    if k != tags.len() {
        return Err(Error::Device("internal: too many tags".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# sent_id = 1\n# text = Don't go.\n1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No\n3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_\n4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\r\n\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n";

    #[test]
    fn words_tags_and_a_byte_exact_round_trip() {
        let d = parse("s", SAMPLE.to_string()).unwrap();
        assert_eq!(d.sentences.len(), 2);
        let forms: Vec<&str> = d.sentences[0].iter().map(|w| w.form.as_str()).collect();
        assert_eq!(forms, ["Do", "n't", "go", "."]);
        assert_eq!(d.sentences[1][0].upos, "INTJ");
        // Writing the same tags back gives the same bytes.
        let tags: Vec<&str> = d
            .sentences
            .iter()
            .flatten()
            .map(|w| w.upos.as_str())
            .collect();
        assert_eq!(retag(&d, &tags).unwrap(), SAMPLE);
        // Other tags change column 4 of word lines only.
        let x = vec!["X"; tags.len()];
        let out = retag(&d, &x).unwrap();
        for (a, b) in SAMPLE.split_inclusive('\n').zip(out.split_inclusive('\n')) {
            let word = a
                .split('\t')
                .next()
                .is_some_and(|id| id.bytes().all(|c| c.is_ascii_digit()) && !id.is_empty());
            if word {
                let (ca, cb): (Vec<&str>, Vec<&str>) =
                    (a.split('\t').collect(), b.split('\t').collect());
                assert_eq!(cb[3], "X");
                for i in [0, 1, 2, 4, 5, 6, 7, 8, 9] {
                    assert_eq!(ca[i], cb[i]);
                }
            } else {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let e = parse("f", "1\tonly\tthree\n".into()).unwrap_err();
        assert!(
            e.to_string().contains("f: line 1: 3 tab-separated columns"),
            "{e}"
        );
        let e = parse("f", "# c\nx\ta\tb\tc\td\te\tf\tg\th\ti\n".into()).unwrap_err();
        assert!(e.to_string().contains("line 2: ID \"x\""), "{e}");
    }
}
