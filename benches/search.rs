//! Customer search on a generated base (default 1,000,000 customers, `BENCH_CUSTOMERS`
//! to change): the tantivy index of crm-search-indexer beside the same fuzzy search done
//! with PostgreSQL's `pg_trgm` (a GIN trigram index, `<%` word similarity) on the same
//! data, in the same run. Reports the indexing rate of each and the latency (p50, p99)
//! of the same queries: names with a typo, e-mail local parts and phone endings, one at
//! a time as a user types them. Also how often the wanted customer is on the first page
//! (a fast search that misses is no search).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use crm_benches::data::{FIRST, LAST};
use crm_domain::{Customer, CustomerDraft, CustomerId};
use crm_search_indexer::index::{SearchIndex, SearchQuery, TantivyIndex};

const BATCH: usize = 2_000;
const QUERIES: usize = 300;
const PAGE: u32 = 20;

/// Customer `i`: one of 1,024 name pairs, a unique e-mail and phone.
fn customer(i: usize) -> Customer {
    let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
    let draft = CustomerDraft {
        email: format!(
            "{}.{}{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        ),
        phone: Some(format!("+1202{:07}", i)),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        ..Default::default()
    };
    let at =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(i as i64);
    let id = CustomerId::from(uuid::Uuid::from_u128(i as u128 + 1));
    Customer::create(id, draft, at).expect("a valid customer")
}

/// What a user types to find customer `i`, by turns: a name with a typo, the e-mail's
/// local part, the phone's last digits.
fn query(i: usize, kind: usize) -> String {
    let c = customer(i);
    match kind % 3 {
        0 => {
            let last = c.last_name.as_ref().unwrap().as_str();
            // A letter dropped from the last name, with the first name.
            let typo: String = last
                .chars()
                .enumerate()
                .filter(|(n, _)| *n != 2)
                .map(|(_, ch)| ch)
                .collect();
            format!("{} {typo}", c.first_name.as_ref().unwrap().as_str())
        }
        1 => c.email.as_str().split('@').next().unwrap().to_owned(),
        _ => {
            let phone = c.phone.as_ref().unwrap().as_str();
            phone[phone.len() - 7..].to_owned()
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

struct Measured {
    p50: Duration,
    p99: Duration,
    found: usize,
}

fn summarize(mut latencies: Vec<Duration>, found: usize) -> Measured {
    latencies.sort();
    Measured {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        found,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[tokio::main]
async fn main() {
    let customers: usize = crm_benches::env_or("BENCH_CUSTOMERS", 1_000_000);
    let targets: Vec<usize> = (0..QUERIES).map(|q| (q * 7_919 + 13) % customers).collect();

    // tantivy, on disk as crm-search-indexer keeps it.
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open(dir.path()).unwrap();
    eprintln!("indexing {customers} customers with tantivy ...");
    let started = Instant::now();
    for start in (0..customers).step_by(BATCH) {
        let batch: Vec<Customer> = (start..(start + BATCH).min(customers))
            .map(customer)
            .collect();
        index.apply_all(&batch).await.unwrap();
    }
    index.refresh().await.unwrap();
    let tantivy_indexing = started.elapsed();

    // PostgreSQL pg_trgm on the same rows.
    let url = crm_platform::testing::fresh_postgres_url().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for statement in [
        "create extension if not exists pg_trgm",
        "create table search (id uuid primary key, text text not null)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    eprintln!("loading and indexing {customers} customers in PostgreSQL (pg_trgm) ...");
    let started = Instant::now();
    for start in (0..customers).step_by(BATCH) {
        let (ids, texts): (Vec<uuid::Uuid>, Vec<String>) = (start..(start + BATCH).min(customers))
            .map(customer)
            .map(|c| {
                let text = format!(
                    "{} {} {}",
                    c.email.as_str(),
                    c.full_name().unwrap_or_default(),
                    c.phone.as_ref().map(|p| p.as_str()).unwrap_or_default()
                );
                (c.id.as_uuid(), text)
            })
            .unzip();
        sqlx::query("insert into search (id, text) select * from unnest($1::uuid[], $2::text[])")
            .bind(&ids)
            .bind(&texts)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("create index search_trgm on search using gin (text gin_trgm_ops)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("analyze search").execute(&pool).await.unwrap();
    let pg_indexing = started.elapsed();

    eprintln!("{QUERIES} queries each ...");
    let mut latencies = Vec::new();
    let mut found = 0;
    for (n, &target) in targets.iter().enumerate() {
        let search = SearchQuery {
            text: query(target, n),
            limit: PAGE,
            ..Default::default()
        };
        let started = Instant::now();
        let hits = index.search(&search).await.unwrap();
        latencies.push(started.elapsed());
        found += usize::from(
            hits.hits
                .iter()
                .any(|h| h.customer.id == customer(target).id),
        );
    }
    let tantivy = summarize(latencies, found);

    let mut latencies = Vec::new();
    let mut found = 0;
    for (n, &target) in targets.iter().enumerate() {
        let text = query(target, n);
        let started = Instant::now();
        let ids: Vec<(uuid::Uuid,)> = sqlx::query_as(
            "select id from search where $1 <% text \
             order by word_similarity($1, text) desc limit $2",
        )
        .bind(&text)
        .bind(i64::from(PAGE))
        .fetch_all(&pool)
        .await
        .unwrap();
        latencies.push(started.elapsed());
        found += usize::from(ids.iter().any(|(id,)| *id == customer(target).id.as_uuid()));
    }
    let pg = summarize(latencies, found);

    // How soon a changed customer is found: a new e-mail each time, searched for until
    // it answers (the index commits in the background).
    let mut visible = Vec::new();
    for n in 0..50 {
        let mut changed = customer(n);
        changed.email = crm_domain::Email::parse(&format!("renamed{n}@fresh.example")).unwrap();
        changed.version += 1;
        let search = SearchQuery {
            text: format!("renamed{n}"),
            limit: 1,
            ..Default::default()
        };
        let started = Instant::now();
        index.apply(&changed).await.unwrap();
        while index.search(&search).await.unwrap().total == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        visible.push(started.elapsed());
    }
    let visible = summarize(visible, 0);

    let rate = |d: Duration| customers as f64 / d.as_secs_f64();
    println!(
        "search, {customers} customers, {QUERIES} queries (typo'd names, e-mail local parts, phone endings), first page of {PAGE}"
    );
    println!(
        "  indexing   pg_trgm (insert + GIN)  {:>9.0} customers/s (baseline)",
        rate(pg_indexing)
    );
    println!(
        "  indexing   tantivy                 {:>9.0} customers/s ({:.2}x)",
        rate(tantivy_indexing),
        rate(tantivy_indexing) / rate(pg_indexing)
    );
    for (name, m) in [("pg_trgm (baseline)", &pg), ("tantivy", &tantivy)] {
        println!(
            "  search     {name:<22}  p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.2}x p50 of baseline)  wanted customer on page 1: {}/{QUERIES}",
            ms(m.p50),
            ms(m.p99),
            ms(m.p50) / ms(pg.p50),
            m.found
        );
    }
    println!(
        "  a change is found after (tantivy)   p50 {:>7.0} ms  p99 {:>7.0} ms",
        ms(visible.p50),
        ms(visible.p99)
    );
}
