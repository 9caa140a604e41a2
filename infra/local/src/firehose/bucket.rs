//! The stream's S3 backup bucket, as a local folder with Firehose's object key layout (Firehose
//! guide, "Amazon S3 object name format"): `<prefix><folder>YYYY/MM/dd/HH/` then
//! `<stream>-<version>-YYYY-MM-dd-HH-MM-SS-<random>`, the time being the arrival time of the
//! oldest record in the object, UTC. Each object holds one JSON record per line.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Where records that failed the transformation go.
pub const PROCESSING_FAILED: &str = "processing-failed/";
/// Where documents OpenSearch would not take go (the S3 backup of an OpenSearch destination).
pub const OPENSEARCH_FAILED: &str = "AmazonOpenSearchService-failed/";

/// A local folder standing in for the backup bucket.
#[derive(Clone, Debug)]
pub struct LocalBucket {
    root: PathBuf,
    prefix: String,
    stream: String,
    version: u32,
}

/// `YYYY-MM-dd-HH-MM-SS` of `epoch_ms`, UTC.
fn time_parts(epoch_ms: u64) -> [String; 6] {
    let text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(epoch_ms)).to_string();
    // 2024-08-04T11:28:40Z
    let field = |range: std::ops::Range<usize>| text.get(range).unwrap_or("00").to_owned();
    [
        field(0..4),
        field(5..7),
        field(8..10),
        field(11..13),
        field(14..16),
        field(17..19),
    ]
}

impl LocalBucket {
    /// The bucket at `root`, objects under `prefix` (S3Configuration's `Prefix`), named for the
    /// stream `stream` at version `version`.
    pub fn new(root: &Path, prefix: &str, stream: &str, version: u32) -> Self {
        Self {
            root: root.to_path_buf(),
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            version,
        }
    }

    /// The bucket's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key of a new object in `folder` whose oldest record arrived at `oldest_ms`.
    pub fn key(&self, folder: &str, oldest_ms: u64, random: &str) -> String {
        let [y, mo, d, h, mi, s] = time_parts(oldest_ms);
        format!(
            "{}{folder}{y}/{mo}/{d}/{h}/{}-{}-{y}-{mo}-{d}-{h}-{mi}-{s}-{random}",
            self.prefix, self.stream, self.version
        )
    }

    /// Writes one object of `lines` into `folder`; returns its key.
    pub fn put(&self, folder: &str, oldest_ms: u64, lines: &[String]) -> std::io::Result<String> {
        let key = self.key(folder, oldest_ms, &uuid_like());
        let path = self.root.join(&key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut body = lines.join("\n");
        body.push('\n');
        std::fs::write(path, body)?;
        Ok(key)
    }

    /// Every record in `folder`'s objects, parsed (tests, reports).
    pub fn records(&self, folder: &str) -> Vec<serde_json::Value> {
        let mut files = Vec::new();
        collect_files(&self.root.join(&self.prefix).join(folder), &mut files);
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A random object-name suffix, as Firehose's (a UUID's form).
fn uuid_like() -> String {
    let bits: u128 = rand::random();
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_firehose_s_layout_in_utc() {
        let bucket = LocalBucket::new(Path::new("/tmp/b"), "lattice-access/", "lattice-access", 1);
        assert_eq!(
            bucket.key(PROCESSING_FAILED, 1_722_770_920_750, "r"),
            "lattice-access/processing-failed/2024/08/04/11/lattice-access-1-2024-08-04-11-28-40-r"
        );
        assert_eq!(
            bucket.key(OPENSEARCH_FAILED, 0, "x"),
            "lattice-access/AmazonOpenSearchService-failed/1970/01/01/00/lattice-access-1-1970-01-01-00-00-00-x"
        );
    }

    #[test]
    fn objects_are_written_and_read_back_line_by_line() {
        let dir = std::env::temp_dir().join(format!("bucket-test-{}", uuid_like()));
        let bucket = LocalBucket::new(&dir, "", "s", 1);
        bucket
            .put(
                PROCESSING_FAILED,
                0,
                &[r#"{"a":1}"#.into(), r#"{"a":2}"#.into()],
            )
            .unwrap();
        assert_eq!(
            bucket.records(PROCESSING_FAILED),
            [serde_json::json!({"a":1}), serde_json::json!({"a":2})]
        );
        assert!(bucket.records(OPENSEARCH_FAILED).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
