//! Money as an integer number of minor units with its ISO 4217 currency. Floating point never
//! touches an amount.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three ASCII upper-case letters (`EUR`, `GBP`, `USD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// ISO 4217's code for "no currency", a placeholder before a real one is chosen.
    pub const NONE: Currency = Currency(*b"XXX");

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.trim().as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_alphabetic) => Ok(Self([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err("must be a three-letter ISO 4217 currency code".into()),
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units (cents, pence) of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units; never negative for prices.
    pub amount: i64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Currency {
    /// ISO 4217 minor-unit digits: most currencies have two (`JPY` none, `KWD` three).
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl Money {
    /// The amount in major units, as a form shows and takes it: `1250` `EUR` → `12.50`;
    /// `1500` `JPY` → `1500`; `1250` `KWD` → `1.250`.
    pub fn major_units(&self) -> String {
        let digits = self.currency.minor_digits();
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        if digits == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(digits);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }

    /// An amount typed in major units (`12.50`, `12,5`, `12`, `.5`) in `currency`; `None` for
    /// anything else: negative, more decimals than the currency has, not a number, too large.
    pub fn parse_major(text: &str, currency: Currency) -> Option<Money> {
        let digits = currency.minor_digits();
        let text = text.trim();
        let (whole, fraction) = text.split_once(['.', ',']).unwrap_or((text, ""));
        if (whole.is_empty() && fraction.is_empty())
            || fraction.len() > digits as usize
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<width$}", width = digits as usize)
                .parse()
                .ok()?
        };
        let amount = whole
            .checked_mul(10i64.checked_pow(digits)?)?
            .checked_add(fraction)?;
        Some(Money { amount, currency })
    }
}

impl fmt::Display for Money {
    /// `1250` `EUR` → `12.50 EUR`; `1500` `JPY` → `1500 JPY`; `1250` `KWD` → `1.250 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_units(), self.currency)
    }
}

/// The largest price we accept for one seat, in minor units: a typo guard, not a business rule.
pub const MAX_SEAT_PRICE: i64 = 10_000_000;

/// Checks that `amount` is a sensible seat price in minor units.
pub fn parse_price(amount: i64) -> Result<i64, String> {
    if amount < 0 {
        Err("must not be negative".into())
    } else if amount > MAX_SEAT_PRICE {
        Err(format!("must be at most {MAX_SEAT_PRICE} minor units"))
    } else {
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_normalised_and_checked() {
        assert_eq!("eur".parse::<Currency>().unwrap().as_str(), "EUR");
        assert!("EU".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
        assert!("E1R".parse::<Currency>().is_err());
        assert!("€UR".parse::<Currency>().is_err());
    }

    #[test]
    fn money_is_shown_in_its_currency_s_minor_units() {
        let money = |amount, code: &str| Money {
            amount,
            currency: code.parse().unwrap(),
        };
        assert_eq!(money(1250, "EUR").to_string(), "12.50 EUR");
        assert_eq!(money(5, "GBP").to_string(), "0.05 GBP");
        assert_eq!(money(-1250, "EUR").to_string(), "-12.50 EUR");
        assert_eq!(money(1500, "JPY").to_string(), "1500 JPY");
        assert_eq!(money(1250, "KWD").to_string(), "1.250 KWD");
    }

    #[test]
    fn prices_are_bounded() {
        assert_eq!(parse_price(0), Ok(0));
        assert!(parse_price(-1).is_err());
        assert!(parse_price(MAX_SEAT_PRICE + 1).is_err());
    }

    #[test]
    fn amounts_are_typed_and_shown_in_major_units() {
        let eur: Currency = "EUR".parse().unwrap_or(Currency::NONE);
        let jpy: Currency = "JPY".parse().unwrap_or(Currency::NONE);
        let typed = |text: &str, currency| Money::parse_major(text, currency).map(|m| m.amount);
        assert_eq!(typed("12.50", eur), Some(1250));
        assert_eq!(typed("12,5", eur), Some(1250));
        assert_eq!(typed(" 3 ", eur), Some(300));
        assert_eq!(typed("12", eur), Some(1200));
        assert_eq!(typed(".5", eur), Some(50));
        assert_eq!(typed("1500", jpy), Some(1500));
        assert_eq!(typed("15.5", jpy), None);
        for bad in [
            "",
            ".",
            "-1",
            "1.234",
            "12.505",
            "1e3",
            "12.5.0",
            "abc",
            "99999999999999999999",
        ] {
            assert_eq!(typed(bad, eur), None, "{bad:?}");
        }
        let shown = |amount, currency| Money { amount, currency }.major_units();
        assert_eq!(shown(1250, eur), "12.50");
        assert_eq!(shown(5, eur), "0.05");
        assert_eq!(shown(500, jpy), "500");
        for amount in [0, 1, 99, 1250, 123_456] {
            assert_eq!(typed(&shown(amount, eur), eur), Some(amount));
        }
    }
}
