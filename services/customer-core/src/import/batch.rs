//! Writing an import's rows: gathered into batches of `BATCH_ROWS`, each batch reads its
//! customers with one query and writes them in one transaction of multi-row statements
//! (customers and their outbox rows alike) instead of a transaction per row. When
//! another writer gets in between (the same e-mail created, one of the customers
//! changed), that batch is written again row by row, as single upserts would.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use crm_domain::{
    Customer, CustomerDraft, CustomerId, CustomerPatch, Email, Job, ValidationErrors,
};

use super::Stop;
use crate::{Error, Result, service::CustomerService};

/// Rows written in one transaction; the job's progress is saved after each.
pub(super) const BATCH_ROWS: usize = 500;

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

/// A row as read: its line, and its customer or why it cannot be one.
pub(super) type Row = (u64, Result<CustomerDraft, String>);

/// What became of a row: an upsert, or the failure the job lists for its line.
type Outcome = Result<Upserted, String>;

/// The rows read and not yet written, and their e-mails.
#[derive(Default)]
pub(super) struct Batch {
    rows: Vec<Row>,
    emails: HashSet<String>,
}

impl Batch {
    /// Adds a row; gives it back (nothing added) when a row with its e-mail waits already:
    /// the batch is written first, so that the later row updates what the earlier one
    /// wrote.
    fn add(&mut self, row: Row) -> Option<Row> {
        let email = row
            .1
            .as_ref()
            .ok()
            .and_then(|d| Email::parse(&d.email).ok());
        if let Some(email) = email
            && !self.emails.insert(email.as_str().to_owned())
        {
            return Some(row);
        }
        self.rows.push(row);
        None
    }

    fn take(&mut self) -> Vec<Row> {
        self.emails.clear();
        std::mem::take(&mut self.rows)
    }
}

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

fn parse_email(draft: &CustomerDraft) -> Result<Email, String> {
    Email::parse(&draft.email).map_err(|m| describe(&ValidationErrors::single("email", m)))
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

    /// Adds a row read to `batch`, writing the batch before it when it holds the row's
    /// e-mail, and after it when full.
    pub(super) async fn import_row(
        &self,
        job: &mut Job,
        batch: &mut Batch,
        row: Row,
    ) -> Result<(), Stop> {
        if let Some(row) = batch.add(row) {
            self.write_batch(job, batch).await?;
            // The batch is empty now: the row goes in.
            let _ = batch.add(row);
        }
        if batch.rows.len() >= BATCH_ROWS {
            self.write_batch(job, batch).await?;
        }
        Ok(())
    }

    /// Writes the rows waiting in `batch`, counts them into `job` and saves its progress.
    pub(super) async fn write_batch(&self, job: &mut Job, batch: &mut Batch) -> Result<(), Stop> {
        let rows = batch.take();
        if rows.is_empty() {
            return Ok(());
        }
        let outcomes = match self.upsert_together(&rows).await {
            Ok(outcomes) => outcomes,
            Err(Error::EmailTaken | Error::VersionConflict) => {
                self.upsert_one_by_one(&rows).await?
            }
            Err(other) => return Err(Stop::Store(other)),
        };
        for ((line, _), outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Ok(upserted) => job.add(upserted.count(), 1),
                Err(message) => job.fail_item(*line, message),
            }
        }
        job.progress.done += rows.len() as u64;
        self.repository()
            .save_import(job)
            .await
            .map_err(Stop::Store)
    }

    /// Upserts every row in one transaction (their e-mails are distinct).
    async fn upsert_together(&self, rows: &[Row]) -> Result<Vec<Outcome>> {
        let emails: Vec<Email> = rows
            .iter()
            .filter_map(|(_, draft)| parse_email(draft.as_ref().ok()?).ok())
            .collect();
        let existing: HashMap<String, Customer> = self
            .repository()
            .find_live_by_emails(&emails)
            .await?
            .into_iter()
            .map(|customer| (customer.email.as_str().to_owned(), customer))
            .collect();
        let now = Utc::now();
        let (mut created, mut updated) = (Vec::new(), Vec::new());
        let mut upsert = |draft: &CustomerDraft| -> Outcome {
            let email = parse_email(draft)?;
            let Some(current) = existing.get(email.as_str()) else {
                let customer = Customer::create(CustomerId::generate(), draft.clone(), now)
                    .map_err(|e| describe(&e))?;
                created.push(customer);
                return Ok(Upserted::Created);
            };
            let next = current
                .patched(&patch_from(draft.clone()), now)
                .map_err(|e| describe(&e))?;
            if next.version == current.version {
                return Ok(Upserted::Unchanged);
            }
            updated.push(next);
            Ok(Upserted::Updated)
        };
        let outcomes: Vec<Outcome> = rows
            .iter()
            .map(|(_, draft)| upsert(draft.as_ref().map_err(Clone::clone)?))
            .collect();
        self.repository()
            .write_import_batch(&created, &updated)
            .await?;
        if !created.is_empty() {
            self.outbox_signal().notify_one();
        }
        self.after_commit(&updated).await;
        Ok(outcomes)
    }

    /// Upserts the rows one at a time: after another writer got in between.
    async fn upsert_one_by_one(&self, rows: &[Row]) -> Result<Vec<Outcome>, Stop> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for (_, draft) in rows {
            let draft = match draft {
                Ok(draft) => draft,
                Err(message) => {
                    outcomes.push(Err(message.clone()));
                    continue;
                }
            };
            outcomes.push(match self.upsert_by_email(draft.clone()).await {
                Ok(upserted) => Ok(upserted),
                Err(Error::Invalid(errors)) => Err(describe(&errors)),
                Err(Error::EmailTaken) => Err("the e-mail address is taken".into()),
                Err(other) => return Err(Stop::Store(other)),
            });
        }
        Ok(outcomes)
    }
}
