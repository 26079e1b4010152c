//! The identity part of the store: accounts, their personal data, refresh tokens, failed logins
//! and instance-wide settings.

use async_trait::async_trait;
use boxoffice_domain::UserId;
use boxoffice_domain::identity::{
    AccountChange, Email, LastAdmin, Profile, Role, User, an_admin_remains,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Page, PageRequest, StoreError};

/// A newly issued refresh token as stored: only its SHA-256, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshGrant {
    /// Row id.
    pub id: Uuid,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A refresh token and the session it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// Whose it is.
    pub user_id: UserId,
    /// The chain of rotations it belongs to; reuse of any used token revokes the whole chain.
    pub family_id: Uuid,
    /// The token.
    pub grant: RefreshGrant,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now used, and its successor (same family) is stored.
    Rotated(User),
    /// The token had already been used or revoked: a sign that it was stolen. Its whole family
    /// is now revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// A web session as stored: only the SHA-256 of its token, never the token, which lives in the
/// browser's cookie alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSessionRecord {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A password-reset link being issued. The store keeps the hash; the token itself goes only into
/// the private `password_reset.requested` event the mail is written from.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordResetRequest {
    /// The link's token.
    pub token: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PasswordResetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetRequest")
            .field("token", &"***")
            .field("token_hash", &self.token_hash)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Failed logins in a window, by email and by client address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures for the email.
    pub by_email: u32,
    /// The oldest of those.
    pub oldest_by_email: Option<DateTime<Utc>>,
    /// Failures from the client address.
    pub by_client: u32,
    /// The oldest of those.
    pub oldest_by_client: Option<DateTime<Utc>>,
}

/// An account as a role change or an erasure needs to see it, read in the transaction that
/// applies the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    /// The account.
    pub id: UserId,
    /// Its role.
    pub role: Role,
    /// Whether its personal data was erased.
    pub erased: bool,
}

/// The accounts a role change or an erasure of the account `$1` must see: it and every admin
/// that is not erased, as `(id, role, erased)`. PostgreSQL appends its row locks; SQLite's write
/// transaction already excludes every other writer.
pub const ACCOUNTS_AT_STAKE: &str = "SELECT id, role, erased_at IS NOT NULL AS erased FROM users \
     WHERE id = $1 OR (role = 'admin' AND erased_at IS NULL)";

/// The statements of web sessions, the same text on both backends (`$n` placeholders; each
/// adapter binds times in its own encoding).
pub mod web_session_sql {
    /// Stores a session: `$1` token hash, `$2` user, `$3` created, `$4` expires.
    pub const INSERT: &str = "INSERT INTO web_sessions (token_hash, user_id, created_at, \
         expires_at) VALUES ($1, $2, $3, $4)";
    /// The session `$1` with its account as it is now: the columns of a user row
    /// (`id, role, created_at, email, name, phone`) and the session's `expires_at`.
    pub const READ: &str = "SELECT u.id, u.role, u.created_at, p.email, p.name, p.phone, \
         s.expires_at FROM web_sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN profiles p ON p.user_id = u.id WHERE s.token_hash = $1";
    /// Ends the session `$1`.
    pub const DELETE: &str = "DELETE FROM web_sessions WHERE token_hash = $1";
    /// Ends every session of the account `$1`.
    pub const DELETE_OF_USER: &str = "DELETE FROM web_sessions WHERE user_id = $1";
    /// Forgets the sessions that expired before `$1`.
    pub const PURGE: &str = "DELETE FROM web_sessions WHERE expires_at < $1";
}

/// The statements of passwords and their reset tokens, the same text on both backends.
pub mod password_sql {
    /// The live account of the email `$1`.
    pub const ACCOUNT_OF_EMAIL: &str = "SELECT user_id FROM profiles WHERE email = $1";
    /// Stores a reset token: `$1` hash, `$2` user, `$3` created, `$4` expires.
    pub const INSERT_RESET: &str = "INSERT INTO password_resets (token_hash, user_id, \
         created_at, expires_at) VALUES ($1, $2, $3, $4)";
    /// The reset token `$1`: `user_id, expires_at, used_at`. PostgreSQL appends its row lock.
    pub const READ_RESET: &str =
        "SELECT user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1";
    /// Uses up every reset token of the account `$1` not used yet, at `$2`.
    pub const USE_RESETS: &str =
        "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL";
    /// Replaces the password hash of the account `$1` by `$2`; no row for an erased account.
    pub const SET_HASH: &str = "UPDATE credentials SET password_hash = $2 WHERE user_id = $1";
    /// Revokes every refresh token of the account `$1` at `$2`.
    pub const REVOKE_REFRESH_TOKENS: &str =
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
    /// Forgets the reset tokens of the account `$1`.
    pub const DELETE_RESETS: &str = "DELETE FROM password_resets WHERE user_id = $1";
    /// Forgets the reset tokens that expired before `$1`.
    pub const PURGE_RESETS: &str = "DELETE FROM password_resets WHERE expires_at < $1";
}

/// The rows of [`ACCOUNTS_AT_STAKE`] as facts.
pub fn accounts_at_stake(rows: Vec<(Uuid, String, bool)>) -> Result<Vec<AccountFacts>, StoreError> {
    rows.into_iter()
        .map(|(id, role, erased)| {
            Ok(AccountFacts {
                id: UserId(id),
                role: crate::codec::role(&role)?,
                erased,
            })
        })
        .collect()
}

