//! Translation text handling on the shipped Multi30k files: tokenization round trip on every
//! sentence, vocabularies, and the errors a bad corpus gets. No GPU.

use std::path::{Path, PathBuf};

use wgrnn::models::nmt::text::{self, BOS_ID, EOS_ID, UNK_ID};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/multi30k")
}

#[test]
fn every_multi30k_sentence_round_trips() {
    let mut n = 0;
    for split in ["train", "val", "test_2016_flickr"] {
        let p = text::read_parallel(&data(), split, "de", "en").unwrap();
        assert_eq!(p.src.len(), p.tgt.len());
        for (raw, toks) in p
            .src
            .iter()
            .chain(&p.tgt)
            .zip(p.src_tokens.iter().chain(&p.tgt_tokens))
        {
            let want = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(text::detokenize(toks), want, "{split}: {raw:?}");
            n += 1;
        }
    }
    assert_eq!(n, 2 * (29_000 + 1_014 + 1_000));
}

#[test]
fn vocabularies_and_ids() {
    let p = text::read_parallel(&data(), "val", "de", "en").unwrap();
    let v = text::vocabulary(&p.tgt_tokens, 2).unwrap();
    assert_eq!(&v.tokens()[..4], &text::SPECIALS);
    let ids = text::encode(&v, &p.tgt_tokens[0]);
    assert!(ids.iter().all(|&i| i > EOS_ID || i == UNK_ID));
    let mut with_ends = vec![BOS_ID];
    with_ends.extend(&ids);
    with_ends.push(EOS_ID);
    with_ends.push(ids[0]); // after </s>: ignored
    let back = text::decode(&v, &with_ends);
    let known: Vec<String> = p.tgt_tokens[0]
        .iter()
        .map(|t| {
            if v.id(t).is_some() {
                t.clone()
            } else {
                "<unk>".into()
            }
        })
        .collect();
    assert_eq!(back, text::detokenize(&known));
}

#[test]
fn bad_corpora_name_the_file_and_line() {
    let d = std::env::temp_dir().join(format!("wgrnn-nmt-text-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train.de"), "ein Hund\nzwei Katzen\n").unwrap();
    std::fs::write(d.join("train.en"), "a dog\n").unwrap();
    let e = text::read_parallel(&d, "train", "de", "en").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("train.en") && msg.contains("train.de") && msg.contains('1'),
        "{msg}"
    );
    std::fs::write(d.join("train.en"), "a dog\n  \n").unwrap();
    let msg = text::read_parallel(&d, "train", "de", "en")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("train.en") && msg.contains("line 2"), "{msg}");
    let msg = text::read_parallel(&d, "val", "de", "en")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("val.de"), "{msg}");
    std::fs::remove_dir_all(&d).unwrap();
}
