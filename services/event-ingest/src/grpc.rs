//! The tonic `IngestService`: single, batch and client-streaming ingest.

use crm_domain::EventDraft;
use crm_proto::v1::{self, ingest_service_server::IngestService};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::service::{IngestReport, Ingestor, MAX_BATCH};

pub struct IngestGrpc {
    ingestor: Ingestor,
}

impl IngestGrpc {
    pub fn new(ingestor: Ingestor) -> Self {
        Self { ingestor }
    }

    pub fn into_server(self) -> v1::ingest_service_server::IngestServiceServer<Self> {
        v1::ingest_service_server::IngestServiceServer::new(self)
    }
}

fn result(report: IngestReport) -> v1::IngestResult {
    v1::IngestResult {
        accepted: report.accepted.len() as u32,
        duplicates: report.duplicates as u32,
        rejected: report
            .rejected
            .into_iter()
            .map(|r| v1::RejectedEvent {
                index: r.index as u32,
                id: r.id.unwrap_or_default(),
                errors: r
                    .errors
                    .into_iter()
                    .map(|e| v1::FieldViolation {
                        field: e.field,
                        message: e.message,
                    })
                    .collect(),
            })
            .collect(),
        accepted_ids: report.accepted.iter().map(ToString::to_string).collect(),
    }
}

#[tonic::async_trait]
impl IngestService for IngestGrpc {
    async fn ingest_event(
        &self,
        request: Request<v1::IngestEventRequest>,
    ) -> Result<Response<v1::IngestResult>, Status> {
        let event = request.into_inner().event.unwrap_or_default();
        let report = self.ingestor.ingest(vec![EventDraft::from(event)]).await?;
        Ok(Response::new(result(report)))
    }

    async fn ingest_batch(
        &self,
        request: Request<v1::IngestBatchRequest>,
    ) -> Result<Response<v1::IngestResult>, Status> {
        let drafts = request
            .into_inner()
            .events
            .into_iter()
            .map(EventDraft::from)
            .collect();
        Ok(Response::new(result(self.ingestor.ingest(drafts).await?)))
    }

    /// Any number of events, ingested in chunks of 1,000 as they arrive; indexes in the
    /// answer count from the start of the stream.
    async fn ingest_stream(
        &self,
        request: Request<Streaming<v1::CustomerEvent>>,
    ) -> Result<Response<v1::IngestResult>, Status> {
        let mut chunks = request.into_inner().ready_chunks(MAX_BATCH);
        let mut report = IngestReport::default();
        let mut offset = 0;
        while let Some(chunk) = chunks.next().await {
            let drafts: Vec<EventDraft> = chunk
                .into_iter()
                .map(|event| event.map(EventDraft::from))
                .collect::<Result<_, Status>>()?;
            let size = drafts.len();
            report.absorb(self.ingestor.ingest(drafts).await?, offset);
            offset += size;
        }
        Ok(Response::new(result(report)))
    }
}
