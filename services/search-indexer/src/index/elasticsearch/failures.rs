use super::*;
use crate::index::{contract::customer, recorded::Elastic};

#[tokio::test(flavor = "multi_thread")]
async fn passing_failures_are_retried_and_errors_say_what_elasticsearch_said() {
    let elastic = Elastic::replay("failures").await;
    let index = ElasticIndex::new(client(&elastic.url).unwrap(), "contract");
    let everyone = SearchQuery {
        limit: 20,
        ..Default::default()
    };
    // 429 with Retry-After, then 503, then the answer.
    let found = index.search(&everyone).await.expect("retried");
    assert_eq!(found.total, 1);
    assert_eq!(
        found.hits[0].customer.email.as_str(),
        "dorothy@nasa.example"
    );

    // A bulk item rejected (a full write queue): only it is sent again.
    let ada = customer("ada@example.com", "Ada", "Lovelace", None, &[]);
    let grace = customer("grace@example.com", "Grace", "Hopper", None, &[]);
    let applied = index.apply_all(&[ada, grace]).await.expect("bulk");
    assert_eq!(applied, [Applied::Indexed, Applied::Indexed]);

    // A refused query: no retry, and Elasticsearch's own words in the error.
    let refused = index.search(&everyone).await.unwrap_err().to_string();
    assert!(
        refused.contains("search_phase_execution_exception"),
        "{refused}"
    );

    // Down for good: the last answer after every attempt.
    let down = index.search(&everyone).await.unwrap_err().to_string();
    assert!(down.contains("503"), "{down}");
    elastic.finish();
}
