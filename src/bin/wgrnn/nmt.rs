//! Translation commands: `wgrnn bleu` (issue 18). The scoring is `wgrnn::models::bleu`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wgrnn::Error;
use wgrnn::models::bleu;

/// `bleu`'s flags.
#[derive(Args, Debug)]
pub struct BleuArgs {
    /// Reference translations, one raw (detokenized) sentence per line; plain or gzip.
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Hypotheses, line for line with the references; plain or gzip.
    #[arg(long)]
    hyp: PathBuf,
    /// Case-insensitive BLEU (both sides lowercased).
    #[arg(long)]
    lowercase: bool,
}

/// `wgrnn bleu`: `BLEU = 41.69` on the first line, then the n-gram precisions, the brevity
/// penalty and the lengths, as `sacrebleu.corpus_bleu(hyps, [refs])` reports them.
pub fn cmd_bleu(a: BleuArgs) -> Result<ExitCode, Error> {
    let b = bleu::bleu_files(&a.reference, &a.hyp, a.lowercase)?;
    println!("{b}");
    Ok(ExitCode::SUCCESS)
}
