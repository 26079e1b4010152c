//! Accounts: who someone is (an email, a name, a phone) and what they may do (a role).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::UserId;
use crate::validation::{ValidationErrors, Validator, required_text};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password accepted: long enough for any passphrase, short enough that hashing it
/// is not a denial-of-service lever.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The longest display name, in characters.
pub const NAME_MAX: usize = 100;
/// The longest email address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// The longest phone number as typed.
pub const PHONE_MAX: usize = 32;

/// What an account may do. Ordered: every role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Buys tickets, manages their own data.
    Customer,
    /// Runs the catalogue, halls and schedule; checks tickets in.
    Staff,
    /// Everything staff may, plus refunds and role changes.
    Admin,
}

impl Role {
    /// The name used in JSON, tokens and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes everything `required` may do.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Role::Customer),
            "staff" => Ok(Role::Staff),
            "admin" => Ok(Role::Admin),
            _ => Err("must be one of customer, staff, admin".into()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An email address, trimmed and lower-cased: two spellings of one address are one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises and checks an address: one `@`, a non-empty local part, a domain with a dot,
    /// no spaces, at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let valid = email.chars().count() <= EMAIL_MAX
            && !email.chars().any(char::is_whitespace)
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(email))
        } else {
            Err("must be an email address".into())
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the password policy: 10 to 1024 characters. Nothing else is imposed: length is what
/// makes a password strong.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if n > MAX_PASSWORD_CHARS {
        Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        Ok(())
    }
}

/// Checks a display name.
pub fn parse_name(name: &str) -> Result<String, String> {
    required_text(name, NAME_MAX)
}

/// Checks a phone number: digits with an optional leading `+` and separators, 5 to 32 characters.
pub fn parse_phone(phone: &str) -> Result<String, String> {
    let phone = phone.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -()".contains(c) || (c == '+' && i == 0));
    if allowed && digits >= 5 && phone.len() <= PHONE_MAX {
        Ok(phone.to_owned())
    } else {
        Err("must be a phone number such as +44 20 7946 0958".into())
    }
}

/// An account with its personal data. After erasure the personal data is gone: only the id,
/// the role and the dates remain, so that bookings and payments stay intact for accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// What it may do.
    pub role: Role,
    /// Its personal data; `None` once erased.
    pub profile: Option<Profile>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Personal data, kept apart from business records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Sign-in and contact address.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Optional phone number.
    pub phone: Option<String>,
}

/// A validated registration.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The address.
    pub email: Email,
    /// The name.
    pub name: String,
}

impl Registration {
    /// Validates a registration; the password is checked here and hashed by the caller.
    pub fn parse(email: &str, password: &str, name: &str) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let email = v.check("email", Email::parse(email));
        v.check("password", check_password(password));
        let name = v.check("name", parse_name(name));
        v.finish()?;
        match (email, name) {
            (Some(email), Some(name)) => Ok(Self { email, name }),
            _ => Err(ValidationErrors::single("body", "invalid registration")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@.com",
            "ann@example.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert!(check_password("123456789").is_err());
        assert!(check_password("1234567890").is_ok());
        assert!(
            check_password("ääääääääää").is_ok(),
            "characters, not bytes"
        );
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.includes(Role::Staff));
        assert!(Role::Staff.includes(Role::Staff));
        assert!(!Role::Customer.includes(Role::Staff));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn phones_are_checked() {
        assert!(parse_phone("+44 20 7946 0958").is_ok());
        assert!(parse_phone("030-1234567").is_ok());
        assert!(parse_phone("12+34567").is_err());
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("123").is_err());
    }

    #[test]
    fn a_registration_reports_every_bad_field() {
        let errors = Registration::parse("nope", "short", " ").unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name"]);
    }
}
