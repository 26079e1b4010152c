//! Invariant 7 on the backend chosen by `BOXOFFICE_TEST_DATABASE`: the payment ledger is
//! append-only. Raw SQL, as an operator or a bug would send it, must fail for UPDATE and DELETE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use boxoffice_domain::PaymentId;
use boxoffice_domain::payment::{Payment, PaymentStatus};
use boxoffice_store::Checkout;
use boxoffice_store::contract::{base_time, hold, hold_of, on_sale};
use boxoffice_testkit::{Backend, TestDb};
use sqlx::Connection;

#[tokio::test]
async fn the_ledger_rejects_update_and_delete() {
    let db = TestDb::new().await;
    let store = &db.store;
    let (s, seats, u) = on_sale(store.as_ref(), &["ss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();
    let payment = Payment {
        id: PaymentId::generate(),
        booking_id: b.id,
        intent_id: None,
        status: PaymentStatus::Initialized,
        amount: b.total,
        currency: b.currency,
        refunded_amount: 0,
        client_secret: None,
        payment_method: None,
        failure_reason: None,
        created_at: t0,
        updated_at: t0,
    };
    store
        .begin_checkout(
            &Checkout {
                payment: payment.clone(),
                hold_until: t0,
                now: t0,
            },
            None,
        )
        .await
        .unwrap();
    let before = store.ledger(payment.id).await.unwrap();
    assert_eq!(before.len(), 1);

    let statements = [
        "UPDATE payment_ledger SET amount = 0",
        "DELETE FROM payment_ledger",
    ];
    match Backend::from_env() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for sql in statements {
                let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
                assert!(err.to_string().contains("append-only"), "{sql}: {err}");
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for sql in statements
                .into_iter()
                .chain(["TRUNCATE payment_ledger CASCADE"])
            {
                let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
                assert!(err.to_string().contains("append-only"), "{sql}: {err}");
            }
        }
    }
    assert_eq!(store.ledger(payment.id).await.unwrap(), before);
}