/// Decides `change` to `target` from `accounts`, which an adapter read in the transaction that
/// applies the change, so that no other role change or erasure commits in between: `target`
/// itself and every account that is an admin and not erased. [`StoreError::NotFound`] when
/// `target` is not among them; [`Conflict::LastAdmin`] when [`an_admin_remains`] refuses the
/// change.
///
/// [`Conflict::LastAdmin`]: crate::Conflict::LastAdmin
pub fn decide_account_change(
    accounts: &[AccountFacts],
    target: UserId,
    change: AccountChange,
) -> Result<(), StoreError> {
    if !accounts.iter().any(|a| a.id == target) {
        return Err(StoreError::NotFound);
    }
    let live_admins: Vec<UserId> = accounts
        .iter()
        .filter(|a| a.role == Role::Admin && !a.erased)
        .map(|a| a.id)
        .collect();
    an_admin_remains(&live_admins, target, change)
        .map_err(|LastAdmin| StoreError::Conflict(crate::Conflict::LastAdmin))
}

/// Accounts and sessions.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Accounts whose email or name contains `containing` (without regard to case; every
    /// account when it is empty), by id, newest first.
    async fn find_users(
        &self,
        containing: &str,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;

    /// Adds an account with its profile and password hash. [`crate::Conflict::EmailTaken`] when
    /// the email belongs to another account.
    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError>;
    /// One account (its profile is `None` once erased).
    async fn user(&self, id: UserId) -> Result<User, StoreError>;
    /// The account and password hash of an email; not found when no live account has it.
    async fn credentials(&self, email: &Email) -> Result<(User, String), StoreError>;
    /// Replaces an account's name and phone.
    async fn update_profile(
        &self,
        id: UserId,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Changes an account's role. Fails with [`crate::Conflict::LastAdmin`] when it would take
    /// the role from the last admin ([`decide_account_change`]); the admins are read and the role
    /// written in one atomic step, so concurrent changes never leave no admin.
    async fn set_role(&self, id: UserId, role: Role, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Erases an account's personal data and password, revokes its refresh tokens and ends its
    /// web sessions, in one
    /// transaction. The account row stays, so that what refers to it stays intact. Fails with
    /// [`crate::Conflict::LastAdmin`] for the last admin, atomically as [`Self::set_role`] does.
    async fn erase_user(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Stores a new web session. [`StoreError::NotFound`] when the account does not exist.
    async fn insert_web_session(&self, session: &WebSessionRecord) -> Result<(), StoreError>;
    /// The account of the web session whose token hashes to `token_hash`, as it is now, with the
    /// session's expiry (the caller decides whether it is still live), in one read; `None` when
    /// no such session is stored.
    async fn web_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(User, DateTime<Utc>)>, StoreError>;
    /// Ends one web session; no effect when it is not stored.
    async fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Deletes the web sessions that expired before `before`; returns how many.
    async fn purge_web_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Issues a password-reset token for the live account of `email`, in one transaction with
    /// its private `password_reset.requested` event; returns whether there is such an account
    /// (nothing is written when there is not). One call either way, so that both answers take
    /// about the same time.
    async fn request_password_reset(
        &self,
        email: &Email,
        request: &PasswordResetRequest,
    ) -> Result<bool, StoreError>;
    /// Resets a password with the token whose hash is `token_hash`, if it is usable at `now`
    /// ([`reset_token_usable`]): in one transaction, every reset token of the account is used
    /// up, the password hash becomes `password_hash`, every refresh token is revoked and every
    /// web session ended. Returns the account, or `None` (and changes nothing) for an unknown,
    /// used or expired token or an erased account. Of racing calls with one token, one resets.
    ///
    /// [`reset_token_usable`]: boxoffice_domain::identity::reset_token_usable
    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;
    /// Replaces an account's password hash and, in the same transaction, revokes its refresh
    /// tokens, ends its web sessions and uses up its reset tokens. [`StoreError::NotFound`]
    /// for an unknown or erased account.
    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Deletes the reset tokens that expired before `before`; returns how many.
    async fn purge_password_resets(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Stores a new refresh token (a new family at sign-in).
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// Uses the token whose hash is `presented`: if live, marks it used and stores `successor`
    /// in the same session (user and family of the used token), in one transaction.
    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor: &RefreshGrant,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;
    /// Revokes one of `user`'s refresh tokens; no effect when it is not theirs.
    async fn revoke_refresh_token(
        &self,
        presented: &str,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The setting `key`, storing `initial` first when it has none. Every instance that asks
    /// gets the same value, whichever stored it.
    async fn setting_or_insert(&self, key: &str, initial: &str) -> Result<String, StoreError>;
    /// Records a failed login for `email_key` from `client_key`.
    async fn record_login_failure(
        &self,
        email_key: &str,
        client_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Failed logins since `since`, and forgets older ones.
    async fn login_failures(
        &self,
        email_key: &str,
        client_key: &str,
        since: DateTime<Utc>,
    ) -> Result<LoginFailures, StoreError>;
    /// Forgets the failed logins of an email (after a successful login).
    async fn clear_login_failures(&self, email_key: &str) -> Result<(), StoreError>;
}
