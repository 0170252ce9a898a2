//! Logging for every binary: `RUST_LOG` filter (default `info`), human-readable text or
//! JSON lines (`CRM_LOG_FORMAT=json`) for log shippers; always on stderr, so stdout
//! stays for what a command prints for its user.

use std::{
    borrow::Cow,
    io::{IsTerminal, Write},
    sync::LazyLock,
};

use regex::Regex;
use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter, prelude::*};

/// Keeps telemetry alive; flushes on drop once exporters are added.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard(());

/// Installs the global subscriber once; later calls (tests starting several apps) are
/// no-ops, because the subscriber is process-wide.
pub fn init_telemetry(service_name: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CRM_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        let layer = fmt::layer().json().flatten_event(true).with_writer(Masked);
        registry.with(layer).try_init()
    } else {
        let layer = fmt::layer()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(Masked);
        registry.with(layer).try_init()
    };
    if installed.is_ok() {
        tracing::debug!(service = service_name, "telemetry initialised");
    }
    TelemetryGuard(())
}

/// Every address `Email::parse` accepts (and a few it refuses: masking more is safe): its
/// local-part characters come from the domain's own list.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    let symbols: String = crm_domain::email::LOCAL_PART_SYMBOLS
        .chars()
        .map(|c| format!("\\{c}"))
        .collect();
    Regex::new(&format!(
        r"(?i)[a-z0-9.{symbols}]+@(?:[a-z0-9-]+\.)+[a-z0-9-]+"
    ))
    .expect("a valid pattern")
});
/// International numbers (`+` then digits, maybe grouped), as customer-core stores them
/// and as people type them.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+\d[\d \-().]{5,}\d").expect("a valid pattern"));

/// `text` with e-mail addresses and phone numbers replaced by `[email]` and `[phone]`.
pub fn mask_personal_data(text: &str) -> Cow<'_, str> {
    match EMAIL.replace_all(text, "[email]") {
        Cow::Borrowed(_) => PHONE.replace_all(text, "[phone]"),
        Cow::Owned(masked) => Cow::Owned(PHONE.replace_all(&masked, "[phone]").into_owned()),
    }
}

/// Where every log line goes: stderr, with personal data masked whatever logged it (an
/// error echoing input, a dependency's message), so no log line carries an e-mail
/// address or a phone number.
struct Masked;

impl<'a> MakeWriter<'a> for Masked {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> MaskedLine {
        MaskedLine(Vec::new())
    }
}

/// One formatted event, written out masked when the formatter is done with it.
struct MaskedLine(Vec<u8>);

impl Write for MaskedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().write_all(mask_personal_data(&line).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_and_phone_numbers_are_masked() {
        let line = "conflict for Katherine.Johnson@nasa.example, phone +1 202-555-0123 \
                    (+12025550123); customer 01a20eca-08ad-720e-a001-22ed879e1508 at \
                    2026-11-24T19:00:31.123456Z took 1234567 us";
        assert_eq!(
            mask_personal_data(line),
            "conflict for [email], phone [phone] ([phone]); customer \
             01a20eca-08ad-720e-a001-22ed879e1508 at 2026-11-24T19:00:31.123456Z took \
             1234567 us"
        );
    }

    #[test]
    fn every_address_the_domain_accepts_is_masked() {
        let symbols = crm_domain::email::LOCAL_PART_SYMBOLS;
        let mut addresses = vec![
            "a}@example.com".to_owned(),
            "o'neil@x.io".to_owned(),
            "first.last@sub.xn--p1ai".to_owned(),
            "x@shop-1.co9".to_owned(),
            format!("{symbols}@example.com"),
        ];
        addresses.extend(symbols.chars().map(|c| format!("a{c}b@example.org")));
        for address in addresses {
            assert!(crm_domain::Email::parse(&address).is_ok(), "{address}");
            let line = format!("customer <{address}> refused");
            assert_eq!(
                mask_personal_data(&line),
                "customer <[email]> refused",
                "{address}"
            );
        }
    }
}
