//! Amazon Data Firehose, emulated: the delivery stream the service network's second access-log
//! subscription writes to (Direct PUT), with the real transform binary as its processor, the
//! search engine as its OpenSearch destination and a local folder as its S3 backup.
//!
//! What Firehose does, and this does the same (facts in `../shared/facts/firehose-opensearch.md`):
//! - records are buffered for the processor by size and by interval (the Lambda processor's
//!   `BufferSizeInMBs` / `BufferIntervalInSeconds`; small defaults here so a demo shows data in
//!   seconds);
//! - each batch is one synchronous invocation of the function with Firehose's event, through the
//!   local Lambda service; the answer must hold every record id exactly once
//!   ([`processor::check_response`]), or the invocation fails as a whole with
//!   `Lambda.DuplicatedRecordId`, `Lambda.MissingRecordId` or `Lambda.JsonProcessingException`
//!   and is retried (`NumberOfRetries`, 3), then every record of it goes to `processing-failed/`;
//! - records answered `ProcessingFailed` go to `processing-failed/` too, `Dropped` ones nowhere;
//! - `Ok` documents are bulk-indexed ([`opensearch`]); refusals and exhausted retries go to the
//!   failed-documents folder ([`bucket::OPENSEARCH_FAILED`]).
//!
//! Nothing is lost silently: [`FirehoseStats`] counts every record into exactly one of indexed,
//! dropped, processing-failed or failed-document, and [`DeliveryStream::drain`] waits until every
//! record received is one of them.
//!
//! Not emulated: Firehose's own buffering toward OpenSearch (each processed batch is delivered at
//! once), source record backup, dynamic partitioning and the CloudWatch error log stream (errors
//! are counted and logged here instead).

pub mod bucket;
pub mod opensearch;
pub mod processor;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::lambda::function::Function;
use crate::lattice::access_log::LogSubscriber;
use bucket::{LocalBucket, OPENSEARCH_FAILED, PROCESSING_FAILED};
use opensearch::{signed_request, Delivered, Document, EngineAuth, OpenSearchDestination};
use processor::{check_response, Answer, InvocationError, Record};

/// The stream's name (and the index name before the day is appended).
pub const STREAM_NAME: &str = "lattice-access";
/// The transform function's name (and binary).
pub const TRANSFORM_FUNCTION: &str = "access-log-transform";

/// How the stream runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirehoseSetup {
    /// Processor buffer: a batch is sent when it holds this many bytes…
    pub buffer_bytes: usize,
    /// …or when its oldest record has waited this long.
    pub buffer_interval: Duration,
    /// Retries of a failed invocation (`NumberOfRetries`).
    pub processor_retries: u32,
    /// How long OpenSearch delivery is retried (`RetryOptions.DurationInSeconds`).
    pub retry_duration: Duration,
    /// Extra environment for the transform function (tests set `TRANSFORM_FAULT`).
    pub transform_env: Vec<(String, String)>,
    /// Deliver to this endpoint instead of the stack's search engine (tests: a dead port).
    pub destination_url: Option<String>,
}

impl Default for FirehoseSetup {
    fn default() -> Self {
        Self {
            buffer_bytes: 1024 * 1024,
            buffer_interval: Duration::from_secs(1),
            processor_retries: 3,
            retry_duration: Duration::from_secs(30),
            transform_env: Vec::new(),
            destination_url: None,
        }
    }
}

/// Where every record went, so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirehoseStats {
    /// Records put into the stream.
    pub received: u64,
    /// Indexed into the search engine.
    pub indexed: u64,
    /// Dropped by the transform on purpose.
    pub dropped: u64,
    /// In `processing-failed/` (answered `ProcessingFailed`, or their batch failed).
    pub processing_failed: u64,
    /// In the failed-documents folder.
    pub failed_documents: u64,
    /// Invocations of the transform (retries included).
    pub invocations: u64,
    /// Invocations that failed as a whole.
    pub failed_invocations: u64,
    /// `_bulk` requests sent.
    pub bulk_requests: u64,
    /// Backup objects that could not be written (their records are counted where they belong
    /// and logged; a local disk error is the only cause).
    pub backup_write_errors: u64,
}

