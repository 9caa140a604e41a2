//! The node: its indices and templates, kept on disk under a data folder (or in memory), index
//! creation (explicit, or automatic on a first write through the matching template), index
//! expressions (`a,b`, `logs-*`, `_all`) and the periodic refresh.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::mapping::Mapping;
use crate::settings::IndexSettings;
use crate::store::IndexStore;
use crate::template::{wildcard_match, IndexTemplate, Templates};

/// The engine.
pub struct Engine {
    data_dir: Option<PathBuf>,
    indices: RwLock<BTreeMap<String, Arc<IndexStore>>>,
    templates: RwLock<Templates>,
    /// Last refresh per index (for `refresh_interval`).
    refreshed: Mutex<BTreeMap<String, Instant>>,
    /// Serializes index creation, so two first writes create one index.
    creating: Mutex<()>,
}

/// What an index expression may resolve to.
#[derive(Clone, Copy, Debug)]
pub struct ResolveOptions {
    /// A name that does not exist is skipped instead of a 404.
    pub ignore_unavailable: bool,
    /// A wildcard matching nothing is fine (OpenSearch's default).
    pub allow_no_indices: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        Self {
            ignore_unavailable: false,
            allow_no_indices: true,
        }
    }
}

/// Checks an index name by OpenSearch's rules.
pub fn validate_index_name(name: &str) -> ApiResult<()> {
    let invalid = |why: &str| {
        ApiError::new(
            400,
            "invalid_index_name_exception",
            format!("Invalid index name [{name}], {why}"),
        )
        .with("index", name)
        .with("index_uuid", "_na_")
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.to_lowercase() != name {
        return Err(invalid("must be lowercase"));
    }
    if name.starts_with(['_', '-', '+']) {
        return Err(invalid("must not start with '_', '-', or '+'"));
    }
    if name == "." || name == ".." {
        return Err(invalid("must not be '.' or '..'"));
    }
    if name.len() > 255 {
        return Err(invalid(
            "index name is too long, (must be less than 255 bytes)",
        ));
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        )
    }) {
        return Err(invalid(&format!(
            "must not contain the following characters [{c}]"
        )));
    }
    Ok(())
}

impl Engine {
    /// Opens the engine over `data_dir` (indices and templates saved there survive a restart),
    /// or in memory when `None`.
    pub fn open(data_dir: Option<PathBuf>) -> ApiResult<Self> {
        let engine = Self {
            data_dir,
            indices: RwLock::new(BTreeMap::new()),
            templates: RwLock::new(Templates::default()),
            refreshed: Mutex::new(BTreeMap::new()),
            creating: Mutex::new(()),
        };
        engine.load()?;
        Ok(engine)
    }

