//! E-mail address value type: the normalised form used to identify and deduplicate customers.

/// A syntactically valid, lower-cased e-mail address.
///
/// The accepted syntax is the "dot-atom" subset of RFC 5322 with an
/// ASCII host name: quoted local parts, comments and IP literals are
/// refused because real customers almost never have them and they make
/// lookup and deduplication ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

crate::value::string_value!(Email);

/// RFC 5321 caps a forward path at 256 octets including the angle
/// brackets, which leaves 254 for the address itself.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

const INVALID: &str = "must be a valid e-mail address";

impl Email {
    /// Longest address accepted, in characters.
    pub const MAX_CHARS: usize = MAX_LEN;

    /// Validates and normalises `input` (trimmed, lower-cased).
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".to_owned());
        }
        // Counted before anything else so huge inputs are refused cheaply.
        if trimmed.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters long"));
        }
        // Mailbox providers treat addresses case-insensitively in practice,
        // and uniqueness of customers relies on one canonical spelling.
        let address = trimmed.to_ascii_lowercase();
        let (local, domain) = address.split_once('@').ok_or(INVALID)?;
        if !is_valid_local_part(local) || !is_valid_domain(domain) {
            return Err(INVALID.to_owned());
        }
        Ok(Self(address))
    }

    /// The part before the `@`.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.0
            .split_once('@')
            .map_or(self.0.as_str(), |(local, _)| local)
    }

    /// The part after the `@`.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }

    /// The mailbox the address reaches, for finding duplicates: without a `+tag`, and
    /// for Gmail without dots (Gmail ignores both), so `Jane.Doe+shop@gmail.com` and
    /// `janedoe@googlemail.com` match.
    #[must_use]
    pub fn match_key(&self) -> String {
        let local = self.local_part();
        let local = local.split_once('+').map_or(local, |(mailbox, _)| mailbox);
        match self.domain() {
            "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
            domain => format!("{local}@{domain}"),
        }
    }
}

/// What a local part may hold besides ASCII letters, digits and dots (RFC 5322 `atext`):
/// log masking matches every address this module accepts from the same list.
pub const LOCAL_PART_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || LOCAL_PART_SYMBOLS.contains(c)
}

fn is_valid_local_part(local: &str) -> bool {
    // Splitting on '.' turns leading, trailing and doubled dots into empty
    // atoms, so one emptiness check covers all three rules.
    (1..=MAX_LOCAL_LEN).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_valid_domain(domain: &str) -> bool {
    // A second '@' lands here, and is refused because it is not a label char.
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|label| is_valid_label(label)) {
        return false;
    }
    // A bare IPv4 address would otherwise pass as four numeric labels;
    // real TLDs are never numeric and never one letter.
    labels
        .last()
        .is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()))
}

fn is_valid_label(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dotted domain of exactly `len` characters made of 63-char labels.
    fn domain_of_len(len: usize) -> String {
        let mut labels = Vec::new();
        let mut remaining = len - 4; // reserve ".com"
        while remaining > 0 {
            let take = remaining.min(63);
            labels.push("d".repeat(take));
            // Each further label needs a separating dot.
            remaining -= take;
            remaining = remaining.saturating_sub(1);
        }
        let domain = format!("{}.com", labels.join("."));
        assert_eq!(domain.len(), len, "helper must build the exact length");
        domain
    }

    #[test]
    fn accepts_and_normalises_ordinary_addresses() {
        let email = Email::parse("  Jane.Doe+CRM@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "jane.doe+crm@example.com");
        assert_eq!(email.local_part(), "jane.doe+crm");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.to_string(), "jane.doe+crm@example.com");
        assert_eq!(email.as_ref(), "jane.doe+crm@example.com");
    }

    #[test]
    fn match_keys_ignore_tags_and_gmail_dots() {
        let key = |s: &str| Email::parse(s).unwrap().match_key();
        assert_eq!(key("Jane.Doe+shop@gmail.com"), "janedoe@gmail.com");
        assert_eq!(key("janedoe@googlemail.com"), "janedoe@gmail.com");
        assert_eq!(key("jane.doe+x@example.com"), "jane.doe@example.com");
        assert_ne!(key("jane.doe@example.com"), key("janedoe@example.com"));
    }

    #[test]
    fn accepts_all_atext_characters_and_subdomains() {
        for ok in [
            "!#$%&'*+/=?^_`{|}~-@example.com",
            "a@b.co",
            "user@mail.sub-domain.example.org",
            "x@123.example.de",
            "o'brien@example.ie",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "plainaddress",
            "@example.com",
            "user@",
            "a@b@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@localhost",
            "user@example.c",
            "user@example.123",
            "user@192.168.0.1",
            "user@-example.com",
            "user@example-.com",
            "user@exa_mple.com",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "\"quoted\"@example.com",
            "us er@example.com",
            "user@exa mple.com",
            "user(comment)@example.com",
            "jürgen@example.de",
            "user@bücher.de",
            "user@[127.0.0.1]",
        ] {
            assert_eq!(Email::parse(bad), Err(INVALID.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(Email::parse("   "), Err("must not be empty".to_owned()));
    }

    #[test]
    fn local_part_length_boundary() {
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(65))),
            Err(INVALID.to_owned())
        );
    }

    #[test]
    fn label_length_boundary() {
        assert!(Email::parse(&format!("a@{}.com", "b".repeat(63))).is_ok());
        assert!(Email::parse(&format!("a@{}.com", "b".repeat(64))).is_err());
    }

    #[test]
    fn total_length_boundary() {
        let ok = format!("{}@{}", "a".repeat(64), domain_of_len(189));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());

        let too_long = format!("{}@{}", "a".repeat(64), domain_of_len(190));
        assert_eq!(too_long.len(), 255);
        assert_eq!(
            Email::parse(&too_long),
            Err("must be at most 254 characters long".to_owned())
        );
    }

    #[test]
    fn surrounding_whitespace_does_not_count_towards_length() {
        let ok = format!("  {}@{}  ", "a".repeat(64), domain_of_len(189));
        assert!(Email::parse(&ok).is_ok());
    }

    #[test]
    fn serde_round_trip_normalises_and_rejects_invalid() {
        let email: Email = serde_json::from_str("\"Jane@Example.com\"").unwrap();
        assert_eq!(email.as_str(), "jane@example.com");
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"jane@example.com\""
        );

        let err = serde_json::from_str::<Email>("\"not-an-email\"").unwrap_err();
        assert!(err.to_string().contains(INVALID), "{err}");
        assert!(serde_json::from_str::<Email>("42").is_err());
    }

    #[test]
    fn conversions() {
        let email = Email::try_from("A@B.io".to_owned()).unwrap();
        assert_eq!(String::from(email), "a@b.io");
        assert!(Email::try_from(String::new()).is_err());
    }
}
