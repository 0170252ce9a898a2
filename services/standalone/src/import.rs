//! `crm import FILE`: uploads a CSV or NDJSON file of customers to a running platform
//! (standalone or distributed, over HTTP or HTTPS, with an API key where one is needed)
//! with a progress bar, then prints what the import did. Each upload carries an
//! `Idempotency-Key`: a broken connection or a passing refusal is retried with the same
//! key, so the platform imports the file once however often it is sent.

use std::{path::PathBuf, time::Duration};

use reqwest_tls as reqwest;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio_util::io::ReaderStream;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file: CSV with a header row of field names, or NDJSON.
    pub file: PathBuf,
    /// The platform's REST API.
    #[arg(long, env = "CRM_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The file's format (default: from its extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// An API key with the `customers:write` scope, where the platform needs one.
    #[arg(long, env = "CRM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A PEM file of the CA that signed the platform's HTTPS certificate, when it is
    /// not one the system trusts.
    #[arg(long, env = "CRM_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The upload's Idempotency-Key (default: a new one). Give the key an earlier run
    /// printed to finish that run without importing anything twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sends of the upload at most: a broken connection, a 5xx, a 429 or a 409 (the
    /// first send still importing) is sent again with the same key, after 1, 2, 4 ... s.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub attempts: u32,
}

impl ImportArgs {
    fn content_type(&self) -> anyhow::Result<&'static str> {
        let extension = self
            .file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let format = match (self.format, extension.to_ascii_lowercase().as_str()) {
            (Some(format), _) => format,
            (None, "csv") => Format::Csv,
            (None, "ndjson" | "jsonl") => Format::Ndjson,
            (None, _) => bail!(
                "cannot tell the format of {:?}; pass --format csv or --format ndjson",
                self.file
            ),
        };
        Ok(match format {
            Format::Csv => "text/csv",
            Format::Ndjson => "application/x-ndjson",
        })
    }
}

fn client(args: &ImportArgs) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {path:?}"))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{path:?} is not a PEM certificate"))?;
        builder = builder.add_root_certificate(certificate);
    }
    Ok(builder.build()?)
}

/// Sends the file once; what the platform answered.
async fn upload(
    client: &reqwest::Client,
    args: &ImportArgs,
    key: &str,
) -> anyhow::Result<reqwest::Response> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {:?}", args.file))?;
    let size = file.metadata().await?.len();
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("a valid template"),
    );
    let tracked = progress.clone();
    let body = ReaderStream::new(file).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            tracked.inc(bytes.len() as u64);
        }
    });
    let endpoint = format!("{}/api/imports", args.url.trim_end_matches('/'));
    let mut request = client
        .post(&endpoint)
        .header("content-type", args.content_type()?)
        .header("idempotency-key", key)
        .body(reqwest::Body::wrap_stream(body));
    if let Some(api_key) = &args.api_key {
        request = request.bearer_auth(api_key);
    }
    let sent = request.send().await;
    progress.finish_and_clear();
    sent.with_context(|| format!("cannot reach {endpoint}"))
}

/// Runs the import; fails when the platform refused it or the import itself failed.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    args.content_type()?;
    tokio::fs::metadata(&args.file)
        .await
        .with_context(|| format!("cannot open {:?}", args.file))?;
    let client = client(&args)?;
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut attempt = 1;
    let (status, answer) = loop {
        let failed = match upload(&client, &args, &key).await {
            Ok(response) => {
                let status = response.status();
                let passing = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    // The first send is still importing.
                    || status == reqwest::StatusCode::CONFLICT;
                let answer: Value = response.json().await.unwrap_or_default();
                if !passing || attempt == args.attempts {
                    break (status, answer);
                }
                format!(
                    "{status}: {}",
                    answer["detail"].as_str().unwrap_or("no detail")
                )
            }
            Err(error) if attempt < args.attempts => format!("{error:#}"),
            Err(error) => {
                return Err(error.context(format!(
                    "the upload did not get through; run again with --idempotency-key {key} \
                     to finish it without importing anything twice"
                )));
            }
        };
        let wait = Duration::from_secs(1 << (attempt - 1));
        eprintln!(
            "upload {attempt} failed ({failed}); sending again in {} s",
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    };
    if !status.is_success() {
        bail!(
            "the platform refused the import ({status}): {}",
            answer["detail"].as_str().unwrap_or("no detail")
        );
    }
    let count = |field: &str| answer["counts"][field].as_u64().unwrap_or_default();
    println!(
        "import {}: {}; {} created, {} updated, {} unchanged, {} failed",
        answer["id"].as_str().unwrap_or("?"),
        answer["status"].as_str().unwrap_or("?"),
        count("created"),
        count("updated"),
        count("unchanged"),
        count("failed"),
    );
    let errors = answer["failures"].as_array().cloned().unwrap_or_default();
    for error in &errors {
        println!(
            "  line {}: {}",
            error["line"],
            error["message"].as_str().unwrap_or_default()
        );
    }
    if count("failed") > errors.len() as u64 {
        println!(
            "  ... and {} more failed rows",
            count("failed") - errors.len() as u64
        );
    }
    if answer["status"] == "failed" {
        bail!(
            "the import stopped: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(())
}
