use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn contract() {
    let index = TantivyIndex::in_memory().unwrap();
    super::super::contract::run(&index).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_contract_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    super::super::contract::catalog(&TantivyCatalog::on_disk(dir.path())).await;
    // After a restart the swapped-in generation is what searches read.
    let (reopened, created) = TantivyCatalog::on_disk(dir.path())
        .open_live()
        .await
        .unwrap();
    assert!(!created);
    let found = reopened
        .search(&SearchQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1, "the rebuilt generation survives a restart");
    let generations = TantivyCatalog::generations(dir.path()).unwrap();
    assert_eq!(generations.len(), 1, "older generations are removed");
}
