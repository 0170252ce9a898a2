//! The tonic `CustomerService`: decodes requests, calls the use cases, encodes answers.

use bytes::Bytes;
use crm_domain::{CustomerId, CustomerPatch, ValidationErrors};
use crm_proto::v1::{self, customer_service_server::CustomerService as CustomerRpc};
use futures::StreamExt;
use tokio_util::io::StreamReader;
use tonic::{Request, Response, Status, Streaming};

use crate::import::ImportFormat;

use crate::{Error, repo::SegmentChange, service::CustomerService};

pub struct CustomerGrpc {
    service: CustomerService,
}

impl CustomerGrpc {
    pub fn new(service: CustomerService) -> Self {
        Self { service }
    }

    pub fn into_server(self) -> v1::customer_service_server::CustomerServiceServer<Self> {
        v1::customer_service_server::CustomerServiceServer::new(self)
    }
}

fn parse_id(field: &str, raw: &str) -> Result<CustomerId, Error> {
    raw.parse()
        .map_err(|message: String| ValidationErrors::single(field, message).into())
}

#[tonic::async_trait]
impl CustomerRpc for CustomerGrpc {
    async fn create_customer(
        &self,
        request: Request<v1::CreateCustomerRequest>,
    ) -> Result<Response<v1::Customer>, Status> {
        let input = request.into_inner().customer.unwrap_or_default();
        let customer = self.service.create(input.into()).await?;
        Ok(Response::new(customer.into()))
    }

