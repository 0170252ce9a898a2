//! Person name value type: free-form human text, tidied just enough to display and compare.

/// A person's name (given, family or full), trimmed and with internal
/// whitespace collapsed to single spaces.
///
/// Deliberately permissive about which characters appear: names around
/// the world contain apostrophes, hyphens, digits and every script, and
/// rejecting a real customer's name is worse than storing an odd one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

crate::value::string_value!(PersonName);

impl PersonName {
    /// Longest name accepted, counted in Unicode scalar values.
    pub const MAX_CHARS: usize = 100;

    /// Validates and normalises `input`.
    pub fn parse(input: &str) -> Result<Self, String> {
        // Tabs and line breaks pasted from forms become ordinary spaces;
        // only the non-whitespace control characters below are refused.
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err("must not be empty".to_owned());
        }
        // Control characters are invisible and break CSV exports, terminals
        // and mail headers the name may end up in.
        if collapsed.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        if collapsed.chars().count() > Self::MAX_CHARS {
            return Err(format!(
                "must be at most {} characters long",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(collapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_collapses_whitespace() {
        let name = PersonName::parse("  Mary \t Ann\n  O'Brien-Smith  ").unwrap();
        assert_eq!(name.as_str(), "Mary Ann O'Brien-Smith");
        assert_eq!(name.to_string(), "Mary Ann O'Brien-Smith");
        assert_eq!(name.as_ref(), "Mary Ann O'Brien-Smith");
    }

    #[test]
    fn accepts_names_in_any_script() {
        for ok in [
            "José Álvarez",
            "李小龙",
            "Ærøskøbing",
            "Ngũgĩ wa Thiong'o",
            "X Æ A-12",
        ] {
            assert_eq!(PersonName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_empty_and_blank() {
        for blank in ["", "   ", "\t\n", "\u{3000}"] {
            assert_eq!(
                PersonName::parse(blank),
                Err("must not be empty".to_owned()),
                "{blank:?}"
            );
        }
    }

    #[test]
    fn rejects_control_characters() {
        for bad in [
            "Ann\u{0}",
            "Bob\u{7}by",
            "\u{1b}[31mEve",
            "Zoe\u{7f}",
            "Al\u{9f}",
        ] {
            assert_eq!(
                PersonName::parse(bad),
                Err("must not contain control characters".to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_boundary_counts_chars_not_bytes() {
        let max = "é".repeat(PersonName::MAX_CHARS);
        assert!(max.len() > PersonName::MAX_CHARS);
        assert!(PersonName::parse(&max).is_ok());
        assert_eq!(
            PersonName::parse(&"é".repeat(101)),
            Err("must be at most 100 characters long".to_owned())
        );
    }

    #[test]
    fn length_is_measured_after_normalisation() {
        let padded = format!("   {}   ", "a".repeat(100));
        assert!(PersonName::parse(&padded).is_ok());
        // 50 + 1 space + 49 = 100 once the run of spaces is collapsed.
        let spaced = format!("{}     {}", "a".repeat(50), "b".repeat(49));
        assert_eq!(PersonName::parse(&spaced).unwrap().as_str().len(), 100);
    }

    #[test]
    fn serde_round_trip() {
        let name: PersonName = serde_json::from_str("\" Ada   Lovelace \"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Ada Lovelace\"");
        assert!(serde_json::from_str::<PersonName>("\"  \"").is_err());
    }

    #[test]
    fn conversions() {
        let name = PersonName::try_from("Grace Hopper".to_owned()).unwrap();
        assert_eq!(String::from(name), "Grace Hopper");
    }
}
