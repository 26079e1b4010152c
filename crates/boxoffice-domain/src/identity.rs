//! Accounts: who someone is (an email, a name, a phone) and what they may do (a role).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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

/// A change to an account that may take its admin role away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// It gets this role.
    Role(Role),
    /// Its personal data is erased, and with it the means to sign in.
    Erasure,
}

/// Refused: the change would leave no account that can sign in as an admin, and with it no one
/// who can give the role back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the last admin can neither give up the role nor be erased")]
pub struct LastAdmin;

/// The rule that an admin must remain. `live_admins` are the accounts that are admins and not
/// erased; `change` to `target` is refused when `target` is the only one of them and would stop
/// being one (demoted or erased). The store reads `live_admins` and applies what this decides in
/// one atomic step, so that two admins demoting each other at once cannot both pass.
pub fn an_admin_remains(
    live_admins: &[UserId],
    target: UserId,
    change: AccountChange,
) -> Result<(), LastAdmin> {
    let stays_admin = change == AccountChange::Role(Role::Admin);
    let others = live_admins.iter().filter(|&&id| id != target).count();
    if live_admins.contains(&target) && !stays_admin && others == 0 {
        Err(LastAdmin)
    } else {
        Ok(())
    }
}

/// Whether a session or single-use token that expires at `expires_at` still works at `now`:
/// up to, not including, its expiry.
pub fn is_live(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < expires_at
}

/// Whether a password-reset token issued to expire at `expires_at`, and used at `used_at` if
/// it was, may reset the password at `now`: once, before it expires.
pub fn reset_token_usable(
    used_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    used_at.is_none() && is_live(expires_at, now)
}

/// An email address, trimmed and lower-cased: two spellings of one address are one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Normalises and checks an address: one `@`, a non-empty local part, a domain with a dot,
    /// no spaces, no invisible characters (see [`is_invisible`]), at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.chars().any(is_invisible) {
            return Err("must not contain invisible or control characters".into());
        }
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

    /// The empty address, which [`Email::parse`] never gives and so no account has: for a
    /// lookup that must cost what the lookup of an unknown account costs.
    pub fn nobody() -> Self {
        Self(String::new())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `c` shows nothing, or only steers how the text around it shows: a control character
/// (general category Cc) or a format character (Cf: zero-width spaces and joiners, the soft
/// hyphen, bidi embeddings, overrides and isolates, the byte-order mark, tag characters, …), or
/// any code point of the Tags block, whose unassigned ones would be invisible too once assigned.
/// An address with one reads exactly like the address without it, so letting it in would let
/// someone register a look-alike of an existing account.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || c.general_category() == GeneralCategory::Format
        || ('\u{e0000}'..='\u{e007f}').contains(&c)
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
    fn a_session_works_until_its_expiry() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        assert!(is_live(at, at - chrono::Duration::milliseconds(1)));
        assert!(!is_live(at, at));
        assert!(!is_live(at, at + chrono::Duration::days(1)));
    }

    #[test]
    fn a_reset_token_works_once_before_its_expiry() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let before = at - chrono::Duration::seconds(1);
        assert!(reset_token_usable(None, at, before));
        assert!(!reset_token_usable(Some(before), at, before));
        assert!(!reset_token_usable(None, at, at));
    }

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

    /// Every invisible character the hardening issue names, and a few more of category Cf.
    const INVISIBLE: &[char] = &[
        '\u{0}',
        '\u{7}',
        '\u{1b}',
        '\u{7f}',
        '\u{80}',
        '\u{9f}',
        '\u{ad}',
        '\u{61c}',
        '\u{180e}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}',
        '\u{202a}',
        '\u{202b}',
        '\u{202c}',
        '\u{202d}',
        '\u{202e}',
        '\u{2060}',
        '\u{2061}',
        '\u{2062}',
        '\u{2063}',
        '\u{2064}',
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}',
        '\u{feff}',
        '\u{fff9}',
        '\u{e0000}',
        '\u{e0001}',
        '\u{e0020}',
        '\u{e0041}',
        '\u{e007f}',
    ];

    #[test]
    fn emails_with_invisible_characters_are_refused() {
        for &c in INVISIBLE {
            assert!(is_invisible(c), "U+{:04X}", c as u32);
            for raw in [
                format!("{c}ann@example.com"),
                format!("an{c}n@example.com"),
                format!("ann{c}@example.com"),
                format!("ann@exa{c}mple.com"),
                format!("ann@example.com{c}"),
            ] {
                assert!(Email::parse(&raw).is_err(), "U+{:04X} in {raw:?}", c as u32);
            }
        }
        // Visible letters of any script are still welcome.
        for good in ["jörg@bücher.de", "ρωμαίος@παράδειγμα.ελ", "李@例子.中国"]
        {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
    }

    proptest::proptest! {
        /// Wherever an invisible character goes in an address that parses, the address no
        /// longer parses (or, for white space at either end, trims back to the same address):
        /// no look-alike of an account can be registered.
        #[test]
        fn an_invisible_character_anywhere_is_refused(
            local in "[a-z0-9._+-]{1,20}",
            domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}",
            c in proptest::prop_oneof![
                proptest::sample::select(INVISIBLE),
                proptest::char::range('\u{e0000}', '\u{e007f}'),
                proptest::char::range('\u{200b}', '\u{200f}'),
                proptest::char::range('\u{2060}', '\u{2064}'),
                proptest::char::range('\u{0}', '\u{1f}'),
            ],
            at in 0usize..64,
        ) {
            let clean = format!("{local}@{domain}");
            let parsed = Email::parse(&clean);
            proptest::prop_assert!(parsed.is_ok(), "{clean}");
            let mut chars: Vec<char> = clean.chars().collect();
            chars.insert(at % (chars.len() + 1), c);
            let dirty: String = chars.into_iter().collect();
            match Email::parse(&dirty) {
                Err(_) => {}
                Ok(same) => proptest::prop_assert!(
                    Ok(&same) == parsed.as_ref() && c.is_whitespace(),
                    "{dirty:?} parsed as {same:?}"
                ),
            }
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
    fn the_last_admin_neither_steps_down_nor_is_erased() {
        let (ann, bob, cat) = (UserId::generate(), UserId::generate(), UserId::generate());
        let demote = AccountChange::Role(Role::Staff);
        assert_eq!(an_admin_remains(&[ann], ann, demote), Err(LastAdmin));
        assert_eq!(
            an_admin_remains(&[ann], ann, AccountChange::Erasure),
            Err(LastAdmin)
        );
        assert_eq!(
            an_admin_remains(&[ann], ann, AccountChange::Role(Role::Admin)),
            Ok(())
        );
        assert_eq!(an_admin_remains(&[ann, bob], ann, demote), Ok(()));
        assert_eq!(
            an_admin_remains(&[ann, bob], bob, AccountChange::Erasure),
            Ok(())
        );
        // Accounts that are not admins come and go as they like, even with no admin at all.
        assert_eq!(
            an_admin_remains(&[ann], cat, AccountChange::Erasure),
            Ok(())
        );
        assert_eq!(an_admin_remains(&[], cat, demote), Ok(()));
        assert_eq!(
            an_admin_remains(&[], cat, AccountChange::Role(Role::Admin)),
            Ok(())
        );
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