    async fn get_customer(
        &self,
        request: Request<v1::GetCustomerRequest>,
    ) -> Result<Response<v1::Customer>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        Ok(Response::new(self.service.get(id).await?.into()))
    }

    async fn update_customer(
        &self,
        request: Request<v1::UpdateCustomerRequest>,
    ) -> Result<Response<v1::Customer>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let patch =
            CustomerPatch::try_from(request.patch.unwrap_or_default()).map_err(Error::from)?;
        let customer = self
            .service
            .update(id, &patch, request.expected_version)
            .await?;
        Ok(Response::new(customer.into()))
    }

    async fn delete_customer(
        &self,
        request: Request<v1::DeleteCustomerRequest>,
    ) -> Result<Response<v1::DeleteCustomerResponse>, Status> {
        let request_id = request
            .metadata()
            .get(crm_platform::grpc::REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let customer = if request.erase {
            let requested_by = &request.requested_by;
            self.service.erase(id, requested_by, request_id).await?
        } else {
            self.service.delete(id, request.expected_version).await?
        };
        Ok(Response::new(v1::DeleteCustomerResponse {
            customer: Some(customer.into()),
        }))
    }

    async fn get_customer360(
        &self,
        request: Request<v1::GetCustomer360Request>,
    ) -> Result<Response<v1::Customer360>, Status> {
        use crm_proto::convert::{order_to_proto, ticket_to_proto};
        let id = parse_id("id", &request.into_inner().id)?;
        let view = self.service.view_360(id).await?;
        Ok(Response::new(v1::Customer360 {
            customer: Some(view.customer.into()),
            recent_orders: view
                .recent_orders
                .into_iter()
                .map(|o| order_to_proto(id, o))
                .collect(),
            recent_activity: view.recent_activity.into_iter().map(Into::into).collect(),
            support_tickets: view
                .support_tickets
                .into_iter()
                .map(|t| ticket_to_proto(id, t))
                .collect(),
            timeline: view.timeline.into_iter().map(Into::into).collect(),
            degraded: view
                .degraded
                .into_iter()
                .map(|d| v1::DegradedPart {
                    part: d.part.to_owned(),
                    reason: d.reason,
                })
                .collect(),
        }))
    }

    async fn find_duplicates(
        &self,
        request: Request<v1::FindDuplicatesRequest>,
    ) -> Result<Response<v1::FindDuplicatesResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let found = self.service.duplicates(id, Some(request.limit)).await?;
        Ok(Response::new(v1::FindDuplicatesResponse {
            candidates: found
                .into_iter()
                .map(|d| v1::DuplicateCandidate {
                    customer: Some(d.customer.into()),
                    score: d.likeness.score,
                    evidence: d.likeness.evidence,
                })
                .collect(),
        }))
    }

    async fn merge_customers(
        &self,
        request: Request<v1::MergeCustomersRequest>,
    ) -> Result<Response<v1::MergeCustomersResponse>, Status> {
        let request = request.into_inner();
        let primary = parse_id("primary_id", &request.primary_id)?;
        let secondary = parse_id("secondary_id", &request.secondary_id)?;
        let merged = self
            .service
            .merge(primary, secondary, request.dry_run)
            .await?;
        Ok(Response::new(v1::MergeCustomersResponse {
            merged: Some(merged.primary.into()),
            secondary: Some(merged.secondary.into()),
        }))
    }

    async fn export_customer(
        &self,
        request: Request<v1::ExportCustomerRequest>,
    ) -> Result<Response<v1::ExportCustomerResponse>, Status> {
        let id = parse_id("id", &request.into_inner().id)?;
        let document = self.service.export(id).await?;
        Ok(Response::new(v1::ExportCustomerResponse {
            document_json: document.to_string(),
            exported_at: Some(crm_proto::convert::timestamp(chrono::Utc::now())),
        }))
    }

    async fn set_segment(
        &self,
        request: Request<v1::SetSegmentRequest>,
    ) -> Result<Response<v1::Customer>, Status> {
        let request = request.into_inner();
        let id = parse_id("customer_id", &request.customer_id)?;
        let segment = crm_proto::convert::segment_from_proto(request.segment)
            .ok_or_else(|| Error::from(ValidationErrors::single("segment", "must be a segment")))?;
        let customer = self
            .service
            .set_segment(id, segment, &request.reason, request.based_on_version)
            .await?;
        Ok(Response::new(customer.into()))
    }

    async fn set_segments(
        &self,
        request: Request<v1::SetSegmentsRequest>,
    ) -> Result<Response<v1::SetSegmentsResponse>, Status> {
        let requested = request.into_inner().changes;
        let mut errors = ValidationErrors::default();
        let mut changes = Vec::with_capacity(requested.len());
        for (i, change) in requested.iter().enumerate() {
            let field = |name: &str| format!("changes[{i}].{name}");
            let id = change.customer_id.parse::<CustomerId>();
            let segment = crm_proto::convert::segment_from_proto(change.segment);
            if let Err(message) = &id {
                errors.push(field("customer_id"), message.clone());
            }
            if segment.is_none() {
                errors.push(field("segment"), "must be a segment");
            }
            if change.based_on_version.is_none() {
                errors.push(field("based_on_version"), "is required");
            }
            if let (Ok(id), Some(segment), Some(based_on_version)) =
                (id, segment, change.based_on_version)
            {
                changes.push(SegmentChange {
                    id,
                    segment,
                    reason: change.reason.clone(),
                    based_on_version,
                });
            }
        }
        errors.finish(|| ()).map_err(Error::from)?;
        let changed = self.service.set_segments(&changes).await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(v1::SetSegmentsResponse {
            changed: count(changed),
            skipped: count(requested.len() - changed),
        }))
    }

    async fn list_customer_events(
        &self,
        request: Request<v1::ListCustomerEventsRequest>,
    ) -> Result<Response<v1::ListCustomerEventsResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id("customer_id", &request.customer_id)?;
        let event_type = request
            .r#type
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse()
                    .map_err(|message: String| ValidationErrors::single("type", message))
            })
            .transpose()
            .map_err(Error::from)?;
        let page = request.page.unwrap_or_default();
        let found = self
            .service
            .events(id, event_type, Some(&page.cursor), Some(page.limit))
            .await?;
        Ok(Response::new(v1::ListCustomerEventsResponse {
            events: found.events.into_iter().map(Into::into).collect(),
            next_cursor: found.next_cursor.unwrap_or_default(),
        }))
    }

    /// The first chunk names the format; the rows are imported as the chunks arrive.
    async fn import_customers(
        &self,
        request: Request<Streaming<v1::ImportChunk>>,
    ) -> Result<Response<v1::Job>, Status> {
        let mut chunks = request.into_inner();
        let first = chunks.message().await?.unwrap_or_default();
        let format = match v1::ImportFormat::try_from(first.format) {
            Ok(v1::ImportFormat::Csv) => ImportFormat::Csv,
            Ok(v1::ImportFormat::Ndjson) => ImportFormat::Ndjson,
            _ => {
                let errors = ValidationErrors::single("format", "must be CSV or NDJSON");
                return Err(Error::from(errors).into());
            }
        };
        let rest = chunks.map(|chunk| {
            chunk
                .map(|c| Bytes::from(c.data))
                .map_err(std::io::Error::other)
        });
        let data = futures::stream::iter([Ok(Bytes::from(first.data))]).chain(rest);
        let job = self.service.import(format, StreamReader::new(data)).await?;
        Ok(Response::new(job.into()))
    }

    async fn get_import(
        &self,
        request: Request<v1::GetImportRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let raw = request.into_inner().id;
        let id = uuid::Uuid::parse_str(&raw)
            .map_err(|_| Error::from(ValidationErrors::single("id", "must be a UUID")))?;
        Ok(Response::new(self.service.import_job(id).await?.into()))
    }

    async fn get_daily_sales(
        &self,
        request: Request<v1::GetDailySalesRequest>,
    ) -> Result<Response<v1::GetDailySalesResponse>, Status> {
        let request = request.into_inner();
        let rows = self
            .service
            .daily_sales(Some(&request.from), Some(&request.to))
            .await?;
        let rows = rows
            .into_iter()
            .map(|row| v1::DailySales {
                day: row.day.to_string(),
                segment: crm_proto::convert::segment_to_proto(row.segment) as i32,
                currency: row.currency,
                orders: row.orders,
                revenue: row.revenue,
            })
            .collect();
        Ok(Response::new(v1::GetDailySalesResponse { rows }))
    }

    async fn list_customers(
        &self,
        request: Request<v1::ListCustomersRequest>,
    ) -> Result<Response<v1::ListCustomersResponse>, Status> {
        let request = request.into_inner();
        let page = request.page.unwrap_or_default();
        let found = self
            .service
            .list(
                Some(&page.cursor),
                Some(page.limit),
                request.include_deleted,
            )
            .await?;
        Ok(Response::new(v1::ListCustomersResponse {
            customers: found.customers.into_iter().map(Into::into).collect(),
            next_cursor: found.next_cursor.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crm_platform::{Shutdown, bus::MemoryBus, cache::MemoryCache};
    use crm_proto::v1::customer_service_client::CustomerServiceClient;
    use tonic_types::StatusExt;

    use super::*;
    use crate::{Application, repo::SqliteRepository};

    async fn client() -> (CustomerServiceClient<tonic::transport::Channel>, Shutdown) {
        let repo = SqliteRepository::in_memory().await.unwrap();
        let service = CustomerService::new(Arc::new(repo), Arc::new(MemoryCache::new(100)));
        let bus = Arc::new(MemoryBus::new());
        let app = Application::with_service(
            service,
            bus,
            crm_platform::listeners::Listen::loopback(),
            vec![],
        )
        .await
        .unwrap();
        let url = format!("http://{}", app.grpc_addr());
        let shutdown = Shutdown::new();
        tokio::spawn(app.run(shutdown.clone()));
        (CustomerServiceClient::connect(url).await.unwrap(), shutdown)
    }

    #[tokio::test]
    async fn set_segment_changes_it_and_records_why() {
        let (mut client, _shutdown) = client().await;
        let input = v1::CustomerInput {
            email: "vip@example.com".into(),
            ..Default::default()
        };
        let created = client
            .create_customer(v1::CreateCustomerRequest {
                customer: Some(input),
            })
            .await
            .unwrap()
            .into_inner();

        let request = v1::SetSegmentRequest {
            customer_id: created.id.clone(),
            segment: v1::Segment::Vip as i32,
            reason: "lifetime value reached 1000".into(),
            rfm: None,
            based_on_version: Some(1),
        };
        let changed = client.set_segment(request).await.unwrap().into_inner();

        assert_eq!(
            (changed.segment, changed.version),
            (v1::Segment::Vip as i32, 2)
        );
        let page = v1::Page {
            limit: 10,
            cursor: String::new(),
        };
        let events = client
            .list_customer_events(v1::ListCustomerEventsRequest {
                customer_id: created.id.clone(),
                page: Some(page),
                r#type: Some("customer.segment_changed".into()),
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        let data = crm_proto::json::struct_to_json(events[0].data.clone().unwrap());
        assert_eq!(
            (&data["old_segment"], &data["new_segment"]),
            (&"new".into(), &"vip".into())
        );
        assert_eq!(data["reason"], "lifetime value reached 1000");

        let unspecified = v1::SetSegmentRequest {
            customer_id: created.id,
            ..Default::default()
        };
        let status = client.set_segment(unspecified).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let violations = status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .clone();
        assert_eq!(violations[0].field, "segment");
    }
}
