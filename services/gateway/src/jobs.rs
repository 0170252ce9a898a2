//! Jobs as the REST API shows them: an import, a segment recompute and a reindex answer
//! with the one `Job` of the domain, started (202 and where to follow it) or looked up.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use crm_domain::Job;
use crm_proto::v1;

use crate::error::{Error, Result};

/// A job as `service` sent it; one that does not parse is that service's bug (500).
pub(crate) fn decode(job: v1::Job, service: &str) -> Result<Job> {
    Job::try_from(job)
        .map_err(|e| Error::internal(format!("{service} sent an unreadable job: {e}")))
}

/// 202 Accepted with the job as the body and its address (`{collection}/{id}`) to
/// follow it at.
pub(crate) fn started(collection: &str, job: v1::Job, service: &str) -> Result<Response> {
    let job = decode(job, service)?;
    let mut response = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{collection}/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
