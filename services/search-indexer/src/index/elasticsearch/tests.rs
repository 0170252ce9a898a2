use super::*;
use crate::index::{contract, recorded::Elastic};

#[tokio::test(flavor = "multi_thread")]
async fn contract_on_recorded_exchanges() {
    let elastic = Elastic::start("contract", &["contract-*"]).await;
    let catalog = ElasticCatalog::new(&elastic.url, "contract").unwrap();
    let (live, _) = catalog.open_live().await.expect("open");
    contract::run(live.as_ref()).await;
    elastic.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_contract_on_recorded_exchanges() {
    let elastic = Elastic::start("catalog", &["catalog-*"]).await;
    let catalog = ElasticCatalog::new(&elastic.url, "catalog").unwrap();
    contract::catalog(&catalog).await;
    elastic.finish();
}
