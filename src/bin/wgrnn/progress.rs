//! The progress display of the epoch-based training commands (train-classify, train-tagger):
//! a bar on a terminal, plain lines on stderr otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::models::epochs::{Budget, Event, Summary};

/// A progress bar for a run with `budget`.
pub struct EpochUi {
    pb: ProgressBar,
    budget: Budget,
    what: &'static str,
}

impl EpochUi {
    /// A bar for `what` (the command's name) under `budget`.
    pub fn new(what: &'static str, budget: Budget) -> Self {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        EpochUi { pb, budget, what }
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
            } => self.say(format!(
                "after {epoch} epoch{} (step {step}): dev accuracy {:.2}%{}",
                if *epoch == 1 { "" } else { "s" },
                100.0 * score,
                if *best { " (a new best/)" } else { "" }
            )),
        }
    }

    /// Clears the bar and prints the summary.
    pub fn finish(&self, s: &Summary, items: &str, out: &std::path::Path) {
        self.pb.finish_and_clear();
        println!(
            "stopped at step {}{}; {:.0} {items}/s; dev accuracy {:.2}% (best {:.2}%)",
            s.steps,
            if s.interrupted { " (interrupted)" } else { "" },
            s.items_per_s,
            100.0 * s.score,
            100.0 * s.best
        );
        println!("checkpoints: {0}/last, {0}/best", out.display());
    }
}
