//! What every validated string value type shares: `as_str`, the string conversions serde
//! uses (`try_from = "String"`, so deserializing validates), `Display` and `AsRef<str>`.

/// Implements the shared conversions for a `struct $name(String)` with a
/// `parse(&str) -> Result<Self, String>` constructor.
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use string_value;

/// `input` trimmed and upper-cased, if it is one of `codes` (sorted); else `expected`.
pub(crate) fn listed_code(input: &str, codes: &[&str], expected: &str) -> Result<String, String> {
    let code = input.trim().to_ascii_uppercase();
    match codes.binary_search(&code.as_str()) {
        Ok(_) => Ok(code),
        Err(_) => Err(expected.to_owned()),
    }
}
