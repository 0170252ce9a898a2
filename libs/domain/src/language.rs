//! Language value type: a BCP 47 tag for a customer's preferred language in messages and UI.

/// A well-formed BCP 47 (RFC 5646) language tag in canonical case,
/// e.g. `en`, `pt-BR`, `zh-Hant-TW`.
///
/// Only well-formedness is checked, not registry validity: the IANA
/// subtag registry changes often and embedding it would go stale, while a
/// syntactically sound tag is all downstream locale matching needs.
/// Grandfathered irregular tags (`i-klingon`, `en-GB-oed`) are refused;
/// they are deprecated and all have modern replacements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

crate::value::string_value!(Language);

/// RFC 5646 sets no upper bound; this only keeps junk out of storage.
const MAX_LEN: usize = 64;

const INVALID: &str = "must be a BCP 47 language tag, e.g. en or pt-BR";

impl Language {
    /// Longest tag accepted, in characters.
    pub const MAX_CHARS: usize = MAX_LEN;

    /// Validates `input` and normalises separators (`_` → `-`) and case.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters long"));
        }
        // POSIX and Java locales use '_' ("en_US"); accepting it saves
        // clients a conversion they routinely forget.
        let subtags: Vec<&str> = trimmed.split(['-', '_']).collect();
        // Every subtag in every production is 1..=8 ASCII alphanumerics,
        // so checking that once keeps the grammar below about shape only.
        let well_formed = subtags
            .iter()
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !well_formed {
            return Err(INVALID.to_owned());
        }
        canonicalize(&subtags)
            .map(|tag| Self(tag.join("-")))
            .ok_or_else(|| INVALID.to_owned())
    }
}

/// Walks the RFC 5646 `langtag` / `privateuse` productions, returning the
/// subtags in canonical case, or `None` if the sequence is not well formed.
fn canonicalize(subtags: &[&str]) -> Option<Vec<String>> {
    let mut rest = subtags;
    let mut out = Vec::with_capacity(subtags.len());

    if next_if(&mut rest, is_private_use_singleton).is_none() {
        let language = next_if(&mut rest, |s| is_alpha(s) && (2..=8).contains(&s.len()))?;
        out.push(language.to_ascii_lowercase());
        // Extended language subtags only follow 2-3 letter primary languages.
        if language.len() <= 3 {
            for _ in 0..3 {
                match next_if(&mut rest, |s| is_alpha(s) && s.len() == 3) {
                    Some(extlang) => out.push(extlang.to_ascii_lowercase()),
                    None => break,
                }
            }
        }
        if let Some(script) = next_if(&mut rest, |s| is_alpha(s) && s.len() == 4) {
            out.push(title_case(script));
        }
        if let Some(region) = next_if(&mut rest, |s| {
            (is_alpha(s) && s.len() == 2) || (is_digit(s) && s.len() == 3)
        }) {
            out.push(region.to_ascii_uppercase());
        }

        let mut variants: Vec<String> = Vec::new();
        while let Some(variant) = next_if(&mut rest, is_variant) {
            let variant = variant.to_ascii_lowercase();
            // RFC 5646 §2.2.5: a variant must not repeat.
            if variants.contains(&variant) {
                return None;
            }
            variants.push(variant.clone());
            out.push(variant);
        }

        let mut singletons: Vec<String> = Vec::new();
        while let Some(singleton) =
            next_if(&mut rest, |s| s.len() == 1 && !is_private_use_singleton(s))
        {
            let singleton = singleton.to_ascii_lowercase();
            // RFC 5646 §2.2.6: each extension singleton appears once.
            if singletons.contains(&singleton) {
                return None;
            }
            singletons.push(singleton.clone());
            out.push(singleton);
            let before = out.len();
            while let Some(ext) = next_if(&mut rest, |s| s.len() >= 2) {
                out.push(ext.to_ascii_lowercase());
            }
            if out.len() == before {
                return None;
            }
        }

        if next_if(&mut rest, is_private_use_singleton).is_none() {
            return rest.is_empty().then_some(out);
        }
    }

    // Private use: "x" then one or more subtags of any (already checked) shape.
    out.push("x".to_owned());
    if rest.is_empty() {
        return None;
    }
    out.extend(rest.iter().map(|s| s.to_ascii_lowercase()));
    Some(out)
}

