//! Accounts, sessions, passwords, refresh tokens, settings and login throttling.

use async_trait::async_trait;
use boxoffice_domain::UserId;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::identity::{AccountChange, Email, Profile, Role, User, reset_token_usable};
use boxoffice_store::{
    ACCOUNTS_AT_STAKE, AccountFacts, Conflict, Cursor, IdentityStore, LoginFailures, Page,
    PageRequest, PasswordResetRequest, RefreshGrant, RefreshToken, Rotation, StoreError,
    WebSessionRecord, codec, decide_account_change, password_sql, web_session_sql,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::seam::containing;
use crate::{Dialect, Record, Sql, SqlStore, Transaction, args, found, on_unique};

/// The columns [`user_of`] reads, joined from `users` (as `u`) and `profiles`.
const USER_SELECT: &str = "SELECT u.id, u.role, u.created_at, p.email, p.name, p.phone \
     FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = $1";

/// A user from a row with the columns of [`USER_SELECT`].
pub(crate) fn user_of(row: &impl Record) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.get("id")?),
        role: codec::role(&row.get::<String>("role")?)?,
        profile: codec::profile(row.get("email")?, row.get("name")?, row.get("phone")?)?,
        created_at: row.get("created_at")?,
    })
}

#[async_trait]
impl<D: Dialect> IdentityStore for SqlStore<D> {
    async fn find_users(&self, needle: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let needle = needle.trim();
        let pattern = (!needle.is_empty()).then(|| containing(&needle.to_lowercase()));
        let rows = self
            .reader()
            .fetch_all(
                "SELECT u.id, u.role, u.created_at, p.email, p.name, p.phone \
                 FROM users u LEFT JOIN profiles p ON p.user_id = u.id \
                 WHERE ($1 IS NULL OR p.email LIKE $1 ESCAPE '\\' \
                        OR lower(p.name) LIKE $1 ESCAPE '\\') \
                   AND ($2 IS NULL OR u.id < $2) \
                 ORDER BY u.id DESC LIMIT $3",
                args![
                    pattern,
                    page.after.as_ref().map(|c| c.id),
                    i64::from(page.limit) + 1
                ],
            )
            .await?
            .iter()
            .map(user_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(rows, page.limit, |u: &User| {
            Cursor::after_id(u.id.0)
        }))
    }

    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            args![user.id.0, user.role.as_str(), user.created_at],
        )
        .await?;
        if let Some(p) = &user.profile {
            tx.execute(
                "INSERT INTO profiles (user_id, email, name, phone) VALUES ($1, $2, $3, $4)",
                args![user.id.0, p.email.as_str(), &p.name, p.phone.as_deref()],
            )
            .await
            .map_err(|e| on_unique(e, Conflict::EmailTaken))?;
        }
        tx.execute(
            "INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2)",
            args![user.id.0, password_hash],
        )
        .await?;
        tx.commit().await
    }

    async fn user(&self, id: UserId) -> Result<User, StoreError> {
        user_of(&self.reader().fetch_one(USER_SELECT, args![id.0]).await?)
    }

    async fn credentials(&self, email: &Email) -> Result<(User, String), StoreError> {
        let row = self
            .reader()
            .fetch_one(
                "SELECT p.user_id, c.password_hash FROM profiles p \
                 JOIN credentials c ON c.user_id = p.user_id WHERE p.email = $1",
                args![email.as_str()],
            )
            .await?;
        let id = UserId(row.get("user_id")?);
        Ok((self.user(id).await?, row.get("password_hash")?))
    }

    async fn update_profile(
        &self,
        id: UserId,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        found(
            tx.execute(
                "UPDATE profiles SET name = $2, phone = $3 WHERE user_id = $1",
                args![id.0, &profile.name, profile.phone.as_deref()],
            )
            .await?,
        )?;
        tx.execute(
            "UPDATE users SET updated_at = $2 WHERE id = $1",
            args![id.0, now],
        )
        .await?;
        tx.commit().await
    }

    async fn set_role(&self, id: UserId, role: Role, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let accounts = accounts_at_stake::<D>(&mut tx, id).await?;
        decide_account_change(&accounts, id, AccountChange::Role(role))?;
        tx.execute(
            "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1",
            args![id.0, role.as_str(), now],
        )
        .await?;
        tx.commit().await
    }

    async fn erase_user(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let accounts = accounts_at_stake::<D>(&mut tx, id).await?;
        decide_account_change(&accounts, id, AccountChange::Erasure)?;
        tx.execute(
            "UPDATE users SET erased_at = $2, updated_at = $2 WHERE id = $1",
            args![id.0, now],
        )
        .await?;
        for sql in [
            "DELETE FROM profiles WHERE user_id = $1",
            "DELETE FROM credentials WHERE user_id = $1",
            password_sql::DELETE_RESETS,
        ] {
            tx.execute(sql, args![id.0]).await?;
        }
        end_sessions(&mut tx, id, now).await?;
        tx.commit().await
    }

    async fn insert_web_session(&self, session: &WebSessionRecord) -> Result<(), StoreError> {
        self.writer()
            .execute(
                web_session_sql::INSERT,
                args![
                    &session.token_hash,
                    session.user_id.0,
                    session.created_at,
                    session.expires_at
                ],
            )
            .await?;
        Ok(())
    }

    async fn web_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(User, DateTime<Utc>)>, StoreError> {
        let row = self
            .reader()
            .fetch_optional(web_session_sql::READ, args![token_hash])
            .await?;
        row.map(|row| Ok((user_of(&row)?, row.get("expires_at")?)))
            .transpose()
    }

    async fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.writer()
            .execute(web_session_sql::DELETE, args![token_hash])
            .await?;
        Ok(())
    }

    async fn purge_web_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer()
            .execute(web_session_sql::PURGE, args![before])
            .await
    }

    async fn request_password_reset(
        &self,
        email: &Email,
        request: &PasswordResetRequest,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let account = tx
            .fetch_optional(password_sql::ACCOUNT_OF_EMAIL, args![email.as_str()])
            .await?;
        let Some(account) = account else {
            return Ok(false);
        };
        let user: Uuid = account.get("user_id")?;
        tx.execute(
            password_sql::INSERT_RESET,
            args![
                &request.token_hash,
                user,
                request.created_at,
                request.expires_at
            ],
        )
        .await?;
        let event = EventRecord::new(
            DomainEvent::PasswordResetRequested {
                user_id: UserId(user),
                token: request.token.clone(),
                expires_at: request.expires_at,
            },
            request.created_at,
        );
        D::write_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.begin().await?;
        // Locked until commit (SQLite: under the write lock from the first statement): a racing
        // reset of the same token waits, then reads it used.
        let read = format!("{} {}", password_sql::READ_RESET, D::FOR_UPDATE);
        let Some(row) = tx.fetch_optional(read, args![token_hash]).await? else {
            return Ok(None);
        };
        let user = UserId(row.get("user_id")?);
        if !reset_token_usable(row.get("used_at")?, row.get("expires_at")?, now) {
            return Ok(None);
        }
        if !replace_password(&mut tx, user, password_hash, now).await? {
            // Erased since the token was issued: nothing to reset.
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if !replace_password(&mut tx, user, password_hash, now).await? {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn purge_password_resets(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer()
            .execute(password_sql::PURGE_RESETS, args![before])
            .await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        insert_grant(
            &mut self.writer(),
            token.user_id,
            token.family_id,
            &token.grant,
        )
        .await
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor: &RefreshGrant,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.begin().await?;
        let read = format!(
            "SELECT id, user_id, family_id, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1 {}",
            D::FOR_UPDATE
        );
        let Some(row) = tx.fetch_optional(read, args![presented]).await? else {
            return Ok(Rotation::Invalid);
        };
        let family: Uuid = row.get("family_id")?;
        let used_at: Option<DateTime<Utc>> = row.get("used_at")?;
        let revoked_at: Option<DateTime<Utc>> = row.get("revoked_at")?;
        if used_at.is_some() || revoked_at.is_some() {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $2 \
                 WHERE family_id = $1 AND revoked_at IS NULL",
                args![family, now],
            )
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused);
        }
        if row.get::<DateTime<Utc>>("expires_at")? <= now {
            return Ok(Rotation::Invalid);
        }
        let id: Uuid = row.get("id")?;
        let user_id = UserId(row.get("user_id")?);
        tx.execute(
            "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1",
            args![id, now],
        )
        .await?;
        insert_grant(&mut tx, user_id, family, successor).await?;
        let user = user_of(&tx.fetch_one(USER_SELECT, args![user_id.0]).await?)?;
        tx.commit().await?;
        Ok(Rotation::Rotated(user))
    }

    async fn revoke_refresh_token(
        &self,
        presented: &str,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "UPDATE refresh_tokens SET revoked_at = $3 \
                 WHERE token_hash = $1 AND user_id = $2 AND revoked_at IS NULL",
                args![presented, user.0, now],
            )
            .await?;
        Ok(())
    }

    async fn setting_or_insert(&self, key: &str, initial: &str) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            args![key, initial],
        )
        .await?;
        let value = tx
            .fetch_one("SELECT value FROM settings WHERE key = $1", args![key])
            .await?
            .get("value")?;
        tx.commit().await?;
        Ok(value)
    }

    async fn record_login_failure(
        &self,
        email_key: &str,
        client_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "INSERT INTO login_failures (email_key, client_key, failed_at) \
                 VALUES ($1, $2, $3)",
                args![email_key, client_key, at],
            )
            .await?;
        Ok(())
    }

    async fn login_failures(
        &self,
        email_key: &str,
        client_key: &str,
        since: DateTime<Utc>,
    ) -> Result<LoginFailures, StoreError> {
        let mut tx = self.begin().await?;
        tx.execute(
            "DELETE FROM login_failures WHERE failed_at <= $1",
            args![since],
        )
        .await?;
        let by_email = tx
            .fetch_one(
                "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures \
                 WHERE email_key = $1",
                args![email_key],
            )
            .await?;
        let by_client = tx
            .fetch_one(
                "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures \
                 WHERE client_key = $1",
                args![client_key],
            )
            .await?;
        tx.commit().await?;
        let count = |row: &<D::Tx as Sql>::Row| -> Result<u32, StoreError> {
            Ok(u32::try_from(row.get::<i64>("failures")?).unwrap_or(u32::MAX))
        };
        Ok(LoginFailures {
            by_email: count(&by_email)?,
            oldest_by_email: by_email.get("oldest")?,
            by_client: count(&by_client)?,
            oldest_by_client: by_client.get("oldest")?,
        })
    }

    async fn clear_login_failures(&self, email_key: &str) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "DELETE FROM login_failures WHERE email_key = $1",
                args![email_key],
            )
            .await?;
        Ok(())
    }
}

