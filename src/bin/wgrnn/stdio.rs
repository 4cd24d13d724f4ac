//! Reading stdin: the whole of it as UTF-8 text, or as lines.

use std::io::Read;

use wgrnn::Error;
use wgrnn::models::corpus;

/// All of stdin as text (UTF-8, an error naming `stdin` otherwise).
pub fn read_stdin_text() -> Result<String, Error> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Io {
            path: "stdin".into(),
            source: e,
        })?;
    corpus::decode("stdin", bytes)
}

/// The lines of stdin (`\r\n` accepted), none for empty input.
pub fn read_stdin_lines() -> Result<Vec<String>, Error> {
    let text = read_stdin_text()?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    Ok(if text.is_empty() {
        Vec::new()
    } else {
        body.split('\n')
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    })
}
