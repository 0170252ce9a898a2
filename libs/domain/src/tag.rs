//! Customer tag value type and the rules for a customer's set of tags, used for segmentation.

use std::collections::HashSet;
/// Most tags one customer may carry; keeps documents and segment
/// indexes bounded.
pub const MAX_TAGS: usize = 50;

/// A lower-cased label such as `vip`, `plan:pro` or `churn risk`.
///
/// Tags are compared exactly by segmentation rules, so casing and stray
/// whitespace are normalised away at the edge rather than in every query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

crate::value::string_value!(Tag);

const MAX_CHARS: usize = 64;

impl Tag {
    /// Longest tag accepted, counted in Unicode scalar values.
    pub const MAX_CHARS: usize = MAX_CHARS;

    /// Validates and normalises `input` (trimmed, lower-cased).
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let too_long = || format!("must be at most {MAX_CHARS} characters long");
        // Lower-casing never shortens a string, so this early check is sound
        // and spares lower-casing arbitrarily large input.
        if trimmed.chars().count() > MAX_CHARS {
            return Err(too_long());
        }
        // Characters are checked before lower-casing because some letters
        // (e.g. 'İ') lower-case to a letter plus a combining mark, which is
        // fine to store but is not itself a letter.
        if !trimmed.chars().all(is_allowed) {
            return Err(
                "must contain only letters, digits, '-', '_', ':', '.' or spaces".to_owned(),
            );
        }
        // Double spaces look identical to single ones in most UIs, so two
        // tags differing only by them would be indistinguishable.
        if trimmed.contains("  ") {
            return Err("must not contain consecutive spaces".to_owned());
        }
        let lowered = trimmed.to_lowercase();
        if lowered.chars().count() > MAX_CHARS {
            return Err(too_long());
        }
        Ok(Self(lowered))
    }
}

fn is_allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' ')
}

/// Parses a customer's tags, dropping duplicates (after normalisation,
/// keeping the first occurrence's position) and enforcing [`MAX_TAGS`].
///
/// Errors name the offending tag so an API user can find it in a long list.
pub fn normalize_tags(raw: &[String]) -> Result<Vec<Tag>, String> {
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    for input in raw {
        let tag = Tag::parse(input).map_err(|e| format!("tag {input:?} {e}"))?;
        if seen.insert(tag.0.clone()) {
            tags.push(tag);
            // Stop early: a huge list must not cost a full parse to refuse.
            if tags.len() > MAX_TAGS {
                return Err(format!("at most {MAX_TAGS} tags are allowed"));
            }
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    const BAD_CHARS: &str = "must contain only letters, digits, '-', '_', ':', '.' or spaces";

    #[test]
    fn normalises_case_and_whitespace() {
        let tag = Tag::parse("  VIP Customer ").unwrap();
        assert_eq!(tag.as_str(), "vip customer");
        assert_eq!(tag.to_string(), "vip customer");
        assert_eq!(tag.as_ref(), "vip customer");
    }

    #[test]
    fn accepts_allowed_characters_in_any_script() {
        for (input, expected) in [
            ("plan:pro", "plan:pro"),
            ("source.web_form-2", "source.web_form-2"),
            ("Größe", "größe"),
            ("客户", "客户"),
            ("ΑΘΗΝΑ", "αθηνα"),
            ("İstanbul", "i\u{307}stanbul"),
            ("٣", "٣"),
        ] {
            assert_eq!(Tag::parse(input).unwrap().as_str(), expected, "{input:?}");
        }
    }

    #[test]
    fn rejects_disallowed_characters() {
        for bad in ["x y!", "a/b", "#vip", "a\tb", "emoji😀", "a,b", "a\u{0}b"] {
            assert_eq!(Tag::parse(bad), Err(BAD_CHARS.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn rejects_empty_and_consecutive_spaces() {
        assert_eq!(Tag::parse("  "), Err("must not be empty".to_owned()));
        assert_eq!(
            Tag::parse("a  b"),
            Err("must not contain consecutive spaces".to_owned())
        );
    }

    #[test]
    fn length_boundary() {
        assert!(Tag::parse(&"ä".repeat(64)).is_ok());
        assert_eq!(
            Tag::parse(&"ä".repeat(65)),
            Err("must be at most 64 characters long".to_owned())
        );
        // Lower-casing can grow a tag past the limit.
        assert!(Tag::parse(&"İ".repeat(33)).is_err());
        assert!(Tag::parse(&"İ".repeat(32)).is_ok());
    }

    #[test]
    fn normalize_tags_dedupes_keeping_first_order() {
        let tags =
            normalize_tags(&strings(&["VIP", "b2b", " vip ", "Vip", "B2B", "trial"])).unwrap();
        let names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        assert_eq!(names, ["vip", "b2b", "trial"]);
        assert_eq!(normalize_tags(&[]).unwrap(), Vec::<Tag>::new());
    }

    #[test]
    fn normalize_tags_names_the_offending_tag() {
        assert_eq!(
            normalize_tags(&strings(&["ok", "x y!"])),
            Err(format!("tag \"x y!\" {BAD_CHARS}"))
        );
        assert_eq!(
            normalize_tags(&strings(&["ok", ""])),
            Err("tag \"\" must not be empty".to_owned())
        );
    }

    #[test]
    fn normalize_tags_count_boundary() {
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert_eq!(normalize_tags(&fifty).unwrap().len(), MAX_TAGS);

        let mut fifty_one = fifty.clone();
        fifty_one.push("t50".to_owned());
        assert_eq!(
            normalize_tags(&fifty_one),
            Err("at most 50 tags are allowed".to_owned())
        );

        // Duplicates do not count towards the limit.
        let mut with_dupes = fifty.clone();
        with_dupes.extend(fifty.iter().map(|t| t.to_uppercase()));
        assert_eq!(normalize_tags(&with_dupes).unwrap().len(), 50);
    }

    #[test]
    fn serde_round_trip() {
        let tag: Tag = serde_json::from_str("\" Plan:PRO \"").unwrap();
        assert_eq!(serde_json::to_string(&tag).unwrap(), "\"plan:pro\"");
        assert!(serde_json::from_str::<Tag>("\"no!\"").is_err());
    }

    #[test]
    fn conversions() {
        let tag = Tag::try_from("Beta".to_owned()).unwrap();
        assert_eq!(String::from(tag), "beta");
    }
}
