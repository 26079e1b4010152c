//! The identity part of the SQLite store.

use async_trait::async_trait;
use boxoffice_domain::UserId;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::identity::{AccountChange, Email, Profile, Role, User, reset_token_usable};
use boxoffice_store::{
    ACCOUNTS_AT_STAKE, AccountFacts, Conflict, IdentityStore, LoginFailures, PasswordResetRequest,
    RefreshGrant, RefreshToken, Rotation, StoreError, WebSessionRecord, decide_account_change,
    password_sql, web_session_sql,
};
use chrono::{DateTime, Utc};
use sqlx::error::ErrorKind;
use uuid::Uuid;

use crate::rows::{UserRow, ms, time};
use crate::{SqliteStore, db, found, outbox};

/// A web session's account and expiry ([`web_session_sql::READ`]).
#[derive(sqlx::FromRow)]
struct WebSessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    expires_at: i64,
}

macro_rules! user_columns {
    () => {
        "SELECT u.id, u.role, u.created_at, p.email, p.name, p.phone \
         FROM users u LEFT JOIN profiles p ON p.user_id = u.id "
    };
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, $2, $3, $3)")
            .bind(user.id.0)
            .bind(user.role.as_str())
            .bind(ms(user.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(p) = &user.profile {
            sqlx::query(
                "INSERT INTO profiles (user_id, email, name, phone) VALUES ($1, $2, $3, $4)",
            )
            .bind(user.id.0)
            .bind(p.email.as_str())
            .bind(&p.name)
            .bind(p.phone.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.kind() == ErrorKind::UniqueViolation => {
                    StoreError::Conflict(Conflict::EmailTaken)
                }
                _ => db(e),
            })?;
        }
        sqlx::query("INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2)")
            .bind(user.id.0)
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn user(&self, id: UserId) -> Result<User, StoreError> {
        sqlx::query_as::<_, UserRow>(concat!(user_columns!(), "WHERE u.id = $1"))
            .bind(id.0)
            .fetch_one(&self.read)
            .await
            .map_err(db)?
            .try_into()
    }

    async fn credentials(&self, email: &Email) -> Result<(User, String), StoreError> {
        let (id, hash): (Uuid, String) = sqlx::query_as(
            "SELECT p.user_id, c.password_hash FROM profiles p \
             JOIN credentials c ON c.user_id = p.user_id WHERE p.email = $1",
        )
        .bind(email.as_str())
        .fetch_one(&self.read)
        .await
        .map_err(db)?;
        Ok((self.user(UserId(id)).await?, hash))
    }

    async fn update_profile(
        &self,
        id: UserId,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE profiles SET name = $2, phone = $3 WHERE user_id = $1")
            .bind(id.0)
            .bind(&profile.name)
            .bind(profile.phone.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        found(done.rows_affected())?;
        sqlx::query("UPDATE users SET updated_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn set_role(&self, id: UserId, role: Role, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        decide_account_change(
            &accounts_at_stake(&mut tx, id).await?,
            id,
            AccountChange::Role(role),
        )?;
        sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1")
            .bind(id.0)
            .bind(role.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn erase_user(&self, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        decide_account_change(
            &accounts_at_stake(&mut tx, id).await?,
            id,
            AccountChange::Erasure,
        )?;
        sqlx::query("UPDATE users SET erased_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for sql in [
            "DELETE FROM profiles WHERE user_id = $1",
            "DELETE FROM credentials WHERE user_id = $1",
            password_sql::DELETE_RESETS,
        ] {
            sqlx::query(sql)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        end_sessions(&mut tx, id, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn insert_web_session(&self, session: &WebSessionRecord) -> Result<(), StoreError> {
        sqlx::query(web_session_sql::INSERT)
            .bind(&session.token_hash)
            .bind(session.user_id.0)
            .bind(ms(session.created_at))
            .bind(ms(session.expires_at))
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn web_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(User, DateTime<Utc>)>, StoreError> {
        let row = sqlx::query_as::<_, WebSessionRow>(web_session_sql::READ)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(|WebSessionRow { user, expires_at }| Ok((user.try_into()?, time(expires_at)?)))
            .transpose()
    }

    async fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(web_session_sql::DELETE)
            .bind(token_hash)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn purge_web_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(web_session_sql::PURGE)
            .bind(ms(before))
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn request_password_reset(
        &self,
        email: &Email,
        request: &PasswordResetRequest,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let account: Option<Uuid> = sqlx::query_scalar(password_sql::ACCOUNT_OF_EMAIL)
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(user) = account else {
            return Ok(false);
        };
        sqlx::query(password_sql::INSERT_RESET)
            .bind(&request.token_hash)
            .bind(user)
            .bind(ms(request.created_at))
            .bind(ms(request.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let event = EventRecord::new(
            DomainEvent::PasswordResetRequested {
                user_id: UserId(user),
                token: request.token.clone(),
                expires_at: request.expires_at,
            },
            request.created_at,
        );
        outbox::write_events(&mut tx, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.begin().await?;
        // Under SQLite's write lock from the first statement: no other reset of this token
        // commits between the read, the decision and the writes.
        let row: Option<(Uuid, i64, Option<i64>)> = sqlx::query_as(password_sql::READ_RESET)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some((user, expires_at, used_at)) = row else {
            return Ok(None);
        };
        let (user, expires_at, used_at) = (
            UserId(user),
            time(expires_at)?,
            used_at.map(time).transpose()?,
        );
        if !reset_token_usable(used_at, expires_at, now) {
            return Ok(None);
        }
        if !replace_password(&mut tx, user, password_hash, now).await? {
            // Erased since the token was issued: nothing to reset.
            return Ok(None);
        }
        tx.commit().await.map_err(db)?;
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
        tx.commit().await.map_err(db)
    }

    async fn purge_password_resets(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(password_sql::PURGE_RESETS)
            .bind(ms(before))
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        insert_grant(&self.write, token.user_id.0, token.family_id, &token.grant).await
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        successor: &RefreshGrant,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.begin().await?;
        let row: Option<(Uuid, Uuid, Uuid, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT id, user_id, family_id, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((id, user_id, family_id, expires_at, used_at, revoked_at)) = row else {
            return Ok(Rotation::Invalid);
        };
        if used_at.is_some() || revoked_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2 \
                 WHERE family_id = $1 AND revoked_at IS NULL",
            )
            .bind(family_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(Rotation::Reused);
        }
        if time(expires_at)? <= now {
            return Ok(Rotation::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        insert_grant(&mut *tx, user_id, family_id, successor).await?;
        let user: User = sqlx::query_as::<_, UserRow>(concat!(user_columns!(), "WHERE u.id = $1"))
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_into()?;
        tx.commit().await.map_err(db)?;
        Ok(Rotation::Rotated(user))
    }

    async fn revoke_refresh_token(
        &self,
        presented: &str,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3 \
             WHERE token_hash = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(presented)
        .bind(user.0)
        .bind(ms(now))
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn setting_or_insert(&self, key: &str, initial: &str) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(initial)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let value: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(value)
    }

    async fn record_login_failure(
        &self,
        email_key: &str,
        client_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_failures (email_key, client_key, failed_at) VALUES ($1, $2, $3)",
        )
        .bind(email_key)
        .bind(client_key)
        .bind(ms(at))
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn login_failures(
        &self,
        email_key: &str,
        client_key: &str,
        since: DateTime<Utc>,
    ) -> Result<LoginFailures, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE failed_at <= $1")
            .bind(ms(since))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (by_email, oldest_by_email): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE email_key = $1",
        )
        .bind(email_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let (by_client, oldest_by_client): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE client_key = $1",
        )
        .bind(client_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(LoginFailures {
            by_email: u32::try_from(by_email).unwrap_or(u32::MAX),
            oldest_by_email: oldest_by_email.map(time).transpose()?,
            by_client: u32::try_from(by_client).unwrap_or(u32::MAX),
            oldest_by_client: oldest_by_client.map(time).transpose()?,
        })
    }

    async fn clear_login_failures(&self, email_key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE email_key = $1")
            .bind(email_key)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// What a role change or an erasure of `id` must know: the account and every admin that is not
/// erased. Read inside the change's `BEGIN IMMEDIATE` transaction, which holds SQLite's one write
/// lock from its first statement: no other write of any connection or process commits between
/// this read and the change, so reading, deciding and writing are one atomic step, as one
/// conditional `UPDATE` would be, with the rule in the domain rather than in SQL.
async fn accounts_at_stake(
    tx: &mut sqlx::SqliteConnection,
    id: UserId,
) -> Result<Vec<AccountFacts>, StoreError> {
    let rows: Vec<(Uuid, String, bool)> = sqlx::query_as(ACCOUNTS_AT_STAKE)
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    boxoffice_store::accounts_at_stake(rows)
}

/// Stores a refresh token of `user` in `family`.
async fn insert_grant<'c>(
    executor: impl sqlx::SqliteExecutor<'c>,
    user: Uuid,
    family: Uuid,
    grant: &RefreshGrant,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(grant.id)
    .bind(user)
    .bind(family)
    .bind(&grant.token_hash)
    .bind(ms(grant.created_at))
    .bind(ms(grant.expires_at))
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

/// Inside a transaction: gives `user` the password `password_hash` and ends every session and
/// reset token it has. `false` (nothing changed) when the account has no password: unknown or
/// erased.
async fn replace_password(
    tx: &mut sqlx::SqliteConnection,
    user: UserId,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(password_sql::SET_HASH)
        .bind(user.0)
        .bind(password_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(password_sql::USE_RESETS)
        .bind(user.0)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    end_sessions(tx, user, now).await?;
    Ok(true)
}

/// Inside a transaction: revokes every refresh token of `user` and ends its web sessions.
async fn end_sessions(
    tx: &mut sqlx::SqliteConnection,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(password_sql::REVOKE_REFRESH_TOKENS)
        .bind(user.0)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(web_session_sql::DELETE_OF_USER)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    Ok(())
}
