//! `crm import FILE`: uploads a CSV or NDJSON file of customers to a running platform
//! (standalone or distributed) with a progress bar, then prints what the import did.

use std::path::PathBuf;

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

/// Runs the import; fails when the platform refused it or the import itself failed.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let content_type = args.content_type()?;
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
    let response = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    progress.finish_and_clear();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the platform refused the import ({status}): {}",
            answer["detail"].as_str().unwrap_or("no detail")
        );
    }
    let count = |field: &str| answer[field].as_u64().unwrap_or_default();
    println!(
        "import {}: {}; {} created, {} updated, {} unchanged, {} failed",
        answer["id"].as_str().unwrap_or("?"),
        answer["status"].as_str().unwrap_or("?"),
        count("created"),
        count("updated"),
        count("unchanged"),
        count("failed"),
    );
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
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
            answer["reason"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(())
}