/// Consumes and returns the next subtag if it satisfies `pred`.
fn next_if<'a>(rest: &mut &[&'a str], pred: impl Fn(&str) -> bool) -> Option<&'a str> {
    let (first, tail) = rest.split_first()?;
    if !pred(first) {
        return None;
    }
    *rest = tail;
    Some(first)
}

fn is_alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_private_use_singleton(s: &str) -> bool {
    s.eq_ignore_ascii_case("x")
}

fn is_variant(s: &str) -> bool {
    (5..=8).contains(&s.len()) || (s.len() == 4 && s.starts_with(|c: char| c.is_ascii_digit()))
}

fn title_case(s: &str) -> String {
    let mut out = s.to_ascii_lowercase();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        Language::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} rejected: {e}"))
            .to_string()
    }

    #[test]
    fn accepts_and_canonicalises_case_and_separators() {
        for (input, expected) in [
            ("en", "en"),
            ("EN_us", "en-US"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("pt-br", "pt-BR"),
            (" de-CH ", "de-CH"),
            ("es-419", "es-419"),
            ("SR-LATN-rs", "sr-Latn-RS"),
            ("yue", "yue"),
        ] {
            assert_eq!(ok(input), expected, "{input:?}");
        }
    }

    #[test]
    fn accepts_every_production() {
        for (input, expected) in [
            ("zh-yue-HK", "zh-yue-HK"),
            ("zh-cmn-Hans-CN", "zh-cmn-Hans-CN"),
            ("ar-aao-bbb-ccc", "ar-aao-bbb-ccc"),
            ("abcd", "abcd"),
            ("abcdefgh", "abcdefgh"),
            ("de-CH-1901", "de-CH-1901"),
            ("sl-ROZAJ-biske", "sl-rozaj-biske"),
            ("hy-Latn-IT-arevela", "hy-Latn-IT-arevela"),
            ("en-US-u-CA-Gregory", "en-US-u-ca-gregory"),
            ("en-a-bbb-b-ccc-x-a-ccc", "en-a-bbb-b-ccc-x-a-ccc"),
            ("en-US-x-Twain", "en-US-x-twain"),
            ("X-Private-Use", "x-private-use"),
            ("x-a", "x-a"),
            ("qaa-Qaaa-QM-x-southern", "qaa-Qaaa-QM-x-southern"),
            ("en-x-a-a", "en-x-a-a"),
        ] {
            assert_eq!(ok(input), expected, "{input:?}");
        }
    }

    #[test]
    fn rejects_malformed_tags() {
        for bad in [
            "",
            "  ",
            "e",
            "123",
            "en-",
            "-en",
            "en--US",
            "en US",
            "én",
            "en-abcdefghi",
            "ar-aao-bbb-ccc-ddd",
            "de-419-DE",
            "zh-Hant-Hans",
            "en-US-GB",
            "en-a",
            "en-a-x-foo",
            "en-a-b-cc",
            "en-x",
            "x",
            "i-klingon",
            "en-GB-oed",
            "a1-US",
            "en-12",
            "1234",
        ] {
            assert_eq!(Language::parse(bad), Err(INVALID.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn rejects_duplicate_variants_and_singletons() {
        assert!(Language::parse("de-DE-1901-1901").is_err());
        assert!(Language::parse("sl-rozaj-ROZAJ").is_err());
        assert!(Language::parse("en-a-bb-A-cc").is_err());
        // Repeats inside private use are not restricted by RFC 5646.
        assert_eq!(ok("en-x-aa-aa"), "en-x-aa-aa");
    }

    #[test]
    fn length_boundary() {
        let max = format!("x{}", "-abcdefgh".repeat(7));
        assert_eq!(max.len(), 64);
        assert_eq!(ok(&max), max);

        let too_long = format!("en-x{}-abcdef", "-abcdefgh".repeat(6));
        assert_eq!(too_long.len(), 65);
        assert_eq!(
            Language::parse(&too_long),
            Err("must be at most 64 characters long".to_owned())
        );
    }

    #[test]
    fn serde_round_trip() {
        let language: Language = serde_json::from_str("\"pt_br\"").unwrap();
        assert_eq!(serde_json::to_string(&language).unwrap(), "\"pt-BR\"");
        assert!(serde_json::from_str::<Language>("\"english language\"").is_err());
    }

    #[test]
    fn conversions() {
        let language = Language::try_from("fr-ca".to_owned()).unwrap();
        assert_eq!(language.as_ref(), "fr-CA");
        assert_eq!(String::from(language), "fr-CA");
    }
}
