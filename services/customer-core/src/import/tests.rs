use std::sync::Arc;

use crm_domain::Email;
use crm_platform::cache::MemoryCache;

use super::*;
use crate::repo::SqliteRepository;

async fn service() -> CustomerService {
    let repo = SqliteRepository::in_memory().await.unwrap();
    CustomerService::new(Arc::new(repo), Arc::new(MemoryCache::new(100)))
}

#[tokio::test]
async fn csv_rows_are_upserted_by_email_and_bad_lines_reported() {
    let service = service().await;
    let csv = "email,first_name,tags,newsletter\n\
                   ada@example.com,Ada,vip|tech,yes\n\
                   not-an-email,Bob,,\n\
                   \"grace@example.com\",\"Grace, Admiral\",,no\n\
                   ADA@example.com,Augusta,,\n\
                   too,many,fields,here,now\n\
                   ada@example.com,Augusta,,\n";
    let job = service
        .import(ImportFormat::Csv, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(job.status, crm_domain::JobStatus::Completed);
    assert_eq!(
        (
            job.count("created"),
            job.count("updated"),
            job.count("unchanged"),
            job.count("failed")
        ),
        (2, 1, 1, 2)
    );
    let lines: Vec<u64> = job.failures.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 6]);
    assert!(
        job.failures[0].message.starts_with("email:"),
        "{}",
        job.failures[0].message
    );
    let ada = service
        .repository()
        .find_live_by_email(&Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ada.first_name.unwrap().as_str(),
        "Augusta",
        "the later row updated it"
    );
    assert_eq!(ada.tags.len(), 2, "an empty cell keeps the value");
    assert!(ada.preferences.newsletter);
    assert_eq!(
        service.import_job(job.id).await.unwrap(),
        job,
        "saved as returned"
    );
}

#[tokio::test]
async fn an_unknown_column_fails_the_import_before_any_row() {
    let service = service().await;
    let job = service
        .import(ImportFormat::Csv, "email,shoe_size\na@b.co,42\n".as_bytes())
        .await
        .unwrap();
    assert_eq!(job.status, crm_domain::JobStatus::Failed);
    assert!(job.error.clone().unwrap().contains("shoe_size"));
    assert_eq!(job.count("created"), 0);
}

#[tokio::test]
async fn ndjson_lines_are_numbered_and_blank_ones_skipped() {
    let service = service().await;
    let ndjson = "{\"email\": \"a@example.com\", \"tags\": [\"x\"]}\n\n\
                      {\"email\": \"b@example.com\", \"segment\": \"vip\"}\n\
                      not json\n\
                      {\"email\": \"c@example.com\", \"preferences\": {\"currency\": \"usd\"}}\n";
    let job = service
        .import(ImportFormat::Ndjson, ndjson.as_bytes())
        .await
        .unwrap();
    assert_eq!((job.count("created"), job.count("failed")), (2, 2));
    let lines: Vec<u64> = job.failures.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4]);
    assert!(job.failures[0].message.contains("unknown field `segment`"));
}

#[tokio::test]
async fn an_overlong_ndjson_line_is_refused_alone() {
    let service = service().await;
    let long = format!(
        "{{\"email\": \"x@example.com\", \"first_name\": \"{}\"}}",
        "a".repeat(200_000)
    );
    let ndjson =
        format!("{{\"email\": \"a@example.com\"}}\n{long}\n{{\"email\": \"b@example.com\"}}\n");
    let job = service
        .import(ImportFormat::Ndjson, ndjson.as_bytes())
        .await
        .unwrap();
    assert_eq!(job.status, crm_domain::JobStatus::Completed);
    assert_eq!((job.count("created"), job.count("failed")), (2, 1));
    assert_eq!(job.failures[0].line, 2);
    assert!(
        job.failures[0].message.contains("longer than 64 KiB"),
        "{:?}",
        job.failures
    );
}

#[tokio::test]
async fn a_csv_quote_that_never_closes_stops_the_import_at_its_row() {
    let service = service().await;
    let csv = format!(
        "email,first_name\na@example.com,Ada\nb@example.com,\"Bo{}\n",
        "b,\n".repeat(100_000)
    );
    let job = service
        .import(ImportFormat::Csv, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(job.status, crm_domain::JobStatus::Failed);
    assert_eq!(job.count("created"), 1, "the rows before are imported");
    let reason = job.error.unwrap();
    assert!(reason.starts_with("line 3:"), "{reason}");
    assert!(reason.contains("longer than 64 KiB"), "{reason}");
}

fn ndjson_rows(emails: impl IntoIterator<Item = String>, first_name: &str) -> String {
    emails
        .into_iter()
        .map(|email| format!("{{\"email\":\"{email}\",\"first_name\":\"{first_name}\"}}\n"))
        .collect()
}

/// Rows are written in batches, yet a row sees what every earlier row of the upload
/// wrote: in its own batch and in an earlier one.
#[tokio::test]
async fn a_later_row_updates_what_an_earlier_row_wrote_in_any_batch() {
    let service = service().await;
    let mut emails: Vec<String> = (0..1_200).map(|n| format!("row-{n}@example.com")).collect();
    emails[11] = emails[10].clone();
    emails[900] = emails[3].clone();
    let mut upload = ndjson_rows(emails[..1_100].to_vec(), "Ada");
    upload.push_str(&ndjson_rows([emails[5].clone()], "Grace"));
    let job = service
        .import(ImportFormat::Ndjson, upload.as_bytes())
        .await
        .unwrap();
    assert_eq!(job.progress.done, 1_101);
    assert_eq!(
        (
            job.count("created"),
            job.count("updated"),
            job.count("unchanged")
        ),
        (1_098, 1, 2),
        "{job:?}"
    );
    let grace = service
        .repository()
        .find_live_by_email(&Email::parse(&emails[5]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grace.first_name.unwrap().as_str(), "Grace");
}

/// Two uploads of the same customers at once: their batches race for the same
/// e-mails, and the one that loses writes its batch again row by row, so each
/// customer exists once and every row is counted.
#[tokio::test]
async fn two_uploads_of_the_same_customers_at_once_create_each_once() {
    let service = service().await;
    let emails: Vec<String> = (0..700).map(|n| format!("racer-{n}@example.com")).collect();
    let upload = ndjson_rows(emails.clone(), "Racer");
    let (first, second) = tokio::join!(
        service.import(ImportFormat::Ndjson, upload.as_bytes()),
        service.import(ImportFormat::Ndjson, upload.as_bytes()),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    for job in [&first, &second] {
        assert_eq!(job.status, crm_domain::JobStatus::Completed, "{job:?}");
        assert_eq!(job.count("failed"), 0, "{:?}", job.failures);
        assert_eq!(job.progress.done, 700);
    }
    assert_eq!(first.count("created") + second.count("created"), 700);
    assert_eq!(first.count("unchanged") + second.count("unchanged"), 700);
    let emails: Vec<Email> = emails.iter().map(|e| Email::parse(e).unwrap()).collect();
    let found = service
        .repository()
        .find_live_by_emails(&emails)
        .await
        .unwrap();
    assert_eq!(found.len(), 700);
}
