//! The search port: the customers index, kept in step with customer-core's snapshots and
//! queried as the API's `SearchRequest` says. tantivy is the embedded adapter;
//! Elasticsearch follows (see the README's status).

#[cfg(test)]
pub(crate) mod contract;
mod elastic_jobs;
pub mod elasticsearch;
#[cfg(test)]
mod recorded;
pub mod tantivy;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::{Customer, CustomerStatus, Segment};

use crate::reindex::JobBoard;

pub use self::tantivy::{TantivyCatalog, TantivyIndex};

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The engine failed or is unreachable: worth trying again.
    #[error("search index: {0}")]
    Engine(String),
    /// The engine refused this request for good (a 4xx): trying again cannot help.
    #[error("search index: {0}")]
    Rejected(String),
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
}

/// A passing engine failure, from whatever the engine's client said.
fn engine(error: impl std::fmt::Display) -> IndexError {
    IndexError::Engine(error.to_string())
}

/// The status of a merged-away customer's tombstone (no customer has it): such a
/// document keeps the version out of reach of older snapshots and no search finds it.
const MERGED: &str = "merged";

pub const DEFAULT_LIMIT: u32 = 20;

/// A search, as the API's `SearchRequest` asks for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Free text over e-mail, phone, names; typo tolerant. Empty: every customer.
    pub text: String,
    pub segment: Option<Segment>,
    /// Deleted customers only appear when this asks for them.
    pub status: Option<CustomerStatus>,
    /// Any of these tags.
    pub tags: Vec<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub offset: u32,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub customer: Customer,
    pub score: f32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResults {
    pub total: u64,
    pub hits: Vec<SearchHit>,
}

/// What `apply` did with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Indexed,
    /// The index holds this version or a newer one.
    Stale,
    /// Merged away or erased: no longer a customer of its own.
    Removed,
}

/// A merged-away customer is part of another, an erased one is nobody: neither is
/// findable, their index entry is a bare tombstone that keeps older snapshots out.
pub(crate) fn is_tombstone(customer: &Customer) -> bool {
    customer.merged_into.is_some() || customer.is_erased()
}

#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Indexes each snapshot unless the index holds the same or a newer version of the
    /// customer, so a late, older event never overwrites newer data. A deleted customer
    /// stays as a deleted document (default searches skip it); a merged-away or erased
    /// one is removed, its version kept so that older snapshots stay out. One answer per
    /// snapshot, in order.
    async fn apply_all(&self, customers: &[Customer]) -> Result<Vec<Applied>>;

    async fn apply(&self, customer: &Customer) -> Result<Applied> {
        let applied = self.apply_all(std::slice::from_ref(customer)).await?;
        applied
            .first()
            .copied()
            .ok_or_else(|| IndexError::Engine("no answer for the snapshot".into()))
    }
    /// Sorted by relevance, then most recent activity.
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults>;
    /// Makes every applied snapshot visible to searches now.
    async fn refresh(&self) -> Result<()>;
    /// Whether the engine answers (readiness).
    async fn ping(&self) -> Result<()>;
}

/// One generation of the index: a name for logs and jobs, and the index itself.
#[derive(Clone)]
pub struct Generation {
    pub name: String,
    pub index: Arc<dyn SearchIndex>,
}

/// The generations of the index and the alias that says which one searches read, so a
/// full reindex builds beside the live index and swaps when done.
#[async_trait]
pub trait IndexCatalog: Send + Sync {
    /// What searches read, created empty when there is none yet; `true` when it was
    /// just created (and wants a reindex).
    async fn open_live(&self) -> Result<(Arc<dyn SearchIndex>, bool)>;
    /// A new, empty generation beside the live one.
    async fn create_generation(&self) -> Result<Generation>;
    /// Points searches at `generation` at once (the alias swap) and drops the older
    /// generations; returns what searches read from now on.
    async fn promote(&self, generation: &Generation) -> Result<Arc<dyn SearchIndex>>;

    /// Where the replicas that write this one engine (Elasticsearch) keep their reindex
    /// jobs; `None` when each replica's index is its own (tantivy).
    fn shared_jobs(&self) -> Option<Arc<dyn JobBoard>> {
        None
    }

    /// A generation another replica builds, for replicas that share the engine.
    fn generation(&self, _name: &str) -> Option<Arc<dyn SearchIndex>> {
        None
    }
}

/// Fuzziness AUTO, as Elasticsearch counts it: exact up to 2 characters, one edit for
/// 3-5, two edits from 6.
pub fn edits_allowed(word: &str) -> u8 {
    match word.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// The endings of a phone number's digits that a search may give (from 4 digits on),
/// so "0123" finds +1 202 555 0123.
pub fn phone_suffixes(phone: &str) -> Vec<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (0..digits.len().saturating_sub(3))
        .map(|start| digits[start..].to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzziness_is_elasticsearch_auto() {
        assert_eq!(
            ["ab", "abc", "abcde", "abcdef"].map(edits_allowed),
            [0, 1, 1, 2]
        );
    }

    #[test]
    fn a_phone_is_found_by_its_last_four_digits_or_more() {
        let suffixes = phone_suffixes("+12025550123");
        assert_eq!(suffixes.first().map(String::as_str), Some("12025550123"));
        assert_eq!(suffixes.last().map(String::as_str), Some("0123"));
        assert!(!suffixes.contains(&"123".to_owned()));
    }
}
