//! Append-only JSON-lines files: the access log, the raw segment documents and the EMF metrics.
//! Buffered, shared between tasks, and never failing the caller: a write error is logged, not
//! returned, because the stack's records must not fail the requests they record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

/// One JSON-lines file open for appending.
#[derive(Debug)]
pub struct JsonLinesFile {
    file: Mutex<BufWriter<File>>,
}

impl JsonLinesFile {
    /// Appends to `path` (created if missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Writes `line` and a newline (buffered).
    pub fn append(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = file
            .write_all(line.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
        {
            tracing::warn!(%error, "JSON-lines write failed");
        }
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&self) {
        if let Err(error) = self.file.lock().unwrap_or_else(|p| p.into_inner()).flush() {
            tracing::warn!(%error, "JSON-lines flush failed");
        }
    }
}

impl Drop for JsonLinesFile {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_across_opens_and_flushed() {
        let path = std::env::temp_dir().join(format!("json-lines-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let file = JsonLinesFile::open(&path).unwrap();
        file.append(r#"{"a":1}"#);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "buffered until flushed"
        );
        file.flush();
        drop(file);
        let again = JsonLinesFile::open(&path).unwrap();
        again.append(r#"{"b":2}"#);
        drop(again);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        let _ = std::fs::remove_file(&path);
    }
}