    fn load(&self) -> ApiResult<()> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        let io = |e: std::io::Error| ApiError::internal(format!("data folder {dir:?}: {e}"));
        std::fs::create_dir_all(dir.join("indices")).map_err(io)?;
        let templates_file = dir.join("templates.json");
        if templates_file.exists() {
            let text = std::fs::read_to_string(&templates_file).map_err(io)?;
            let saved: Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| ApiError::internal(format!("{templates_file:?}: {e}")))?;
            let mut templates = self.templates.write().expect("templates lock");
            for (name, body) in saved {
                templates.put(&name, IndexTemplate::parse(&name, &body)?)?;
            }
        }
        let mut indices = self.indices.write().expect("indices lock");
        for entry in std::fs::read_dir(dir.join("indices")).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("opensearch.json").exists() {
                indices.insert(
                    name.clone(),
                    Arc::new(IndexStore::open(&name, &entry.path())?),
                );
            }
        }
        Ok(())
    }

    fn save_templates(&self, templates: &Templates) -> ApiResult<()> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        let saved: Map<String, Value> = templates
            .all()
            .iter()
            .map(|(name, t)| (name.clone(), t.to_json()))
            .collect();
        let text = serde_json::to_string_pretty(&saved).expect("templates serialize");
        let temporary = dir.join("templates.json.tmp");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, dir.join("templates.json")))
            .map_err(|e| ApiError::internal(format!("saving templates: {e}")))
    }

    /// Every index, by name.
    pub fn indices(&self) -> Vec<Arc<IndexStore>> {
        self.indices
            .read()
            .expect("indices lock")
            .values()
            .cloned()
            .collect()
    }

    /// The index `name`, or 404.
    pub fn index(&self, name: &str) -> ApiResult<Arc<IndexStore>> {
        self.indices
            .read()
            .expect("indices lock")
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::index_not_found(name))
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.indices
            .read()
            .expect("indices lock")
            .contains_key(name)
    }

    /// The index a write to `name` goes to, created from the matching template if need be.
    pub fn index_for_write(&self, name: &str) -> ApiResult<Arc<IndexStore>> {
        if let Ok(index) = self.index(name) {
            return Ok(index);
        }
        let _creating = self.creating.lock().expect("creation lock");
        if let Ok(index) = self.index(name) {
            return Ok(index);
        }
        self.create_locked(name, None)
    }

    /// `PUT <index>` with an optional `{settings, mappings}` body.
    pub fn create_index(&self, name: &str, body: Option<&Value>) -> ApiResult<Arc<IndexStore>> {
        let _creating = self.creating.lock().expect("creation lock");
        if let Ok(existing) = self.index(name) {
            return Err(ApiError::index_exists(name, existing.uuid()));
        }
        self.create_locked(name, body)
    }

    fn create_locked(&self, name: &str, body: Option<&Value>) -> ApiResult<Arc<IndexStore>> {
        validate_index_name(name)?;
        let template = self
            .templates
            .read()
            .expect("templates lock")
            .for_index(name)
            .cloned();
        let mut settings = IndexSettings::default();
        let mut mapping = Mapping::default();
        if let Some(template) = &template {
            if let Some(value) = &template.settings {
                settings.apply(value)?;
            }
            if let Some(value) = &template.mappings {
                mapping = Mapping::parse(value)?;
            }
        }
        if let Some(body) = body {
            let object = body
                .as_object()
                .ok_or_else(|| ApiError::parsing("index body must be an object"))?;
            for (key, value) in object {
                match key.as_str() {
                    "settings" => settings.apply(value)?,
                    "mappings" => mapping.merge(&Mapping::parse(value)?)?,
                    other => {
                        return Err(ApiError::parsing(format!(
                            "unknown key [{other}] for create index (this engine serves settings and mappings)"
                        )))
                    }
                }
            }
        }
        let folder = self.data_dir.as_ref().map(|d| d.join("indices").join(name));
        let index = Arc::new(IndexStore::create(name, settings, mapping, folder)?);
        self.indices
            .write()
            .expect("indices lock")
            .insert(name.to_owned(), index.clone());
        Ok(index)
    }

    /// `DELETE <expression>`.
    pub fn delete_indices(&self, expression: &str) -> ApiResult<()> {
        let targets = self.resolve(expression, ResolveOptions::default())?;
        let mut indices = self.indices.write().expect("indices lock");
        for index in targets {
            indices.remove(index.name());
            index.close();
            if let Some(folder) = index.folder() {
                std::fs::remove_dir_all(folder)
                    .map_err(|e| ApiError::internal(format!("deleting [{}]: {e}", index.name())))?;
            }
        }
        Ok(())
    }

    /// The indices an expression names: `a,b`, `logs-*`, `_all` / `*` / empty, `-excluded`.
    pub fn resolve(
        &self,
        expression: &str,
        options: ResolveOptions,
    ) -> ApiResult<Vec<Arc<IndexStore>>> {
        let indices = self.indices.read().expect("indices lock");
        let mut chosen: BTreeMap<String, Arc<IndexStore>> = BTreeMap::new();
        let mut any_wildcard = false;
        for part in expression
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if let Some(excluded) = part.strip_prefix('-').filter(|_| !chosen.is_empty()) {
                chosen.retain(|name, _| !wildcard_match(excluded, name));
                continue;
            }
            if part == "_all" || part.contains('*') {
                any_wildcard = true;
                let pattern = if part == "_all" { "*" } else { part };
                for (name, index) in indices.iter() {
                    if wildcard_match(pattern, name) {
                        chosen.insert(name.clone(), index.clone());
                    }
                }
                continue;
            }
            match indices.get(part) {
                Some(index) => {
                    chosen.insert(part.to_owned(), index.clone());
                }
                None if options.ignore_unavailable => {}
                None => return Err(ApiError::index_not_found(part)),
            }
        }
        if expression.trim().is_empty() {
            any_wildcard = true;
            chosen.extend(indices.iter().map(|(n, i)| (n.clone(), i.clone())));
        }
        if chosen.is_empty() && any_wildcard && !options.allow_no_indices {
            return Err(ApiError::index_not_found(expression));
        }
        Ok(chosen.into_values().collect())
    }

    /// `PUT _index_template/<name>`.
    pub fn put_template(&self, name: &str, body: &Value) -> ApiResult<()> {
        let template = IndexTemplate::parse(name, body)?;
        let mut templates = self.templates.write().expect("templates lock");
        templates.put(name, template)?;
        self.save_templates(&templates)
    }

    /// `GET _index_template[/<pattern>]`.
    pub fn get_templates(&self, pattern: Option<&str>) -> ApiResult<Value> {
        let templates = self.templates.read().expect("templates lock");
        let found = templates.find(pattern.unwrap_or("*"));
        if found.is_empty() {
            if let Some(pattern) = pattern.filter(|p| !p.contains('*')) {
                return Err(ApiError::new(
                    404,
                    "resource_not_found_exception",
                    format!("index template matching [{pattern}] not found"),
                ));
            }
        }
        let list: Vec<Value> = found
            .into_iter()
            .map(|(name, t)| json!({"name": name, "index_template": t.to_json()}))
            .collect();
        Ok(json!({ "index_templates": list }))
    }

    /// `DELETE _index_template/<name>`.
    pub fn delete_template(&self, name: &str) -> ApiResult<()> {
        let mut templates = self.templates.write().expect("templates lock");
        if !templates.delete(name) {
            return Err(ApiError::new(
                404,
                "index_template_missing_exception",
                format!("index_template [{name}] missing"),
            ));
        }
        self.save_templates(&templates)
    }

    /// Refreshes every index whose `refresh_interval` has passed since its last refresh.
    pub fn refresh_due(&self) {
        let now = Instant::now();
        for index in self.indices() {
            let Some(interval) = index.refresh_interval() else {
                continue;
            };
            if !index.is_dirty() {
                continue;
            }
            let due = {
                let mut refreshed = self.refreshed.lock().expect("refresh lock");
                let last = refreshed.entry(index.name().to_owned()).or_insert(now);
                if now.duration_since(*last) >= interval {
                    *last = now;
                    true
                } else {
                    false
                }
            };
            if due {
                if let Err(error) = index.refresh() {
                    tracing::warn!(index = index.name(), %error, "periodic refresh failed");
                }
            }
        }
    }

    /// Commits every index (before the process exits).
    pub fn flush(&self) {
        for index in self.indices() {
            let _ = index.refresh();
        }
    }
}
