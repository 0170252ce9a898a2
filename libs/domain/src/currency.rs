//! Currency value type: an ISO 4217 alphabetic code for monetary amounts such as order totals.

/// An active ISO 4217 alphabetic currency code, upper-case, e.g. `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

crate::value::string_value!(Currency);

/// ISO 4217 List One as published by the maintenance agency (SIX),
/// including 2025's XCG and excluding codes since withdrawn (ANG, BGN,
/// CUC, HRK, SLL, ZWL).
///
/// Of the X-codes only those that denominate real money are kept: the
/// regional currencies (XAF, XCD, XCG, XOF, XPF) and the SDR (XDR), which
/// appears on invoices of international bodies. Precious metals, bond
/// market units, accounting units (XAD, XSU, XUA), the test code XTS and
/// XXX ("no currency") are left out because an amount in them is
/// almost certainly a data-entry error. The non-X fund codes (e.g. CLF,
/// Chile's Unidad de Fomento) stay, as contracts are priced in them.
///
/// Must stay sorted: lookups use binary search.
const CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", //
    "BBD", "BDT", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", //
    "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", //
    "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", //
    "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", //
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", //
    "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", //
    "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", //
    "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", //
    "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", //
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", //
    "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", //
    "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", //
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", //
    "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", //
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XDR", "XOF", //
    "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

impl Currency {
    /// Validates `input` (trimmed, upper-cased) against the code list.
    pub fn parse(input: &str) -> Result<Self, String> {
        let expected = "must be an ISO 4217 currency code, e.g. EUR";
        crate::value::listed_code(input, CODES, expected).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERR: &str = "must be an ISO 4217 currency code, e.g. EUR";

    #[test]
    fn code_list_is_sorted_unique_and_well_formed() {
        assert!(
            CODES.windows(2).all(|w| w[0] < w[1]),
            "CODES must be sorted and unique"
        );
        assert!(
            CODES
                .iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert_eq!(CODES.len(), 165);
    }

    #[test]
    fn accepts_and_normalises_codes() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert_eq!(Currency::parse(" eUr\n").unwrap().to_string(), "EUR");
        for ok in [
            "AED", "ZWG", "JPY", "CHF", "XAF", "XOF", "XCD", "XCG", "XPF", "XDR", "SLE", "VED",
            "CLF",
        ] {
            assert_eq!(Currency::parse(ok).unwrap().as_ref(), ok);
        }
    }

    #[test]
    fn rejects_unknown_withdrawn_and_non_currency_codes() {
        for bad in [
            "", "  ", "US", "USDD", "U$D", "ABC", "EU R", "DEM", "HRK", "ANG", "CUC", "SLL", "ZWL",
            "BGN", "XTS", "XXX", "XAU", "XAG", "XBA", "XSU", "XUA", "XAD", "ÜSD", "€",
        ] {
            assert_eq!(Currency::parse(bad), Err(ERR.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let currency: Currency = serde_json::from_str("\"gbp\"").unwrap();
        assert_eq!(serde_json::to_string(&currency).unwrap(), "\"GBP\"");
        assert!(serde_json::from_str::<Currency>("\"XXX\"").is_err());
    }

    #[test]
    fn conversions() {
        let currency = Currency::try_from("chf".to_owned()).unwrap();
        assert_eq!(String::from(currency), "CHF");
    }
}
