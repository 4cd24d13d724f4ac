//! The progress display of the epoch-based training commands (train-classify, train-tagger):
//! a bar on a terminal, plain lines on stderr otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::Error;
use wgrnn::models::epochs::{Budget, Event, Summary};

/// The budget of `--epochs N` or `--minutes M`, `default_minutes` when neither is given.
pub fn budget(
    epochs: Option<u64>,
    minutes: Option<f64>,
    default_minutes: f64,
) -> Result<Budget, Error> {
    match (epochs, minutes) {
        (Some(n), _) => Ok(Budget::Epochs(n)),
        (None, Some(m)) if m.is_finite() && m > 0.0 => Ok(Budget::Minutes(m)),
        (None, Some(m)) => Err(Error::config(format!("--minutes {m} must be > 0"))),
        (None, None) => Ok(Budget::Minutes(default_minutes)),
    }
}

/// A progress bar for a run with `budget`.
pub struct EpochUi {
    pb: ProgressBar,
    budget: Budget,
    what: &'static str,
    score: Score,
}

/// How a run's dev score prints: its name and its value's format.
#[derive(Clone, Copy)]
pub struct Score {
    /// `dev accuracy`, `validation BLEU`.
    pub label: &'static str,
    /// `91.23%`, `27.34`.
    pub format: fn(f64) -> String,
}

/// An accuracy in [0, 1], printed as a percentage.
pub const ACCURACY: Score = Score {
    label: "dev accuracy",
    format: |s| format!("{:.2}%", 100.0 * s),
};

impl EpochUi {
    /// A bar for `what` (the command's name) under `budget`, printing scores as `score` says.
    pub fn new(what: &'static str, budget: Budget, score: Score) -> Self {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        EpochUi {
            pb,
            budget,
            what,
            score,
        }
    }

    fn say(&self, msg: String) {
        if self.pb.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.pb.println(msg);
        }
    }

    /// The run started: adapter, step, parameters, batches per epoch.
    pub fn started(&self, adapter: &str, step: u64, params: usize, batches: usize) {
        self.pb.set_length(match self.budget {
            Budget::Epochs(n) => n * batches as u64,
            Budget::Minutes(m) => (m * 60.0) as u64,
        });
        self.say(format!(
            "{}: {adapter}; {params} parameters, {batches} batches per epoch; {}",
            self.what,
            if step > 0 {
                format!("resuming at step {step}")
            } else {
                "from scratch".into()
            }
        ));
    }

    /// A step or an evaluation.
    pub fn event(&self, e: &Event) {
        match e {
            Event::Step {
                step,
                epoch,
                loss,
                elapsed,
            } => {
                self.pb.set_position(match self.budget {
                    Budget::Epochs(_) => *step,
                    Budget::Minutes(_) => *elapsed as u64,
                });
                self.pb
                    .set_message(format!("epoch {} step {step} loss {loss:.4}", epoch + 1));
            }
            Event::Evaluated {
                step,
                epoch,
                score,
                best,
                detail,
            } => self.say(format!(
                "after {epoch} epoch{} (step {step}): {} {}{}{}",
                if *epoch == 1 { "" } else { "s" },
                self.score.label,
                (self.score.format)(*score),
                detail.as_ref().map_or(String::new(), |d| format!(", {d}")),
                if *best { " (a new best/)" } else { "" }
            )),
        }
    }

    /// Clears the bar and prints the summary.
    pub fn finish(&self, s: &Summary, items: &str, out: &std::path::Path) {
        self.pb.finish_and_clear();
        let tokens = s
            .tokens_per_s
            .map(|t| format!(" ({t:.0} target tokens/s)"))
            .unwrap_or_default();
        println!(
            "stopped at step {}{}; {:.0} {items}/s{tokens}; {} {} (best {})",
            s.steps,
            if s.interrupted { " (interrupted)" } else { "" },
            s.items_per_s,
            self.score.label,
            (self.score.format)(s.score),
            (self.score.format)(s.best)
        );
        println!("checkpoints: {0}/last, {0}/best", out.display());
    }
}
