//! One index on tantivy: its fixed tantivy schema, its writer and reader, its settings and
//! mapping on disk, document versions and realtime GET.
//!
//! Every index has the same tantivy schema, because tantivy schemas cannot grow and mappings
//! do: `_id`, `_source` (the document as sent), `_version`, `_seq_no`, `_field_names` (for
//! `exists`), and two JSON fields holding the mapped values by dotted path: [`EXACT`] (raw
//! tokenizer, fast: keyword, numbers, dates, booleans, ips; what term queries, ranges, sorting and
//! aggregations read) and [`ANALYZED`] (the standard-like `default` tokenizer with positions:
//! text). The mapping decides which side a value goes to and its type (see `document`).
//!
//! Writes are serialized per index (as a shard's primary serializes them) and become searchable
//! at a refresh: `?refresh`, `_refresh`, or every `refresh_interval` (1 s by default). Documents
//! written with an explicit `_id` are also kept in memory until that refresh, so that `GET
//! _doc/<id>`, versions and `create` conflicts see them at once, as OpenSearch's realtime GET does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, OwnedValue, Schema, TextFieldIndexing,
    TextOptions, Value as _, STORED, STRING,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::document::{parse_document, IndexedValues};
use crate::error::{ApiError, ApiResult};
use crate::mapping::Mapping;
use crate::settings::IndexSettings;

/// The JSON field with exact values.
pub const EXACT: &str = "kw";
/// The JSON field with analyzed text.
pub const ANALYZED: &str = "txt";

/// The tantivy fields every index has.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// `_id`.
    pub id: Field,
    /// `_source`.
    pub source: Field,
    /// `_version`.
    pub version: Field,
    /// `_seq_no`.
    pub seq_no: Field,
    /// `_field_names`.
    pub field_names: Field,
    /// [`EXACT`].
    pub exact: Field,
    /// [`ANALYZED`].
    pub analyzed: Field,
}

impl Fields {
    /// The fields of an index's schema (every index has them).
    pub fn from_schema(schema: &Schema) -> tantivy::Result<Self> {
        Ok(Self {
            id: schema.get_field("_id")?,
            source: schema.get_field("_source")?,
            version: schema.get_field("_version")?,
            seq_no: schema.get_field("_seq_no")?,
            field_names: schema.get_field("_field_names")?,
            exact: schema.get_field(EXACT)?,
            analyzed: schema.get_field(ANALYZED)?,
        })
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let id = builder.add_text_field("_id", STRING | STORED);
    let source = builder.add_bytes_field("_source", STORED);
    let version = builder.add_u64_field("_version", STORED);
    let seq_no = builder.add_u64_field("_seq_no", STORED);
    let field_names = builder.add_text_field("_field_names", STRING);
    let exact = builder.add_json_field(
        EXACT,
        JsonObjectOptions::default()
            .set_indexing_options(
                // Exact values need doc ids only: no phrase ever runs on them.
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic),
            )
            .set_fast("raw")
            .set_expand_dots_enabled(),
    );
    let analyzed = builder.add_json_field(
        ANALYZED,
        JsonObjectOptions::from(
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        )
        .set_expand_dots_enabled(),
    );
    let fields = Fields {
        id,
        source,
        version,
        seq_no,
        field_names,
        exact,
        analyzed,
    };
    (builder.build(), fields)
}

/// What `opensearch.json` in the index's folder holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct IndexMeta {
    uuid: String,
    creation_date: i64,
    settings: Value,
    mappings: Value,
    next_seq_no: u64,
}

/// A stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    /// `_id`.
    pub id: String,
    /// `_version`.
    pub version: u64,
    /// `_seq_no`.
    pub seq_no: u64,
    /// `_source`.
    pub source: Value,
}

/// A document to write: its fields, and the bytes as sent (kept as `_source` byte for byte, as
/// OpenSearch keeps it; serialized from the fields when absent).
#[derive(Clone, Copy, Debug)]
pub struct SourceDocument<'a> {
    /// The parsed object.
    pub fields: &'a Map<String, Value>,
    /// The JSON text it was parsed from.
    pub raw: Option<&'a [u8]>,
}

/// A write's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// Create or replace.
    Index,
    /// Create only: an existing id is a version conflict.
    Create,
    /// Delete.
    Delete,
}

/// A write's outcome, as `_bulk` items and `_doc` answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    /// `_id`.
    pub id: String,
    /// `_version` after the write.
    pub version: u64,
    /// `_seq_no` of the write.
    pub seq_no: u64,
    /// `created`, `updated`, `deleted` or `not_found`.
    pub result: &'static str,
    /// 201, 200 or 404.
    pub status: u16,
}

