//! `SearchService` over gRPC: a `SearchRequest`, checked, and the reindex jobs.

use std::sync::Arc;

use crm_domain::{
    Tag, ValidationErrors,
    limits::{MAX_PAGE_SIZE, MAX_SEARCH_QUERY_CHARS, MAX_SEARCH_TAGS, MAX_SEARCH_WINDOW},
};
use crm_proto::{
    convert::{datetime, segment_from_proto, status_from_proto},
    v1::{self, search_service_server::SearchService},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    Error,
    generations::Generations,
    index::{DEFAULT_LIMIT, SearchQuery},
    reindex::Reindexer,
};

pub struct SearchGrpc {
    generations: Arc<Generations>,
    reindexer: Arc<Reindexer>,
}

impl SearchGrpc {
    pub fn new(generations: Arc<Generations>, reindexer: Arc<Reindexer>) -> Self {
        Self {
            generations,
            reindexer,
        }
    }
}

/// An enum the request sent; one sent but unknown is an error, not "no filter".
fn known<T>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<i32>,
    parse: fn(i32) -> Option<T>,
) -> Option<T> {
    let value = parse(raw?);
    if value.is_none() {
        errors.push(field, format!("unknown {field}"));
    }
    value
}

/// The request as a query, or every field that is wrong.
pub fn query_from_proto(
    request: v1::SearchCustomersRequest,
) -> Result<SearchQuery, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let text = request.query.trim().to_owned();
    if text.chars().count() > MAX_SEARCH_QUERY_CHARS {
        errors.push(
            "query",
            format!("at most {MAX_SEARCH_QUERY_CHARS} characters"),
        );
    }
    let segment = known(&mut errors, "segment", request.segment, segment_from_proto);
    let status = known(&mut errors, "status", request.status, status_from_proto);
    if request.tags.len() > MAX_SEARCH_TAGS {
        errors.push("tags", format!("at most {MAX_SEARCH_TAGS} tags"));
    }
    let tags = request
        .tags
        .iter()
        .enumerate()
        .filter_map(|(i, tag)| errors.check(&format!("tags[{i}]"), Tag::parse(tag)))
        .map(|tag| tag.as_str().to_owned())
        .collect();
    let created_after = request.created_after.as_ref().map(|at| datetime(Some(at)));
    if created_after == Some(None) {
        errors.push("created_after", "not a valid time");
    }
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        n if n <= MAX_PAGE_SIZE => n,
        _ => {
            errors.push("limit", format!("must be between 1 and {MAX_PAGE_SIZE}"));
            DEFAULT_LIMIT
        }
    };
    if request.offset.saturating_add(limit) > MAX_SEARCH_WINDOW {
        errors.push(
            "offset",
            format!("offset + limit may be at most {MAX_SEARCH_WINDOW}; narrow the search instead"),
        );
    }
    errors.finish(|| SearchQuery {
        text,
        segment,
        status,
        tags,
        created_after: created_after.flatten(),
        offset: request.offset,
        limit,
    })
}

#[tonic::async_trait]
impl SearchService for SearchGrpc {
    async fn search_customers(
        &self,
        request: Request<v1::SearchCustomersRequest>,
    ) -> Result<Response<v1::SearchCustomersResponse>, Status> {
        let query = query_from_proto(request.into_inner()).map_err(Error::from)?;
        let found = self
            .generations
            .live()
            .search(&query)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(v1::SearchCustomersResponse {
            total: found.total,
            hits: found
                .hits
                .into_iter()
                .map(|hit| v1::SearchHit {
                    customer: Some(hit.customer.into()),
                    score: f64::from(hit.score),
                })
                .collect(),
        }))
    }

    async fn reindex(&self, _: Request<v1::ReindexRequest>) -> Result<Response<v1::Job>, Status> {
        let job = self.reindexer.start().await?;
        Ok(Response::new(job.into()))
    }

    async fn get_reindex_job(
        &self,
        request: Request<v1::GetReindexJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let raw = request.into_inner().id;
        let id = Uuid::parse_str(raw.trim())
            .map_err(|_| Error::from(ValidationErrors::single("id", "must be a UUID")))?;
        Ok(Response::new(self.reindexer.job(id).await?.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> v1::SearchCustomersRequest {
        v1::SearchCustomersRequest {
            query: " Katherin ".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_normalised_tags() {
        let query = query_from_proto(v1::SearchCustomersRequest {
            tags: vec!["VIP".into()],
            ..request()
        })
        .unwrap();
        assert_eq!(
            (query.text.as_str(), query.limit, query.tags),
            ("Katherin", DEFAULT_LIMIT, vec!["vip".to_owned()])
        );
    }

    #[test]
    fn every_wrong_field_is_named() {
        let wrong = v1::SearchCustomersRequest {
            segment: Some(99),
            status: Some(99),
            tags: vec![String::new()],
            limit: 101,
            offset: 9_990,
            ..request()
        };
        let errors = query_from_proto(wrong).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["segment", "status", "tags[0]", "limit", "offset"]);
    }
}
