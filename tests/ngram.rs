//! Interpolated Kneser-Ney n-gram model: normalisation, a brute-force twin, a hand-computed case,
//! stream scoring and input errors. No GPU.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgrnn::Error;
use wgrnn::models::ngram::KneserNey;

/// Seeded uniform tokens in 0..k.
fn random_tokens(seed: u64, n: usize, k: u32) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (rng.next_u64() % u64::from(k)) as u32)
        .collect()
}

fn sum_probs(m: &KneserNey, h: &[u32]) -> f64 {
    (0..m.vocab() as u32).map(|w| m.prob(h, w)).sum()
}

#[test]
fn every_context_sums_to_one() {
    // Tokens 0..6 only, so 6 is a vocabulary id never seen in training.
    let vocab = 7;
    let text = random_tokens(11, 500, 6);
    let unseen: Vec<Vec<u32>> = vec![
        vec![6],
        vec![6, 6],
        vec![0, 6],
        vec![6, 0],
        vec![6, 1, 2],
        vec![1, 2, 6],
        vec![6, 6, 6],
        vec![3, 6, 4],
        vec![9, 1], // out-of-range history token: that context counts as unseen
        vec![0, 1, 2, 3, 4, 5, 0, 1, 2], // longer than any order - 1
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for order in 1..=4 {
        for &d in &[0.5, 0.75, 1.0] {
            let m = KneserNey::train(&text, vocab, order, d).unwrap();
            assert_eq!(m.order(), order);
            assert_eq!(m.vocab(), vocab);
            let mut histories: Vec<Vec<u32>> = unseen.clone();
            for len in 0..order {
                for i in (len..=text.len()).step_by(7) {
                    histories.push(text[i - len..i].to_vec());
                }
                // Random histories of this length: many were never seen at high orders.
                for _ in 0..20 {
                    histories.push((0..len).map(|_| (rng.next_u64() % 7) as u32).collect());
                }
            }
            for h in &histories {
                let s = sum_probs(&m, h);
                assert!(
                    (s - 1.0).abs() <= 1e-12,
                    "order {order}, D {d}, history {h:?}: sum {s:.17}"
                );
                for w in 0..vocab as u32 {
                    assert!(m.prob(h, w) > 0.0, "order {order}, D {d}, {h:?} -> {w}");
                }
                assert_eq!(m.prob(h, vocab as u32), 0.0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brute force: every count recomputed by scanning the training text, for every query.

/// c(g): occurrences of `g` (non-empty) in `text`.
fn naive_count(text: &[u32], g: &[u32]) -> usize {
    if g.len() > text.len() {
        return 0;
    }
    text.windows(g.len()).filter(|w| *w == g).count()
}

/// N1+(• g): distinct tokens v with `v g` in `text`.
fn naive_cont(text: &[u32], vocab: usize, g: &[u32]) -> usize {
    (0..vocab as u32)
        .filter(|&v| {
            let mut vg = vec![v];
            vg.extend_from_slice(g);
            naive_count(text, &vg) > 0
        })
        .count()
}

/// a(ctx w) at a level: raw counts at the top, continuation counts below.
fn naive_a(text: &[u32], vocab: usize, raw: bool, ctx: &[u32], w: u32) -> f64 {
    let mut g = ctx.to_vec();
    g.push(w);
    (if raw {
        naive_count(text, &g)
    } else {
        naive_cont(text, vocab, &g)
    }) as f64
}

/// P_k(w | last k-1 tokens of h), with the top level `top` using raw counts.
fn naive_level(text: &[u32], vocab: usize, d: f64, h: &[u32], top: usize, k: usize, w: u32) -> f64 {
    if k == 0 {
        return 1.0 / vocab as f64;
    }
    let ctx = &h[h.len() - (k - 1)..];
    let raw = k == top;
    let lower = naive_level(text, vocab, d, h, top, k - 1, w);
    let all: Vec<f64> = (0..vocab as u32)
        .map(|u| naive_a(text, vocab, raw, ctx, u))
        .collect();
    let total: f64 = all.iter().sum();
    if total == 0.0 {
        return lower;
    }
    let gamma: f64 = all.iter().map(|&a| a.min(d)).sum::<f64>() / total;
    (all[w as usize] - d).max(0.0) / total + gamma * lower
}

fn naive_prob(text: &[u32], vocab: usize, order: usize, d: f64, history: &[u32], w: u32) -> f64 {
    let m = history.len().min(order - 1);
    let h = &history[history.len() - m..];
    naive_level(text, vocab, d, h, m + 1, m + 1, w)
}

#[test]
fn matches_brute_force() {
    let s = "abracadabra arbadacarba";
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let text: Vec<u32> = s
        .chars()
        .map(|c| chars.iter().position(|&x| x == c).unwrap() as u32)
        .collect();
    let vocab = chars.len() + 2; // two ids never seen
    for order in 1..=4 {
        for &d in &[0.3, 0.75, 1.0] {
            let m = KneserNey::train(&text, vocab, order, d).unwrap();
            // Every history over the vocabulary up to length order - 1 (and one token longer),
            // plus the text's own substrings.
            let mut histories: Vec<Vec<u32>> = vec![vec![]];
            let mut frontier: Vec<Vec<u32>> = vec![vec![]];
            for _ in 0..(order - 1).min(3) {
                let mut next = Vec::new();
                for h in &frontier {
                    for t in 0..vocab as u32 {
                        let mut g = h.clone();
                        g.push(t);
                        next.push(g);
                    }
                }
                histories.extend(next.iter().cloned());
                frontier = next;
            }
            for len in 0..=order {
                for i in len..=text.len() {
                    histories.push(text[i - len..i].to_vec());
                }
            }
            for h in &histories {
                for w in 0..vocab as u32 {
                    let got = m.prob(h, w);
                    let want = naive_prob(&text, vocab, order, d, h, w);
                    assert!(
                        (got - want).abs() <= 1e-12,
                        "order {order}, D {d}, history {h:?}, w {w}: {got:.17} vs {want:.17}"
                    );
                }
            }
        }
    }
}

#[test]
fn hand_computed_bigram() {
    // Text 0 1 0 1, V = 3, order 2, D = 0.5.
    // Top level (raw bigrams): c(0 1) = 2, c(1 0) = 1. History 0: A = 2, N1+(0 •) = 1, γ = 0.5/2.
    // Lower level (continuation unigrams): N1+(• 0) = 1 (after 1), N1+(• 1) = 1 (after 0),
    // N1+(• 2) = 0; A = 2, N1+ = 2, γ = 0.5·2/2 = 0.5.
    //   P1(1) = (1 - 0.5)/2 + 0.5 · 1/3 = 1/4 + 1/6 = 5/12
    //   P(1 | 0) = (2 - 0.5)/2 + 0.25 · 5/12 = 3/4 + 5/48 = 41/48
    //   P(2 | 0) = 0.25 · (0 + 0.5/3) = 1/24,   P(0 | 0) = 0.25 · 5/12 = 5/48.
    // Empty history (stream start): the top level is order 1 with raw counts c(0) = c(1) = 2,
    //   A = 4, γ = 0.5·2/4: P(0) = 1.5/4 + 0.25/3 = 11/24, P(2) = 1/12.
    // Unseen history 2: P(w | 2) = P1(w) with continuation counts, P(1 | 2) = 5/12.
    let m = KneserNey::train(&[0, 1, 0, 1], 3, 2, 0.5).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-15;
    assert!(close(m.prob(&[0], 1), 41.0 / 48.0), "{}", m.prob(&[0], 1));
    assert!(close(m.prob(&[0], 2), 1.0 / 24.0));
    assert!(close(m.prob(&[0], 0), 5.0 / 48.0));
    assert!(close(m.prob(&[], 0), 11.0 / 24.0));
    assert!(close(m.prob(&[], 2), 1.0 / 12.0));
    assert!(close(m.prob(&[2], 1), 5.0 / 12.0));
    // Only the last order - 1 = 1 tokens of a longer history count.
    assert_eq!(m.prob(&[2, 2, 1, 0], 1), m.prob(&[0], 1));
}

#[test]
fn score_sums_in_stream_log_probs() {
    let text = random_tokens(21, 400, 5);
    let stream = random_tokens(22, 60, 6);
    for order in 1..=4 {
        let m = KneserNey::train(&text, 6, order, 0.75).unwrap();
        let (nll, n) = m.score(&stream);
        assert_eq!(n, stream.len() - 1);
        let mut want = 0.0;
        for i in 1..stream.len() {
            want += -m.prob(&stream[..i], stream[i]).ln();
        }
        assert!(
            (nll - want).abs() <= 1e-12 * want.abs(),
            "order {order}: {nll} vs {want}"
        );
        assert_eq!(m.score(&[]), (0.0, 0));
        assert_eq!(m.score(&[3]), (0.0, 0));
        let (two, one) = m.score(&[1, 2]);
        assert_eq!(one, 1);
        assert_eq!(two, -m.prob(&[1], 2).ln());
    }
}

#[test]
fn bad_inputs_are_errors() {
    let text = [0u32, 1, 2, 1];
    let config = |r: wgrnn::Result<KneserNey>| match r {
        Err(e @ Error::Config(_)) => assert!(e.is_user_error()),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("expected an error"),
    };
    config(KneserNey::train(&text, 3, 0, 0.75));
    config(KneserNey::train(&text, 3, 11, 0.75));
    // V = 30000 needs 15 bits a token: order 8 fits in 128 bits, order 9 does not.
    assert!(KneserNey::train(&text, 30000, 8, 0.75).is_ok());
    config(KneserNey::train(&text, 30000, 9, 0.75));
    config(KneserNey::train(&text, 1 << 40, 4, 0.75));
    config(KneserNey::train(&text, 3, 2, 0.0));
    config(KneserNey::train(&text, 3, 2, -0.5));
    config(KneserNey::train(&text, 3, 2, 1.5));
    config(KneserNey::train(&text, 3, 2, f64::NAN));
    config(KneserNey::train(&text, 3, 2, f64::INFINITY));
    config(KneserNey::train(&text, 0, 2, 0.5));
    assert!(KneserNey::train(&text, 3, 2, 1.0).is_ok());
    assert!(KneserNey::train(&[], 3, 3, 0.5).is_ok());

    match KneserNey::train(&[0, 1, 2, 3, 1], 3, 2, 0.75) {
        Err(e @ Error::Shape { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("position 3"), "{msg}");
            assert!(msg.contains("token 3"), "{msg}");
            assert!(e.is_user_error());
        }
        Err(e) => panic!("expected a shape error, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn empty_training_text_is_uniform() {
    let m = KneserNey::train(&[], 4, 3, 0.75).unwrap();
    for h in [&[][..], &[1], &[2, 3]] {
        for w in 0..4 {
            assert_eq!(m.prob(h, w), 0.25);
        }
    }
}

/// Timing and validation loss on Tiny Shakespeare characters:
/// `cargo test --release --test ngram -- --ignored --nocapture`.
#[test]
#[ignore]
fn tiny_shakespeare_characters() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tinyshakespeare/input.txt"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path} missing: skipped");
        return;
    };
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let ids: Vec<u32> = text
        .chars()
        .map(|c| chars.binary_search(&c).unwrap() as u32)
        .collect();
    let split = ids.len() * 95 / 100;
    let (train, valid) = ids.split_at(split);
    eprintln!(
        "vocab {}, train {} chars, valid {} chars",
        chars.len(),
        train.len(),
        valid.len()
    );
    for order in [3, 5, 7] {
        let t0 = std::time::Instant::now();
        let m = KneserNey::train(train, chars.len(), order, 0.75).unwrap();
        let t_train = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let (nll, n) = m.score(valid);
        let t_score = t1.elapsed().as_secs_f64();
        eprintln!(
            "order {order}: train {t_train:.3} s, score {t_score:.3} s, {:.4} nats/char",
            nll / n as f64
        );
    }
}