impl FirehoseStats {
    /// Records that have reached one of the four ends.
    pub fn accounted(&self) -> u64 {
        self.indexed + self.dropped + self.processing_failed + self.failed_documents
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    indexed: AtomicU64,
    dropped: AtomicU64,
    processing_failed: AtomicU64,
    failed_documents: AtomicU64,
    invocations: AtomicU64,
    failed_invocations: AtomicU64,
    bulk_requests: AtomicU64,
    backup_write_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FirehoseStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FirehoseStats {
            received: get(&self.received),
            indexed: get(&self.indexed),
            dropped: get(&self.dropped),
            processing_failed: get(&self.processing_failed),
            failed_documents: get(&self.failed_documents),
            invocations: get(&self.invocations),
            failed_invocations: get(&self.failed_invocations),
            bulk_requests: get(&self.bulk_requests),
            backup_write_errors: get(&self.backup_write_errors),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The running stream. `put` never blocks; a background task does the rest.
#[derive(Debug)]
pub struct DeliveryStream {
    /// `arn:aws:firehose:<region>:<account>:deliverystream/<name>`.
    pub arn: String,
    sender: mpsc::UnboundedSender<Vec<u8>>,
    counters: Arc<Counters>,
    flush: Arc<Notify>,
    bucket: LocalBucket,
    transform: Arc<Function>,
    task: JoinHandle<()>,
}

/// The search engine the stream delivers to.
#[derive(Clone, Debug)]
pub struct SearchEndpoint {
    /// Its URL.
    pub url: String,
    /// How the stream authenticates to it.
    pub auth: EngineAuth,
}

/// The index template of the traffic analytics (`analytics/lattice-access-template.json`, the
/// file the AWS setup installs too).
pub const INDEX_TEMPLATE: &str = include_str!("../../../../analytics/lattice-access-template.json");

/// Installs [`INDEX_TEMPLATE`] as `_index_template/lattice-access` (before the first document,
/// so the first day's index is created from it).
pub async fn install_index_template(search: &SearchEndpoint) -> Result<(), String> {
    let url = format!(
        "{}/_index_template/{STREAM_NAME}",
        search.url.trim_end_matches('/')
    );
    let request = signed_request(
        http::Method::PUT,
        &url,
        "application/json",
        INDEX_TEMPLATE.as_bytes().to_vec(),
        &search.auth,
    )?;
    let response = reqwest::Client::new()
        .execute(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default()
        ))
    }
}

impl Drop for DeliveryStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LogSubscriber for DeliveryStream {
    fn deliver(&self, line: &str) {
        self.put(line.as_bytes().to_vec());
    }
}

struct Pipeline {
    setup: FirehoseSetup,
    arn: String,
    region: String,
    transform: Arc<Function>,
    destination: OpenSearchDestination,
    bucket: LocalBucket,
    counters: Arc<Counters>,
    next_record: u64,
}

impl DeliveryStream {
    /// Starts the stream: `transform` processes, `search` receives, `backup_dir` is the bucket.
    pub fn start(
        setup: FirehoseSetup,
        arn: String,
        transform: Arc<Function>,
        search: SearchEndpoint,
        backup_dir: &Path,
    ) -> Self {
        let region = arn.split(':').nth(3).unwrap_or_default().to_owned();
        let bucket = LocalBucket::new(backup_dir, "", STREAM_NAME, 1);
        let url = setup.destination_url.clone().unwrap_or(search.url);
        let mut destination = OpenSearchDestination::new(&url, STREAM_NAME, setup.retry_duration);
        destination.auth = search.auth;
        let counters = Arc::new(Counters::default());
        let flush = Arc::new(Notify::new());
        let (sender, receiver) = mpsc::unbounded_channel();
        let pipeline = Pipeline {
            destination,
            setup,
            arn: arn.clone(),
            region,
            transform: Arc::clone(&transform),
            bucket: bucket.clone(),
            counters: Arc::clone(&counters),
            next_record: 0,
        };
        let task = tokio::spawn(pipeline.run(receiver, Arc::clone(&flush)));
        Self {
            arn,
            sender,
            counters,
            flush,
            bucket,
            transform,
            task,
        }
    }

    /// Stops the stream and the transform's processes (what is still buffered is not sent:
    /// [`Self::drain`] first).
    pub async fn stop(&self) {
        self.task.abort();
        self.transform.shutdown().await;
    }

    /// Puts one record (`PutRecord`); never blocks, never fails the caller.
    pub fn put(&self, data: Vec<u8>) {
        add(&self.counters.received, 1);
        if self.sender.send(data).is_err() {
            tracing::warn!("the delivery stream has stopped; a record was not taken");
        }
    }

    /// Where every record went, so far.
    pub fn stats(&self) -> FirehoseStats {
        self.counters.snapshot()
    }

    /// The backup bucket.
    pub fn bucket(&self) -> &LocalBucket {
        &self.bucket
    }

    /// Sends what is buffered now and waits (up to `timeout`) until every record received has
    /// reached its end. Returns the counts either way.
    pub async fn drain(&self, timeout: Duration) -> FirehoseStats {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if stats.accounted() >= stats.received || Instant::now() >= deadline {
                return stats;
            }
            self.flush.notify_one();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Pipeline {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Vec<u8>>, flush: Arc<Notify>) {
        let mut buffer: Vec<Record> = Vec::new();
        let mut buffered_bytes = 0;
        let mut oldest: Option<Instant> = None;
        loop {
            let deadline = oldest.map(|t| t + self.setup.buffer_interval);
            let due = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                data = receiver.recv() => {
                    let Some(data) = data else { break };
                    buffered_bytes += data.len();
                    oldest.get_or_insert_with(Instant::now);
                    buffer.push(self.record(data));
                    if buffered_bytes < self.setup.buffer_bytes {
                        continue;
                    }
                }
                () = due => {}
                () = flush.notified() => {
                    while let Ok(data) = receiver.try_recv() {
                        buffer.push(self.record(data));
                    }
                }
            }
            if !buffer.is_empty() {
                self.process(std::mem::take(&mut buffer)).await;
            }
            buffered_bytes = 0;
            oldest = None;
        }
    }