struct PendingDocument {
    version: u64,
    seq_no: u64,
    /// `None`: deleted.
    source: Option<Value>,
}

struct WriterState {
    writer: IndexWriter,
    /// Explicit-id writes since the last refresh.
    pending: HashMap<String, PendingDocument>,
    next_seq_no: u64,
    dirty: bool,
}

/// One index.
pub struct IndexStore {
    name: String,
    uuid: String,
    creation_date: i64,
    settings: IndexSettings,
    mapping: RwLock<Arc<Mapping>>,
    fields: Fields,
    index: Index,
    reader: IndexReader,
    writer: Mutex<WriterState>,
    folder: Option<PathBuf>,
}

/// Writer memory: tantivy's arena for the indexing threads.
const WRITER_MEMORY: usize = 96 * 1024 * 1024;
/// Indexing threads (the machine this is sized for has two cores).
const WRITER_THREADS: usize = 2;

impl IndexStore {
    /// Creates an index, on disk under `folder` or in memory.
    pub fn create(
        name: &str,
        settings: IndexSettings,
        mapping: Mapping,
        folder: Option<PathBuf>,
    ) -> ApiResult<Self> {
        let (schema, fields) = schema();
        let index = match &folder {
            Some(folder) => {
                std::fs::create_dir_all(folder.join("tantivy"))
                    .map_err(|e| ApiError::internal(format!("creating {folder:?}: {e}")))?;
                Index::create_in_dir(folder.join("tantivy"), schema)?
            }
            None => Index::create_in_ram(schema),
        };
        let store = Self::assemble(
            name,
            uuid::Uuid::new_v4().simple().to_string()[..22].to_owned(),
            now_millis(),
            settings,
            mapping,
            fields,
            index,
            0,
            folder,
        )?;
        store.save_meta()?;
        Ok(store)
    }

