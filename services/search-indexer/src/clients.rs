//! Calls to other services: customer-core, where a reindex reads every customer.

use std::time::Duration;

use async_trait::async_trait;
use crm_domain::Customer;
use crm_platform::grpc::InternalChannel as Channel;
use crm_proto::v1::{self, customer_service_client::CustomerServiceClient};

use crate::{Error, Result, reindex::CustomerSource};

/// Customers asked of customer-core per call (its page limit).
const PAGE: u32 = 100;
/// customer-core may still be starting when the first build begins.
const SOURCE_ATTEMPTS: u32 = 6;
/// The longest wait between those attempts.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub struct CustomerCore(CustomerServiceClient<Channel>);

impl CustomerCore {
    pub fn new(channel: Channel) -> Self {
        Self(CustomerServiceClient::new(channel))
    }
}

#[async_trait]
impl CustomerSource for CustomerCore {
    async fn page(&self, cursor: &str) -> Result<(Vec<Customer>, Option<String>)> {
        let request = v1::ListCustomersRequest {
            page: Some(v1::Page {
                limit: PAGE,
                cursor: cursor.to_owned(),
            }),
            include_deleted: true,
        };
        let mut attempt = 0;
        let page = loop {
            match self.0.clone().list_customers(request.clone()).await {
                Ok(page) => break page.into_inner(),
                Err(status)
                    if status.code() == tonic::Code::Unavailable && attempt < SOURCE_ATTEMPTS =>
                {
                    attempt += 1;
                    let wait = crm_platform::backoff(Duration::from_millis(500), MAX_WAIT, attempt);
                    tokio::time::sleep(wait).await;
                }
                Err(status) => return Err(status.into()),
            }
        };
        let customers = page
            .customers
            .into_iter()
            .map(Customer::try_from)
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::CustomerCore(tonic::Status::internal(e)))?;
        let next = Some(page.next_cursor).filter(|c| !c.is_empty());
        Ok((customers, next))
    }
}