/// What a role change or an erasure of `id` must know: the account and every admin that is not
/// erased, read inside the change's transaction so that reading, deciding and writing are one
/// atomic step. SQLite's `BEGIN IMMEDIATE` holds the one write lock from the first statement.
/// PostgreSQL locks the rows until commit, in id order (the same in every such transaction, so
/// they cannot deadlock), with `FOR NO KEY UPDATE`: the lock the `UPDATE` takes anyway, which
/// does not wait for transactions that only insert rows referring to an account. A row that
/// stops being a live admin while this waits is checked again against the `WHERE` and left out;
/// an account that became an admin meanwhile is not seen, which can only refuse a change that
/// would have been allowed, never allow one that leaves no admin.
async fn accounts_at_stake<D: Dialect>(
    tx: &mut D::Tx,
    id: UserId,
) -> Result<Vec<AccountFacts>, StoreError> {
    let sql = format!("{ACCOUNTS_AT_STAKE} ORDER BY id {}", D::FOR_NO_KEY_UPDATE);
    let rows = tx.fetch_all(sql, args![id.0]).await?;
    let facts = rows
        .iter()
        .map(|row| Ok((row.get("id")?, row.get("role")?, row.get("erased")?)))
        .collect::<Result<Vec<(Uuid, String, bool)>, StoreError>>()?;
    boxoffice_store::accounts_at_stake(facts)
}

/// Stores a refresh token of `user` in `family`.
async fn insert_grant(
    sql: &mut impl Sql,
    user: UserId,
    family: Uuid,
    grant: &RefreshGrant,
) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![
            grant.id,
            user.0,
            family,
            &grant.token_hash,
            grant.created_at,
            grant.expires_at
        ],
    )
    .await?;
    Ok(())
}

/// Inside a transaction: gives `user` the password `password_hash` and ends every session and
/// reset token it has. `false` (nothing changed) when the account has no password: unknown or
/// erased.
async fn replace_password(
    tx: &mut impl Sql,
    user: UserId,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(password_sql::SET_HASH, args![user.0, password_hash])
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(password_sql::USE_RESETS, args![user.0, now])
        .await?;
    end_sessions(tx, user, now).await?;
    Ok(true)
}

/// Inside a transaction: revokes every refresh token of `user` and ends its web sessions.
async fn end_sessions(
    tx: &mut impl Sql,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(password_sql::REVOKE_REFRESH_TOKENS, args![user.0, now])
        .await?;
    tx.execute(web_session_sql::DELETE_OF_USER, args![user.0])
        .await?;
    Ok(())
}
