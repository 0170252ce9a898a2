//! Bulk import of customers: CSV (a header row with the customer's field names, `tags` and
//! `categories` separated by `|`) or NDJSON (one customer JSON per line), read as a
//! stream and upserted by e-mail row by row, so a file of any size never sits in memory.
//! Progress and the first 100 errors (by line) are saved while it runs.

use chrono::Utc;
use crm_domain::{
    CustomerDraft, CustomerPatch, Email, Job, JobKind, PreferencesPatch, ValidationErrors,
};
use futures::StreamExt;
use tokio::io::{AsyncRead, BufReader};
use uuid::Uuid;

use crate::{Error, Result, service::CustomerService};

mod bounded;

pub use bounded::MAX_ROW_BYTES;
use bounded::{Line, RowLimit, next_line};

/// The phase of an import until it ends.
pub const READING: &str = "reading rows";
/// Rows between two progress saves.
const PROGRESS_EVERY: u64 = 500;

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

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

impl Upserted {
    /// The job count this outcome adds to.
    fn count(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// What became of each row an import read: the counts it shows (from the start, at 0).
const ROW_OUTCOMES: [&str; 4] = ["created", "updated", "unchanged", "failed"];

fn describe(errors: &ValidationErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The fields a row gives, as a patch of an existing customer (empty ones stay).
fn patch_from(draft: CustomerDraft) -> CustomerPatch {
    CustomerPatch {
        phone: draft.phone.map(Some),
        first_name: draft.first_name.map(Some),
        last_name: draft.last_name.map(Some),
        tags: (!draft.tags.is_empty()).then_some(draft.tags),
        addresses: (!draft.addresses.is_empty()).then_some(draft.addresses),
        preferences: Some(draft.preferences),
        ..CustomerPatch::default()
    }
}

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
    /// Creates the customer, or changes the live one with the same e-mail.
    pub async fn upsert_by_email(&self, draft: CustomerDraft) -> Result<Upserted> {
        let email = Email::parse(&draft.email).map_err(|m| ValidationErrors::single("email", m))?;
        // Two tries: a concurrent create of the same e-mail turns the second into an update.
        for _ in 0..2 {
            match self.repository().find_live_by_email(&email).await? {
                None => match self.create(draft.clone()).await {
                    Ok(_) => return Ok(Upserted::Created),
                    Err(Error::EmailTaken) => continue,
                    Err(other) => return Err(other),
                },
                Some(existing) => {
                    let patch = patch_from(draft);
                    let after = self.update(existing.id, &patch, None).await?;
                    return Ok(if after.version == existing.version {
                        Upserted::Unchanged
                    } else {
                        Upserted::Updated
                    });
                }
            }
        }
        Err(Error::EmailTaken)
    }

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
        let outcome = match format {
            ImportFormat::Csv => self.import_csv(input, &mut job).await,
            ImportFormat::Ndjson => self.import_ndjson(input, &mut job).await,
        };
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

    async fn import_row(
        &self,
        job: &mut Job,
        line: u64,
        draft: Result<CustomerDraft, String>,
    ) -> Result<(), Stop> {
        match draft {
            Err(message) => job.fail_item(line, message),
            Ok(draft) => match self.upsert_by_email(draft).await {
                Ok(upserted) => job.add(upserted.count(), 1),
                Err(Error::Invalid(errors)) => job.fail_item(line, describe(&errors)),
                Err(Error::EmailTaken) => job.fail_item(line, "the e-mail address is taken".into()),
                Err(other) => return Err(Stop::Store(other)),
            },
        }
        job.progress.done += 1;
        if job.progress.done.is_multiple_of(PROGRESS_EVERY) {
            self.repository()
                .save_import(job)
                .await
                .map_err(Stop::Store)?;
        }
        Ok(())
    }

    async fn import_csv(
        &self,
        input: impl AsyncRead + Unpin + Send,
        job: &mut Job,
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
            self.import_row(job, line, draft).await?;
        }
        Ok(())
    }

    async fn import_ndjson(
        &self,
        input: impl AsyncRead + Unpin + Send,
        job: &mut Job,
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
                    self.import_row(job, line, Err(message)).await?;
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
            self.import_row(job, line, draft).await?;
        }
    }
}

/// Why an import stopped before the end of its input.
enum Stop {
    /// The input cannot be read on (a bad header, broken encoding, a cut upload).
    Input(String),
    Store(Error),
}

#[cfg(test)]
mod tests;
