//! The tonic `IngestService`: single, batch and client-streaming ingest.

use crm_domain::{EventDraft, limits::MAX_EVENTS_PER_REQUEST};
use crm_proto::v1::{self, ingest_service_server::IngestService};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::service::{IngestReport, Ingestor};

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
        let mut chunks = request.into_inner().ready_chunks(MAX_EVENTS_PER_REQUEST);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crm_platform::{
        Shutdown,
        bus::{ConsumerConfig, EVENTS_EXCHANGE, EventBus, MemoryBus},
    };
    use crm_proto::v1::ingest_service_client::IngestServiceClient;

    use super::*;
    use crate::{Application, seen::MemorySeen};

    const CUSTOMER: &str = "01a20df5-a41c-776f-9af3-8d4642c2bb6b";

    fn view(id: &str) -> v1::CustomerEvent {
        let data = serde_json::json!({ "product_id": "p-1" });
        let serde_json::Value::Object(data) = data else {
            unreachable!()
        };
        v1::CustomerEvent {
            id: id.to_owned(),
            customer_id: CUSTOMER.into(),
            r#type: "product.viewed".into(),
            data: Some(crm_proto::json::json_to_struct(data)),
            ..Default::default()
        }
    }

    async fn client() -> (IngestServiceClient<tonic::transport::Channel>, Shutdown) {
        let bus = Arc::new(MemoryBus::new());
        bus.declare(&ConsumerConfig::new("all", EVENTS_EXCHANGE, &["#"]))
            .await
            .unwrap();
        let ingestor = Ingestor::new(bus, Arc::new(MemorySeen::new(10_000)));
        let app = Application::with_ingestor(ingestor, crm_platform::listeners::Listen::loopback())
            .await
            .unwrap();
        let url = format!("http://{}", app.grpc_addr());
        let shutdown = Shutdown::new();
        tokio::spawn(app.run(shutdown.clone()));
        (IngestServiceClient::connect(url).await.unwrap(), shutdown)
    }

    #[tokio::test]
    async fn a_single_event_without_an_id_gets_one() {
        let (mut client, _shutdown) = client().await;
        let request = v1::IngestEventRequest {
            event: Some(view("")),
        };
        let result = client.ingest_event(request).await.unwrap().into_inner();
        assert_eq!(result.accepted, 1);
        assert!(uuid::Uuid::parse_str(&result.accepted_ids[0]).is_ok());
    }

    #[tokio::test]
    async fn a_stream_is_ingested_in_chunks_with_indexes_from_its_start() {
        let (mut client, _shutdown) = client().await;
        let id = |n: usize| format!("0194f8a0-0000-7000-8000-{n:012}");
        let mut events: Vec<v1::CustomerEvent> = (0..2_500).map(|n| view(&id(n))).collect();
        events[1_500].r#type = "order.lost".into();
        events[2_000] = view(&id(10)); // sent before, in the first chunk

        let result = client
            .ingest_stream(futures::stream::iter(events))
            .await
            .unwrap()
            .into_inner();

        assert_eq!((result.accepted, result.duplicates), (2_498, 1));
        assert_eq!(result.rejected.len(), 1);
        assert_eq!(result.rejected[0].index, 1_500);
        assert_eq!(result.rejected[0].errors[0].field, "type");
    }
}
