//! The tantivy adapter: the same fields and behaviour as the Elasticsearch mapping
//! (multi-field best match, fuzziness AUTO, term filters, newest activity first among
//! equals), on disk for `crm` or in memory for tests. Writes become visible within
//! `COMMIT_EVERY` (a background commit), or at once with `refresh`.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use crm_domain::{Customer, CustomerStatus};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
    collector::{Count, TopDocs},
    directory::MmapDirectory,
    query::{
        AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery,
        Occur, Query, RangeQuery, TermQuery,
    },
    schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value},
};
use tokio::sync::Mutex;

use super::{
    Applied, Generation, IndexCatalog, IndexError, MERGED, Result, SearchHit, SearchIndex,
    SearchQuery, SearchResults, edits_allowed, engine, phone_suffixes,
};

mod catalog;

pub use catalog::TantivyCatalog;

/// The score of a fuzzy match (any term within the edits allowed): below an exact one.
const FUZZY_BOOST: f32 = 0.5;
/// How soon an applied snapshot is searchable.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
const WRITER_MEMORY: usize = 50_000_000;
/// Tries at the writer's lock, 100 ms apart.
const WRITER_LOCK_ATTEMPTS: u32 = 100;
#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    customer: Field,
    version: Field,
    email: Field,
    first_name: Field,
    last_name: Field,
    full_name: Field,
    phone: Field,
    segment: Field,
    status: Field,
    tags: Field,
    created_at: Field,
    last_activity_at: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        customer: b.add_text_field("customer", STORED),
        version: b.add_i64_field("version", STORED),
        email: b.add_text_field("email", TEXT),
        first_name: b.add_text_field("first_name", TEXT),
        last_name: b.add_text_field("last_name", TEXT),
        full_name: b.add_text_field("full_name", TEXT),
        phone: b.add_text_field("phone", STRING),
        segment: b.add_text_field("segment", STRING),
        status: b.add_text_field("status", STRING),
        tags: b.add_text_field("tags", STRING),
        created_at: b.add_i64_field("created_at", INDEXED | FAST),
        last_activity_at: b.add_i64_field("last_activity_at", FAST),
    };
    (b.build(), fields)
}

struct Writer {
    writer: IndexWriter,
    /// Versions applied since the last commit (not visible to searchers yet).
    pending: HashMap<String, i64>,
}

pub struct TantivyIndex {
    index: Index,
    fields: Fields,
    reader: IndexReader,
    writer: Arc<Mutex<Writer>>,
}

impl TantivyIndex {
    /// Opens (or creates) the index in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(engine)?;
        let directory = MmapDirectory::open(dir).map_err(engine)?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema).map_err(engine)?;
        Self::with_index(index, fields)
    }

    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(engine)?;
        let writer = acquire_writer(&index)?;
        let this = Self {
            index,
            fields,
            reader,
            writer: Arc::new(Mutex::new(Writer {
                writer,
                pending: HashMap::new(),
            })),
        };
        this.spawn_committer();
        Ok(this)
    }

    /// Commits in the background while there are pending writes.
    fn spawn_committer(&self) {
        let writer = Arc::downgrade(&self.writer);
        let reader = self.reader.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(COMMIT_EVERY).await;
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                if let Err(error) = commit(&writer, &reader).await {
                    tracing::error!(%error, "cannot commit the search index");
                }
            }
        });
    }

    fn document(&self, customer: &Customer) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, customer.id.to_string());
        doc.add_text(
            f.customer,
            serde_json::to_string(customer).expect("a customer serializes"),
        );
        doc.add_i64(f.version, customer.version);
        doc.add_text(f.email, customer.email.as_str());
        for (field, value) in [
            (
                f.first_name,
                customer.first_name.as_ref().map(|n| n.as_str()),
            ),
            (f.last_name, customer.last_name.as_ref().map(|n| n.as_str())),
        ] {
            if let Some(value) = value {
                doc.add_text(field, value);
            }
        }
        if let Some(full_name) = customer.full_name() {
            doc.add_text(f.full_name, full_name);
        }
        for suffix in customer
            .phone
            .iter()
            .flat_map(|p| phone_suffixes(p.as_str()))
        {
            doc.add_text(f.phone, suffix);
        }
        doc.add_text(f.segment, customer.segment.as_str());
        doc.add_text(f.status, customer.status.as_str());
        for tag in &customer.tags {
            doc.add_text(f.tags, tag.as_str());
        }
        doc.add_i64(f.created_at, customer.created_at.timestamp_micros());
        doc.add_i64(
            f.last_activity_at,
            customer.last_activity_at.timestamp_micros(),
        );
        doc
    }

    /// The version the index holds of a customer (committed or pending).
    fn indexed_version(
        &self,
        searcher: &Searcher,
        pending: &HashMap<String, i64>,
        id: &str,
    ) -> Result<Option<i64>> {
        if let Some(version) = pending.get(id) {
            return Ok(Some(*version));
        }
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        let found = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(engine)?;
        let Some((_, address)) = found.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(*address).map_err(engine)?;
        Ok(doc.get_first(self.fields.version).and_then(|v| v.as_i64()))
    }

    fn words(&self, text: &str) -> Result<Vec<String>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.first_name)
            .map_err(engine)?;
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            words.push(token.text.clone());
        }
        Ok(words)
    }

    fn text_query(&self, text: &str) -> Result<Option<Box<dyn Query>>> {
        let f = self.fields;
        let mut per_word: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in self.words(text)? {
            let distance = edits_allowed(&word);
            let mut fields = vec![f.email, f.first_name, f.last_name, f.full_name];
            if word.len() >= 4 && word.chars().all(|c| c.is_ascii_digit()) {
                fields.push(f.phone);
            }
            // A fuzzy match scores the same whatever the term, so the exact term is
            // asked for too: scored by its rarity (BM25), it ranks "johnson123" above
            // the many near misses, as Elasticsearch's fuzzy scoring does.
            let alternatives: Vec<Box<dyn Query>> = fields
                .into_iter()
                .flat_map(|field| -> [Box<dyn Query>; 2] {
                    let term = Term::from_field_text(field, &word);
                    [
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new(term, distance, true)),
                            FUZZY_BOOST,
                        )),
                    ]
                })
                .collect();
            // best_fields: a word scores by its best field, not the sum.
            per_word.push((
                Occur::Should,
                Box::new(DisjunctionMaxQuery::new(alternatives)),
            ));
        }
        Ok((!per_word.is_empty()).then(|| Box::new(BooleanQuery::new(per_word)) as Box<dyn Query>))
    }

    fn filters(&self, query: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let term = |field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let mut filters: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(AllQuery)),
            (Occur::MustNot, term(f.status, MERGED)),
        ];
        if let Some(segment) = query.segment {
            filters.push((Occur::Must, term(f.segment, segment.as_str())));
        }
        match query.status {
            Some(status) => filters.push((Occur::Must, term(f.status, status.as_str()))),
            None => filters.push((
                Occur::MustNot,
                term(f.status, CustomerStatus::Deleted.as_str()),
            )),
        }
        if !query.tags.is_empty() {
            let any: Vec<(Occur, Box<dyn Query>)> = query
                .tags
                .iter()
                .map(|tag| (Occur::Should, term(f.tags, tag)))
                .collect();
            filters.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(after) = query.created_after {
            let from = Term::from_field_i64(f.created_at, after.timestamp_micros());
            filters.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    std::ops::Bound::Included(from),
                    std::ops::Bound::Unbounded,
                )),
            ));
        }
        filters
    }
}