    /// Opens an index saved under `folder`.
    pub fn open(name: &str, folder: &Path) -> ApiResult<Self> {
        let text = std::fs::read_to_string(folder.join("opensearch.json"))
            .map_err(|e| ApiError::internal(format!("reading index [{name}]: {e}")))?;
        let meta: IndexMeta = serde_json::from_str(&text)
            .map_err(|e| ApiError::internal(format!("reading index [{name}]: {e}")))?;
        let (_, fields) = schema();
        let index = Index::open_in_dir(folder.join("tantivy"))?;
        Self::assemble(
            name,
            meta.uuid,
            meta.creation_date,
            IndexSettings::parse(&meta.settings)?,
            Mapping::parse(&meta.mappings)?,
            fields,
            index,
            meta.next_seq_no,
            Some(folder.to_owned()),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        name: &str,
        uuid: String,
        creation_date: i64,
        settings: IndexSettings,
        mapping: Mapping,
        fields: Fields,
        index: Index,
        next_seq_no: u64,
        folder: Option<PathBuf>,
    ) -> ApiResult<Self> {
        let writer = index.writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            name: name.to_owned(),
            uuid,
            creation_date,
            settings,
            mapping: RwLock::new(Arc::new(mapping)),
            fields,
            index,
            reader,
            writer: Mutex::new(WriterState {
                writer,
                pending: HashMap::new(),
                next_seq_no,
                dirty: false,
            }),
            folder,
        })
    }

    fn save_meta(&self) -> ApiResult<()> {
        let state = self.writer.lock().expect("writer lock");
        self.save_meta_locked(&state)
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index's uuid.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The settings.
    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    /// The current mapping.
    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping.read().expect("mapping lock").clone()
    }

    /// The tantivy fields.
    pub fn fields(&self) -> Fields {
        self.fields
    }

    /// The tantivy index (for the searcher's schema and tokenizers).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }

    /// A searcher over the last refresh.
    pub fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    /// The index's folder on disk, if it has one.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// `settings.index` as `GET <index>/_settings` prints it.
    pub fn settings_json(&self) -> Value {
        self.settings
            .to_response_json(&self.name, &self.uuid, self.creation_date)
    }

    /// Merges a mapping update (`PUT <index>/_mapping`).
    pub fn put_mapping(&self, update: &Mapping) -> ApiResult<()> {
        let state = self.writer.lock().expect("writer lock");
        {
            let mut mapping = self.mapping.write().expect("mapping lock");
            let mut merged = (**mapping).clone();
            merged.merge(update)?;
            *mapping = Arc::new(merged);
        }
        self.save_meta_locked(&state)
    }

    /// Writes one document (or deletes one). `id` is generated when absent (index only).
    pub fn write(
        &self,
        kind: WriteKind,
        id: Option<&str>,
        source: Option<SourceDocument<'_>>,
    ) -> ApiResult<WriteOutcome> {
        let mut state = self.writer.lock().expect("writer lock");
        let explicit = id.is_some();
        let id = id.map(str::to_owned).unwrap_or_else(generate_id);
        validate_id(&id)?;
        let existing = if explicit {
            self.current_version(&state, &id)?
        } else {
            None
        };
        if kind == WriteKind::Delete {
            return Ok(self.delete(&mut state, id, existing));
        }
        if kind == WriteKind::Create {
            if let Some((version, _)) = existing {
                return Err(ApiError::new(
                    409,
                    "version_conflict_engine_exception",
                    format!("[{id}]: version conflict, document already exists (current version [{version}])"),
                )
                .with("index", self.name.clone())
                .with("shard", "0")
                .with("index_uuid", self.uuid.clone()));
            }
        }
        let source = source.ok_or_else(|| ApiError::parsing("request body is required"))?;
        let mapping = self.mapping();
        let parsed = parse_document(&mapping, source.fields, &id)?;
        if !parsed.new_fields.is_empty() {
            let mut updated = (*mapping).clone();
            for (path, field) in parsed.new_fields {
                updated.insert(&path, field);
            }
            *self.mapping.write().expect("mapping lock") = Arc::new(updated);
            self.save_meta_locked(&state)?;
        }
        let version = existing.map_or(1, |(version, _)| version + 1);
        let seq_no = state.next_seq_no;
        state.next_seq_no += 1;
        let document = self.tantivy_document(&id, version, seq_no, source, parsed.values);
        // `existing` saw both the last refresh and the writes since, so only a replacement
        // has an older copy to delete.
        if existing.is_some() {
            state
                .writer
                .delete_term(Term::from_field_text(self.fields.id, &id));
        }
        state.writer.add_document(document)?;
        state.dirty = true;
        if explicit {
            state.pending.insert(
                id.clone(),
                PendingDocument {
                    version,
                    seq_no,
                    source: Some(Value::Object(source.fields.clone())),
                },
            );
        }
        let (result, status) = match existing {
            Some(_) => ("updated", 200),
            None => ("created", 201),
        };
        Ok(WriteOutcome {
            id,
            version,
            seq_no,
            result,
            status,
        })
    }

    fn delete(
        &self,
        state: &mut WriterState,
        id: String,
        existing: Option<(u64, u64)>,
    ) -> WriteOutcome {
        let seq_no = state.next_seq_no;
        state.next_seq_no += 1;
        let Some((version, _)) = existing else {
            return WriteOutcome {
                id,
                version: 1,
                seq_no,
                result: "not_found",
                status: 404,
            };
        };
        state
            .writer
            .delete_term(Term::from_field_text(self.fields.id, &id));
        state.dirty = true;
        state.pending.insert(
            id.clone(),
            PendingDocument {
                version: version + 1,
                seq_no,
                source: None,
            },
        );
        WriteOutcome {
            id,
            version: version + 1,
            seq_no,
            result: "deleted",
            status: 200,
        }
    }

    fn save_meta_locked(&self, state: &WriterState) -> ApiResult<()> {
        let Some(folder) = &self.folder else {
            return Ok(());
        };
        let meta = IndexMeta {
            uuid: self.uuid.clone(),
            creation_date: self.creation_date,
            settings: self.settings.to_stored_json(),
            mappings: self.mapping().to_json(),
            next_seq_no: state.next_seq_no,
        };
        let text = serde_json::to_string_pretty(&meta).expect("metadata serializes");
        let temporary = folder.join("opensearch.json.tmp");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, folder.join("opensearch.json")))
            .map_err(|e| ApiError::internal(format!("saving index [{}]: {e}", self.name)))
    }

    fn tantivy_document(
        &self,
        id: &str,
        version: u64,
        seq_no: u64,
        source: SourceDocument<'_>,
        values: IndexedValues,
    ) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_text(self.fields.id, id);
        match source.raw {
            Some(raw) => document.add_bytes(self.fields.source, raw),
            None => {
                let bytes = serde_json::to_vec(source.fields).expect("a JSON object serializes");
                document.add_bytes(self.fields.source, &bytes);
            }
        }
        document.add_u64(self.fields.version, version);
        document.add_u64(self.fields.seq_no, seq_no);
        for name in &values.field_names {
            document.add_text(self.fields.field_names, name);
        }
        if !values.exact.is_empty() {
            document.add_object(self.fields.exact, values.exact);
        }
        let analyzed: BTreeMap<String, OwnedValue> = values
            .analyzed
            .into_iter()
            .map(|(path, texts)| {
                let value = if texts.len() == 1 {
                    OwnedValue::Str(texts.into_iter().next().expect("one text"))
                } else {
                    OwnedValue::Array(texts.into_iter().map(OwnedValue::Str).collect())
                };
                (path, value)
            })
            .collect();
        if !analyzed.is_empty() {
            document.add_object(self.fields.analyzed, analyzed);
        }
        document
    }

    /// The version and seq_no of `id` now (pending writes first, then the last refresh).
    fn current_version(&self, state: &WriterState, id: &str) -> ApiResult<Option<(u64, u64)>> {
        if let Some(pending) = state.pending.get(id) {
            return Ok(pending
                .source
                .as_ref()
                .map(|_| (pending.version, pending.seq_no)));
        }
        Ok(self
            .committed(id)?
            .map(|document| (document.version, document.seq_no)))
    }

    /// The document `id` as of the last refresh.
    fn committed(&self, id: &str) -> ApiResult<Option<StoredDocument>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        let hits = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, address)) = hits.first() else {
            return Ok(None);
        };
        let document: TantivyDocument = searcher.doc(*address)?;
        Ok(Some(self.stored(&document)))
    }

    /// Reads a stored tantivy document back.
    pub fn stored(&self, document: &TantivyDocument) -> StoredDocument {
        let text = |field| {
            document
                .get_first(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let number = |field| {
            document
                .get_first(field)
                .and_then(|v| v.as_u64())
                .unwrap_or_default()
        };
        let source = document
            .get_first(self.fields.source)
            .and_then(|v| v.as_bytes().map(<[u8]>::to_vec))
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        StoredDocument {
            id: text(self.fields.id),
            version: number(self.fields.version),
            seq_no: number(self.fields.seq_no),
            source,
        }
    }

    /// `GET <index>/_doc/<id>` (realtime).
    pub fn get(&self, id: &str) -> ApiResult<Option<StoredDocument>> {
        {
            let state = self.writer.lock().expect("writer lock");
            if let Some(pending) = state.pending.get(id) {
                return Ok(pending.source.clone().map(|source| StoredDocument {
                    id: id.to_owned(),
                    version: pending.version,
                    seq_no: pending.seq_no,
                    source,
                }));
            }
        }
        self.committed(id)
    }

    /// Makes every write so far searchable (a no-op when nothing changed).
    pub fn refresh(&self) -> ApiResult<()> {
        let mut state = self.writer.lock().expect("writer lock");
        if !state.dirty {
            return Ok(());
        }
        state.writer.commit()?;
        self.reader.reload()?;
        state.pending.clear();
        state.dirty = false;
        self.save_meta_locked(&state)
    }

    /// Whether writes wait for a refresh.
    pub fn is_dirty(&self) -> bool {
        self.writer.lock().map(|s| s.dirty).unwrap_or(false)
    }

    /// Documents searchable now.
    pub fn doc_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Deleted documents not yet merged away.
    pub fn deleted_count(&self) -> u64 {
        let searcher = self.reader.searcher();
        searcher
            .segment_readers()
            .iter()
            .map(|segment| u64::from(segment.num_deleted_docs()))
            .sum()
    }

    /// Bytes on disk (0 in memory).
    pub fn store_size(&self) -> u64 {
        self.folder.as_deref().map(folder_size).unwrap_or(0)
    }

    /// Waits for merges and drops the writer's threads (before the folder is deleted).
    pub fn close(&self) {
        if let Ok(mut state) = self.writer.lock() {
            let _ = state.writer.commit();
        }
    }

    /// The refresh interval in force.
    pub fn refresh_interval(&self) -> Option<Duration> {
        self.settings.refresh_interval
    }
}

/// Bytes of every file under `folder` (0 when it cannot be read).
pub fn folder_size(folder: &Path) -> u64 {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => folder_size(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn validate_id(id: &str) -> ApiResult<()> {
    if id.is_empty() {
        return Err(ApiError::new(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: if _id is specified it must not be empty;",
        ));
    }
    if id.len() > 512 {
        return Err(ApiError::new(
            400,
            "action_request_validation_exception",
            format!(
                "Validation Failed: 1: id [{id}] is too long, must be no longer than 512 bytes but was: {};",
                id.len()
            ),
        ));
    }
    Ok(())
}

/// A new document id: 20 URL-safe base64 characters, as OpenSearch's are.
fn generate_id() -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..15])
}

/// Milliseconds since the epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
