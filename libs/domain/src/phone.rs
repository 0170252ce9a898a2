//! Phone number value type, stored in E.164 so the same number is always spelled one way.

/// A phone number in E.164 form: `+` followed by 8 to 15 digits.
///
/// Only numbers written with an international prefix are accepted:
/// without one we would have to guess the country, and a wrong guess
/// silently merges or splits customers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

crate::value::string_value!(Phone);

const MIN_DIGITS: usize = 8;
/// E.164 caps a number at 15 digits including the country code.
const MAX_DIGITS: usize = 15;

const NOT_INTERNATIONAL: &str = "must be in international format, e.g. +14155550123";

impl Phone {
    /// Validates `input` and normalises it to E.164.
    pub fn parse(input: &str) -> Result<Self, String> {
        // Visual separators people type or paste; NBSP and friends arrive
        // from spreadsheets, hence any Unicode whitespace.
        let compact: String = input
            .chars()
            .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '.')))
            .collect();
        if compact.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let rest = compact
            .strip_prefix('+')
            .or_else(|| compact.strip_prefix("00"))
            .ok_or(NOT_INTERNATIONAL)?;
        // "+44 (0)20 ..." is a common UK/European way of showing the domestic
        // trunk prefix; that 0 is not dialled internationally, so it must go
        // before the remaining parentheses are dropped as plain decoration.
        let digits: String = rest
            .replace("(0)", "")
            .chars()
            .filter(|c| !matches!(c, '(' | ')'))
            .collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(NOT_INTERNATIONAL.to_owned());
        }
        if digits.starts_with('0') {
            // No country calling code begins with 0, so this is a domestic
            // number behind a stray prefix, e.g. "+0049..." or "000...".
            return Err(NOT_INTERNATIONAL.to_owned());
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(format!(
                "must contain {MIN_DIGITS} to {MAX_DIGITS} digits including the country code"
            ));
        }
        Ok(Self(format!("+{digits}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        Phone::parse(input)
            .unwrap_or_else(|e| panic!("{input:?} rejected: {e}"))
            .to_string()
    }

    const DIGIT_COUNT: &str = "must contain 8 to 15 digits including the country code";

    #[test]
    fn normalises_common_spellings() {
        assert_eq!(ok("+14155550123"), "+14155550123");
        assert_eq!(ok(" +1 415 555 0123 "), "+14155550123");
        assert_eq!(ok("+1 (415) 555-0123"), "+14155550123");
        assert_eq!(ok("+1.415.555.0123"), "+14155550123");
        assert_eq!(ok("0044 20 7946 0958"), "+442079460958");
        assert_eq!(ok("+49\u{a0}30\u{a0}123456"), "+4930123456");
    }

    #[test]
    fn drops_trunk_marker() {
        assert_eq!(ok("+44 (0)20 7946 0958"), "+442079460958");
        assert_eq!(ok("+44(0)2079460958"), "+442079460958");
        assert_eq!(ok("0049 (0)30 123456"), "+4930123456");
    }

    #[test]
    fn rejects_numbers_without_international_prefix() {
        for bad in [
            "4155550123",
            "(415) 555-0123",
            "020 7946 0958",
            "0 44 20 7946 0958",
            "+1 415 CALL NOW",
            "+1-415-555-0123 ext 5",
            "+1/415/555/0123",
            "++14155550123",
            "+1+4155550123",
            "tel:+14155550123",
            "+١٤١٥٥٥٥٠١٢٣",
        ] {
            assert_eq!(
                Phone::parse(bad),
                Err(NOT_INTERNATIONAL.to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_leading_zero_after_prefix() {
        assert_eq!(
            Phone::parse("+0441234567"),
            Err(NOT_INTERNATIONAL.to_owned())
        );
        assert_eq!(
            Phone::parse("000441234567"),
            Err(NOT_INTERNATIONAL.to_owned())
        );
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(Phone::parse(" - . "), Err("must not be empty".to_owned()));
        assert_eq!(Phone::parse("+"), Err(DIGIT_COUNT.to_owned()));
    }

    #[test]
    fn digit_count_boundaries() {
        assert_eq!(Phone::parse("+1234567"), Err(DIGIT_COUNT.to_owned()));
        assert_eq!(ok("+12345678"), "+12345678");
        assert_eq!(ok("+123456789012345"), "+123456789012345");
        assert_eq!(
            Phone::parse("+1234567890123456"),
            Err(DIGIT_COUNT.to_owned())
        );
        // The "00" prefix is not counted as digits of the number.
        assert_eq!(ok("00123456789012345"), "+123456789012345");
        // The trunk marker is not counted either.
        assert_eq!(Phone::parse("+1 (0)234567"), Err(DIGIT_COUNT.to_owned()));
    }

    #[test]
    fn serde_round_trip() {
        let phone: Phone = serde_json::from_str("\"+44 (0)20 7946 0958\"").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+442079460958\"");
        assert!(serde_json::from_str::<Phone>("\"4155550123\"").is_err());
    }

    #[test]
    fn conversions() {
        let phone = Phone::try_from("+1 415 555 0123".to_owned()).unwrap();
        assert_eq!(phone.as_ref(), "+14155550123");
        assert_eq!(String::from(phone), "+14155550123");
    }
}
