//! `beam.wgsl`'s twin: a whole beam search in f64 over given log-probabilities, by fairseq's
//! rules as [`crate::ops::BeamSearch`] documents them, written as plain lists.

use crate::ops::Finished;

/// A finished hypothesis while searching: normalised score, tokens, the row of each choice.
#[derive(Clone, Debug)]
struct Done {
    score: f64,
    ids: Vec<u32>,
    rows: Vec<usize>,
    ended: bool,
}

/// An alive beam: cumulative log-probability, tokens, the row of each choice.
#[derive(Clone, Debug)]
struct Alive {
    score: f64,
    ids: Vec<u32>,
    rows: Vec<usize>,
}

/// A search over B sentences with K beams, T steps at most.
pub struct RefBeam {
    k: usize,
    steps: usize,
    eos: u32,
    alpha: f64,
    alive: Vec<Vec<Alive>>,
    done: Vec<Vec<Done>>,
}

impl RefBeam {
    /// Beam 0 of every sentence alive with score 0.
    pub fn new(batch: usize, k: usize, steps: usize, eos: u32, alpha: f64) -> RefBeam {
        let start = Alive {
            score: 0.0,
            ids: Vec::new(),
            rows: Vec::new(),
        };
        RefBeam {
            k,
            steps,
            eos,
            alpha,
            alive: vec![vec![start]; batch],
            done: vec![Vec::new(); batch],
        }
    }

    /// Step `t` from `logp [B*K, V]` (rows of beams that do not exist are ignored); returns
    /// the row `b*K + parent` each new beam continues (as the kernel's `rows`, for the beams
    /// that exist).
    pub fn step(&mut self, logp: &[f64], vocab: usize, t: usize) -> Vec<Vec<usize>> {
        let k = self.k;
        let mut parents = Vec::new();
        for (b, alive) in self.alive.iter_mut().enumerate() {
            // Every (beam, token) candidate, best first; ties to the lower c = beam*V + token.
            let mut cands: Vec<(f64, usize)> = Vec::new();
            for (j, beam) in alive.iter().enumerate() {
                for v in 0..vocab {
                    cands.push((beam.score + logp[(b * k + j) * vocab + v], j * vocab + v));
                }
            }
            cands.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            cands.truncate(2 * k);
            let done = &mut self.done[b];
            let mut next = Vec::new();
            for (r, &(s, c)) in cands.iter().enumerate() {
                let (j, v) = (c / vocab, (c % vocab) as u32);
                let row = b * k + j;
                if v == self.eos {
                    if r < k && done.len() < k {
                        let mut rows = alive[j].rows.clone();
                        rows.push(row);
                        insert(
                            done,
                            Done {
                                score: s / ((t + 1) as f64).powf(self.alpha),
                                ids: alive[j].ids.clone(),
                                rows,
                                ended: true,
                            },
                        );
                    }
                } else if next.len() < k {
                    let mut ids = alive[j].ids.clone();
                    ids.push(v);
                    let mut rows = alive[j].rows.clone();
                    rows.push(row);
                    next.push(Alive {
                        score: s,
                        ids,
                        rows,
                    });
                }
            }
            parents.push(next.iter().map(|a| *a.rows.last().unwrap()).collect());
            if t + 1 == self.steps {
                for a in &next {
                    if done.len() < k {
                        insert(
                            done,
                            Done {
                                score: a.score / ((t + 1) as f64).powf(self.alpha),
                                ids: a.ids.clone(),
                                rows: a.rows.clone(),
                                ended: false,
                            },
                        );
                    }
                }
            }
            *alive = next;
        }
        parents
    }

    /// Each sentence's finished hypotheses, best first.
    pub fn finished(&self) -> Vec<Vec<Finished>> {
        self.done
            .iter()
            .map(|d| {
                d.iter()
                    .map(|h| Finished {
                        ids: h.ids.clone(),
                        score: h.score as f32,
                        rows: h.rows.clone(),
                        ended: h.ended,
                    })
                    .collect()
            })
            .collect()
    }
}

/// Inserts `h` after every entry with a score at least as high (a stable sort).
fn insert(done: &mut Vec<Done>, h: Done) {
    let at = done
        .iter()
        .position(|d| d.score < h.score)
        .unwrap_or(done.len());
    done.insert(at, h);
}