    fn record(&mut self, data: Vec<u8>) -> Record {
        self.next_record += 1;
        Record {
            // Firehose's record ids are 56 decimal digits.
            record_id: format!("4954698668313554428650745793{:028}", self.next_record),
            arrival_ms: epoch_ms(),
            data,
        }
    }

    /// One batch through the processor and the destination.
    async fn process(&self, records: Vec<Record>) {
        let answers = match self.invoke_with_retries(&records).await {
            Ok(answers) => answers,
            Err((error, attempts)) => {
                self.back_up_processing_failed(
                    &records.iter().collect::<Vec<_>>(),
                    &error,
                    attempts,
                );
                return;
            }
        };
        let mut documents = Vec::new();
        let mut failed = Vec::new();
        for (record, answer) in records.iter().zip(answers) {
            match answer {
                Answer::Ok(body) => documents.push(Document {
                    id: record.record_id.clone(),
                    arrival_ms: record.arrival_ms,
                    body,
                }),
                Answer::Dropped => add(&self.counters.dropped, 1),
                Answer::ProcessingFailed => failed.push(record),
            }
        }
        if !failed.is_empty() {
            let error = InvocationError::new(
                "Lambda.ProcessingFailed",
                "The Lambda function answered the record ProcessingFailed",
            );
            self.back_up_processing_failed(&failed, &error, 1);
        }
        if !documents.is_empty() {
            let delivered = self.destination.deliver(documents).await;
            self.account_delivery(delivered);
        }
    }

    async fn invoke_with_retries(
        &self,
        records: &[Record],
    ) -> Result<Vec<Answer>, (InvocationError, u32)> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            add(&self.counters.invocations, 1);
            match self.invoke(records).await {
                Ok(answers) => return Ok(answers),
                Err(error) => {
                    add(&self.counters.failed_invocations, 1);
                    tracing::warn!(code = %error.code, message = %error.message, attempts, "transform invocation failed");
                    if attempts > self.setup.processor_retries {
                        return Err((error, attempts));
                    }
                }
            }
        }
    }

    async fn invoke(&self, records: &[Record]) -> Result<Vec<Answer>, InvocationError> {
        let invocation_id = format!("{:032x}", rand::random::<u128>());
        let event = processor::event(&invocation_id, &self.arn, &self.region, records);
        let output = self
            .transform
            .invoke(Bytes::from(event.to_string()), None)
            .await
            .map_err(|e| InvocationError::new(invoke_error_code(&e), e.to_string()))?;
        check_response(records, &output.payload)
    }

    fn back_up_processing_failed(
        &self,
        records: &[&Record],
        error: &InvocationError,
        attempts: u32,
    ) {
        add(&self.counters.processing_failed, records.len() as u64);
        let ended = epoch_ms();
        let lines: Vec<String> = records
            .iter()
            .map(|r| {
                json!({
                    "attemptsMade": attempts,
                    "arrivalTimestamp": r.arrival_ms,
                    "errorCode": error.code,
                    "errorMessage": error.message,
                    "attemptEndingTimestamp": ended,
                    "rawData": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &r.data),
                    "lambdaArn": format!("{}:$LATEST", self.transform.config().arn()),
                })
                .to_string()
            })
            .collect();
        let oldest = records.iter().map(|r| r.arrival_ms).min().unwrap_or(ended);
        self.write_backup(PROCESSING_FAILED, oldest, &lines);
    }

    fn account_delivery(&self, delivered: Delivered) {
        add(&self.counters.bulk_requests, u64::from(delivered.requests));
        add(&self.counters.indexed, delivered.indexed);
        if delivered.failed.is_empty() {
            return;
        }
        add(
            &self.counters.failed_documents,
            delivered.failed.len() as u64,
        );
        let lines: Vec<String> = delivered
            .failed
            .iter()
            .map(|f| f.to_record().to_string())
            .collect();
        let oldest = delivered
            .failed
            .iter()
            .map(|f| f.document.arrival_ms)
            .min()
            .unwrap_or(0);
        self.write_backup(OPENSEARCH_FAILED, oldest, &lines);
    }

    fn write_backup(&self, folder: &str, oldest_ms: u64, lines: &[String]) {
        if let Err(e) = self.bucket.put(folder, oldest_ms, lines) {
            add(&self.counters.backup_write_errors, 1);
            tracing::error!(folder, records = lines.len(), error = %e, "writing a backup object failed");
        }
    }
}

/// Firehose's error code for an invocation that produced no response.
fn invoke_error_code(error: &crate::lambda::function::InvokeError) -> &'static str {
    use crate::lambda::function::InvokeError;
    match error {
        InvokeError::Throttled => "Lambda.InvokeLimitExceeded",
        InvokeError::Timeout(_) => "Lambda.FunctionTimedOut",
        InvokeError::Function { .. } => "Lambda.FunctionError",
        InvokeError::EnvironmentExited(_) | InvokeError::InitFailed(_) => {
            "Lambda.ServiceUnavailable"
        }
    }
}
