//! `Money`: a decimal amount of the currency, held exactly as integer nano-units.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;

/// Nano-units per currency unit: the ledger's resolution.
pub const NANOS: i64 = 1_000_000_000;

/// An amount of money in nano-units (1e-9 of the currency). Sums are exact integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a decimal string is not an acceptable amount.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number")]
    NotANumber,
    #[error("more precise than the ledger's 9 decimal places")]
    TooPrecise,
    #[error("out of range")]
    OutOfRange,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From nano-units.
    pub const fn from_nanos(n: i64) -> Self {
        Self(n)
    }

    /// In nano-units.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Parses a plain decimal string (`"10.00"`, `"-0.5"`): no exponents, no NaN, at most
    /// 9 fractional digits, at most a billion units either way.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let t = s.trim();
        let body = t.strip_prefix('-').unwrap_or(t);
        let well_formed = !body.is_empty()
            && !body.starts_with('.')
            && !body.ends_with('.')
            && body.chars().all(|c| c.is_ascii_digit() || c == '.')
            && body.matches('.').count() <= 1;
        if !well_formed {
            return Err(MoneyError::NotANumber);
        }
        let d = Decimal::from_str(t).map_err(|_| MoneyError::NotANumber)?;
        if d.normalize().scale() > 9 {
            return Err(MoneyError::TooPrecise);
        }
        if d.abs() > Decimal::from(1_000_000_000i64) {
            return Err(MoneyError::OutOfRange);
        }
        let nanos = (d * Decimal::from(NANOS)).trunc();
        i64::try_from(nanos)
            .map(Self)
            .map_err(|_| MoneyError::OutOfRange)
    }

    /// Parses an amount that must be greater than zero (top-ups).
    pub fn parse_positive(s: &str) -> Result<Self, MoneyError> {
        let m = Self::parse(s)?;
        if m.0 <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(m)
    }

    /// Parses an amount that must not be negative (prices).
    pub fn parse_non_negative(s: &str) -> Result<Self, MoneyError> {
        let m = Self::parse(s)?;
        if m.0 < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(m)
    }

    /// As a `Decimal`.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 9).normalize()
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        Self::parse(s)
    }
}

impl fmt::Display for Money {
    /// At least two decimal places, no trailing zeros beyond them: `10.00`, `9.87`, `0.000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = self.to_decimal();
        if d.scale() < 2 {
            d.rescale(2);
        }
        write!(f, "{d}")
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(Money::parse("10.00").unwrap().nanos(), 10 * NANOS);
        assert_eq!(Money::parse("0.000000001").unwrap().nanos(), 1);
        assert_eq!(Money::parse("-0.5").unwrap().nanos(), -NANOS / 2);
        assert_eq!(Money::parse("7").unwrap().nanos(), 7 * NANOS);
    }

    #[test]
    fn rejects_what_is_not_a_plain_amount() {
        for bad in [
            "", "abc", "NaN", "nan", "inf", "1e3", "1.2.3", ".5", "5.", "--1", "+1", " ", "1,00",
        ] {
            assert_eq!(Money::parse(bad), Err(MoneyError::NotANumber), "{bad:?}");
        }
        assert_eq!(Money::parse("0.0000000001"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("1000000001"), Err(MoneyError::OutOfRange));
        assert_eq!(
            Money::parse("99999999999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn trailing_zeros_are_not_precision() {
        assert_eq!(
            Money::parse("1.500000000000").unwrap().nanos(),
            1_500_000_000
        );
    }

    #[test]
    fn positive_and_non_negative_variants_check_the_sign() {
        assert_eq!(Money::parse_positive("0"), Err(MoneyError::NotPositive));
        assert_eq!(Money::parse_positive("-1"), Err(MoneyError::NotPositive));
        assert!(Money::parse_non_negative("0").is_ok());
        assert_eq!(
            Money::parse_non_negative("-0.01"),
            Err(MoneyError::Negative)
        );
    }

    #[test]
    fn displays_with_at_least_two_decimals() {
        assert_eq!(Money::from_nanos(10 * NANOS).to_string(), "10.00");
        assert_eq!(Money::from_nanos(9_870_000_000).to_string(), "9.87");
        assert_eq!(Money::from_nanos(1_000).to_string(), "0.000001");
        assert_eq!(Money::from_nanos(-1).to_string(), "-0.000000001");
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }
}
