//! Bulk import of customers: CSV (a header row with the customer's field names, `tags` and
//! `categories` separated by `|`) or NDJSON (one customer JSON per line), read as a
//! stream and upserted by e-mail in batches (`batch.rs`), so a file of any size never
//! sits in memory. Progress and the first 100 errors (by line) are saved while it runs.

use chrono::Utc;
use crm_domain::{CustomerDraft, Job, JobKind, PreferencesPatch};
use futures::StreamExt;
use tokio::io::{AsyncRead, BufReader};
use uuid::Uuid;

use crate::{Error, Result, service::CustomerService};

mod batch;
mod bounded;

use batch::Batch;
pub use batch::Upserted;
pub use bounded::MAX_ROW_BYTES;
use bounded::{Line, RowLimit, next_line};

/// The phase of an import until it ends.
pub const READING: &str = "reading rows";

/// The CSV columns, named as the customer's fields.
pub const CSV_COLUMNS: [&str; 10] = [
    "email",
    "phone",
    "first_name",
    "last_name",
    "tags",
    "language",
    "currency",
    "newsletter",
    "sms_notifications",
    "categories",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Ndjson,
}

/// What became of each row an import read: the counts it shows (from the start, at 0).
const ROW_OUTCOMES: [&str; 4] = ["created", "updated", "unchanged", "failed"];

fn flag(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// One CSV record as a draft; `columns[i]` names field `i`.
fn csv_draft(
    record: &csv_async::StringRecord,
    columns: &[&'static str],
) -> Result<CustomerDraft, String> {
    let mut draft = CustomerDraft::default();
    let mut preferences = PreferencesPatch::default();
    let list = |raw: &str| {
        raw.split('|')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (value, column) in record.iter().zip(columns) {
        if value.is_empty() {
            continue;
        }
        let owned = Some(value.to_owned());
        match *column {
            "email" => draft.email = value.to_owned(),
            "phone" => draft.phone = owned,
            "first_name" => draft.first_name = owned,
            "last_name" => draft.last_name = owned,
            "tags" => draft.tags = list(value),
            "language" => preferences.language = owned,
            "currency" => preferences.currency = owned,
            "newsletter" => {
                preferences.newsletter = Some(flag(value).map_err(|m| format!("newsletter: {m}"))?)
            }
            "sms_notifications" => {
                preferences.sms_notifications =
                    Some(flag(value).map_err(|m| format!("sms_notifications: {m}"))?)
            }
            "categories" => preferences.categories = Some(list(value)),
            _ => {}
        }
    }
    draft.preferences = preferences;
    Ok(draft)
}

impl CustomerService {
    pub async fn import_job(&self, id: Uuid) -> Result<Job> {
        self.repository()
            .get_import(id)
            .await?
            .ok_or(Error::ImportNotFound(id))
    }

    /// Imports every row of `input`; the job is saved as it goes and returned finished.
    pub async fn import(
        &self,
        format: ImportFormat,
        input: impl AsyncRead + Unpin + Send,
    ) -> Result<Job> {
        let now = crm_domain::stored_precision(Utc::now());
        let mut job = Job::start(Uuid::now_v7(), JobKind::Import, READING, now);
        for outcome in ROW_OUTCOMES {
            job.add(outcome, 0);
        }
        self.repository().save_import(&job).await?;
        tracing::info!(import_id = %job.id, ?format, "import started");
        let mut batch = Batch::default();
        let read = match format {
            ImportFormat::Csv => self.import_csv(input, &mut job, &mut batch).await,
            ImportFormat::Ndjson => self.import_ndjson(input, &mut job, &mut batch).await,
        };
        // The rows read before the end, or before the input broke off.
        let written = self.write_batch(&mut job, &mut batch).await;
        let outcome = read.and(written);
        let reason = match outcome {
            Ok(()) => None,
            Err(Stop::Input(reason)) => Some(reason),
            Err(Stop::Store(error)) => {
                tracing::error!(%error, import_id = %job.id, "import stopped");
                Some("the customer store failed; the rows before were imported".into())
            }
        };
        job.finish(crm_domain::stored_precision(Utc::now()), reason);
        self.repository().save_import(&job).await?;
        tracing::info!(import_id = %job.id, counts = ?job.counts, status = %job.status,
            "import finished");
        Ok(job)
    }

    async fn import_csv(
        &self,
        input: impl AsyncRead + Unpin + Send,
        job: &mut Job,
        batch: &mut Batch,
    ) -> Result<(), Stop> {
        let (input, row_start) = RowLimit::new(input);
        let mut reader = csv_async::AsyncReaderBuilder::new()
            .trim(csv_async::Trim::All)
            .create_reader(input);
        let headers = reader
            .headers()
            .await
            .map_err(|e| Stop::Input(format!("line 1: {e}")))?
            .clone();
        let mut columns = Vec::with_capacity(headers.len());
        for name in headers.iter() {
            let column = CSV_COLUMNS.iter().find(|c| **c == name).ok_or_else(|| {
                Stop::Input(format!(
                    "line 1: unknown column {name:?}; known: {}",
                    CSV_COLUMNS.join(", ")
                ))
            })?;
            columns.push(*column);
        }
        if !columns.contains(&"email") {
            return Err(Stop::Input("line 1: the email column is required".into()));
        }
        let mut records = reader.records();
        let mut last_line = 1;
        while let Some(record) = records.next().await {
            row_start.mark();
            let (line, draft) = match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line());
                    last_line = line;
                    (line, csv_draft(&record, &columns))
                }
                // The input cannot be read on (too long a row, a broken upload).
                Err(error) if matches!(error.kind(), csv_async::ErrorKind::Io(_)) => {
                    let line = last_line + 1;
                    return Err(Stop::Input(format!("line {line}: {error}")));
                }
                Err(error) => {
                    let line = error.position().map_or(0, |p| p.line());
                    let message = match error.kind() {
                        csv_async::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("{len} fields where the header has {expected_len}")
                        }
                        _ => error.to_string(),
                    };
                    (line, Err(message))
                }
            };
            self.import_row(job, batch, (line, draft)).await?;
        }
        Ok(())
    }

    async fn import_ndjson(
        &self,
        input: impl AsyncRead + Unpin + Send,
        job: &mut Job,
        batch: &mut Batch,
    ) -> Result<(), Stop> {
        let mut input = BufReader::new(input);
        let mut line = 0;
        loop {
            let text = match next_line(&mut input).await {
                Ok(Line::Text(text)) => text,
                Ok(Line::End) => return Ok(()),
                Ok(Line::TooLong) => {
                    line += 1;
                    let message = format!("longer than {} KiB", MAX_ROW_BYTES / 1024);
                    self.import_row(job, batch, (line, Err(message))).await?;
                    continue;
                }
                Err(error) => return Err(Stop::Input(format!("line {}: {error}", line + 1))),
            };
            line += 1;
            if text.trim().is_empty() {
                continue;
            }
            let draft = serde_json::from_str::<CustomerDraft>(&text).map_err(|e| {
                let message = e.to_string();
                message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned()
            });
            self.import_row(job, batch, (line, draft)).await?;
        }
    }
}

/// Why an import stopped before the end of its input.
pub(super) enum Stop {
    /// The input cannot be read on (a bad header, broken encoding, a cut upload).
    Input(String),
    Store(Error),
}

#[cfg(test)]
mod tests;