/// The index's one writer. A process that just died (a restart) may still hold its
/// lock for a moment, so a busy lock is waited for.
fn acquire_writer(index: &Index) -> Result<IndexWriter> {
    let mut attempt = 0;
    loop {
        match index.writer(WRITER_MEMORY) {
            Ok(writer) => return Ok(writer),
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) if attempt < WRITER_LOCK_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => return Err(engine(error)),
        }
    }
}

/// Commits pending writes and makes them visible.
async fn commit(writer: &Mutex<Writer>, reader: &IndexReader) -> Result<()> {
    let mut writer = writer.lock().await;
    if writer.pending.is_empty() {
        return Ok(());
    }
    tokio::task::block_in_place(|| writer.writer.commit()).map_err(engine)?;
    reader.reload().map_err(engine)?;
    writer.pending.clear();
    Ok(())
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn apply_all(&self, customers: &[Customer]) -> Result<Vec<Applied>> {
        let mut writer = self.writer.lock().await;
        let searcher = self.reader.searcher();
        let mut answers = Vec::with_capacity(customers.len());
        for customer in customers {
            let id = customer.id.to_string();
            let indexed = self.indexed_version(&searcher, &writer.pending, &id)?;
            if indexed.is_some_and(|v| v >= customer.version) {
                answers.push(Applied::Stale);
                continue;
            }
            writer
                .writer
                .delete_term(Term::from_field_text(self.fields.id, &id));
            let applied = if super::is_tombstone(customer) {
                // A bare tombstone: only the id and version, found by no search.
                let mut doc = TantivyDocument::default();
                doc.add_text(self.fields.id, &id);
                doc.add_i64(self.fields.version, customer.version);
                doc.add_text(self.fields.status, MERGED);
                writer.writer.add_document(doc).map_err(engine)?;
                Applied::Removed
            } else {
                writer
                    .writer
                    .add_document(self.document(customer))
                    .map_err(engine)?;
                Applied::Indexed
            };
            writer.pending.insert(id, customer.version);
            answers.push(applied);
        }
        Ok(answers)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let text = self.text_query(&query.text)?;
        let filters: Box<dyn Query> = Box::new(BooleanQuery::new(self.filters(query)));
        // Filters never add to the score; with no text every hit scores the same.
        let combined: Box<dyn Query> = match text {
            Some(text) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (Occur::Must, Box::new(ConstScoreQuery::new(filters, 0.0))),
            ])),
            None => Box::new(ConstScoreQuery::new(filters, 1.0)),
        };
        let limit = query.limit.max(1) as usize;
        let top = TopDocs::with_limit(limit)
            .and_offset(query.offset as usize)
            .tweak_score(|segment: &tantivy::SegmentReader| {
                let activity = segment
                    .fast_fields()
                    .i64("last_activity_at")
                    .map(|c| c.first_or_default_col(0))
                    .ok();
                move |doc: tantivy::DocId, score: tantivy::Score| {
                    let at = activity.as_ref().map(|c| c.get_val(doc)).unwrap_or(0);
                    (score, at)
                }
            });
        let searcher = self.reader.searcher();
        let (total, found) = searcher
            .search(combined.as_ref(), &(Count, top))
            .map_err(engine)?;
        let hits = found
            .into_iter()
            .map(|((score, _), address): ((f32, i64), DocAddress)| {
                let doc: TantivyDocument = searcher.doc(address).map_err(engine)?;
                let json = doc
                    .get_first(self.fields.customer)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| IndexError::Corrupt("no stored customer".into()))?;
                let customer =
                    serde_json::from_str(json).map_err(|e| IndexError::Corrupt(e.to_string()))?;
                Ok(SearchHit { customer, score })
            })
            .collect::<Result<_>>()?;
        Ok(SearchResults {
            total: total as u64,
            hits,
        })
    }

    async fn refresh(&self) -> Result<()> {
        commit(&self.writer, &self.reader).await
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
