//! Country value type: an ISO 3166-1 alpha-2 code for addresses and customer locale.

/// An officially assigned ISO 3166-1 alpha-2 code, upper-case, e.g. `DE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

crate::value::string_value!(CountryCode);

/// All 249 officially assigned alpha-2 codes.
///
/// Reserved codes such as `UK`, `EU` or `XK` are left out on purpose:
/// they are not countries in the standard, and accepting them would let
/// one country be stored under two codes (`UK` and `GB`).
///
/// Must stay sorted: lookups use binary search.
const CODES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
    "AZ", //
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR",
    "BS", //
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM",
    "CN", //
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC",
    "EE", //
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE",
    "GF", //
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", //
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE",
    "JM", //
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB",
    "LC", //
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH",
    "MK", //
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
    "NA", //
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF",
    "PG", //
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU",
    "RW", //
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR",
    "SS", //
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN",
    "TO", //
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG",
    "VI", //
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

impl CountryCode {
    /// Validates `input` (trimmed, upper-cased) against the code list.
    pub fn parse(input: &str) -> Result<Self, String> {
        let expected = "must be an ISO 3166-1 alpha-2 country code, e.g. DE";
        crate::value::listed_code(input, CODES, expected).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERR: &str = "must be an ISO 3166-1 alpha-2 country code, e.g. DE";

    #[test]
    fn code_list_is_sorted_unique_and_complete() {
        assert!(
            CODES.windows(2).all(|w| w[0] < w[1]),
            "CODES must be sorted and unique"
        );
        assert!(
            CODES
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert_eq!(CODES.len(), 249);
    }

    #[test]
    fn accepts_and_normalises_codes() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert_eq!(CountryCode::parse(" gB\t").unwrap().to_string(), "GB");
        for ok in [
            "AD", "ZW", "US", "AX", "BQ", "CW", "SS", "SX", "PS", "TW", "AQ", "UM",
        ] {
            assert_eq!(CountryCode::parse(ok).unwrap().as_ref(), ok);
        }
    }

    #[test]
    fn rejects_unassigned_reserved_and_malformed_codes() {
        for bad in [
            "", " ", "D", "DEU", "UK", "EU", "XK", "AN", "YU", "CS", "ZZ", "AA", "D1", "ÄD", "D E",
        ] {
            assert_eq!(CountryCode::parse(bad), Err(ERR.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let country: CountryCode = serde_json::from_str("\"fr\"").unwrap();
        assert_eq!(serde_json::to_string(&country).unwrap(), "\"FR\"");
        assert!(serde_json::from_str::<CountryCode>("\"UK\"").is_err());
    }

    #[test]
    fn conversions() {
        let country = CountryCode::try_from("jp".to_owned()).unwrap();
        assert_eq!(String::from(country), "JP");
    }
}
