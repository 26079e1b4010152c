//! Accounts, sessions and access rules through the HTTP API.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use boxoffice_app::gateway::IntentStatus;
use boxoffice_domain::identity::Role;
use chrono::Duration;
use common::fake_gateway::succeeded;
use common::{Api, PASSWORD, Reply, assert_problem};
use serde_json::{Value, json};

impl Api {
    /// A JSON request from `client` without a token.
    async fn post_from(&self, client: &str, path: &str, body: Value) -> Reply {
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let addr: SocketAddr = format!("{client}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        self.send(request).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_from("192.0.2.1", path, body).await
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }
}

fn token(reply: &Reply, which: &str) -> String {
    reply.body[which].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_sign_in_refresh_and_sign_out() {
    let api = Api::new().await;
    let registered = api
        .post(
            "/api/v1/auth/register",
            json!({"email": " Ann@Example.com ", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    assert_eq!(registered.body["user"]["email"], "ann@example.com");
    assert_eq!(registered.body["user"]["role"], "customer");
    assert_eq!(registered.body["expires_in"], 900);

    let twin = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "ANN@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_problem(&twin, StatusCode::CONFLICT, "email_taken");
    let weak = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "123456789", "name": "B"}),
        )
        .await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = weak.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);

    // Wrong password and unknown email get the same answer.
    let wrong = api.login("ann@example.com", "wrong password!").await;
    let unknown = api.login("nobody@example.com", PASSWORD).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_problem(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);

    let session = api.login("ann@example.com", PASSWORD).await;
    assert_eq!(session.status, StatusCode::OK);
    let access = token(&session, "access_token");
    let me = api
        .as_bearer(&access, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_eq!(me.body["name"], "Ann");

    // Refresh rotates: the new pair works, the old refresh token does not.
    let first = token(&session, "refresh_token");
    let rotated = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let second = token(&rotated, "refresh_token");
    assert_ne!(second, first);

    // Reusing the rotated token looks like theft: it fails and kills its successor too.
    let reused = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": first}))
        .await;
    assert_problem(&reused, StatusCode::UNAUTHORIZED, "unauthorized");
    let successor = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": second}))
        .await;
    assert_problem(&successor, StatusCode::UNAUTHORIZED, "unauthorized");

    // Sign out ends that session only.
    let other = api.login("ann@example.com", PASSWORD).await;
    let other_refresh = token(&other, "refresh_token");
    let logout = api
        .as_bearer(
            &token(&other, "access_token"),
            Method::POST,
            "/api/v1/auth/logout",
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_problem(&after, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn access_tokens_expire_after_fifteen_minutes() {
    let api = Api::new().await;
    let access = api.token_for("ann@example.com", Role::Customer).await;
    api.clock.advance(Duration::minutes(14));
    let fresh = api
        .as_bearer(&access, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    api.clock.advance(Duration::minutes(1));
    let stale = api
        .as_bearer(&access, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_problem(&stale, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_email_and_per_client() {
    let api = Api::new().await;
    api.token_for("ann@example.com", Role::Customer).await;
    // Successful sign-ins do not count.
    for _ in 0..6 {
        assert_eq!(
            api.login("ann@example.com", PASSWORD).await.status,
            StatusCode::OK
        );
    }
    for _ in 0..5 {
        let r = api.login("ann@example.com", "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Blocked now, even with the right password, with a hint when to come back.
    let blocked = api.login("ann@example.com", PASSWORD).await;
    assert_problem(&blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let retry: i64 = blocked.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Another email from another client is not affected.
    api.token_for("bob@example.com", Role::Customer).await;
    let bob = api
        .post_from(
            "198.51.100.7",
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(bob.status, StatusCode::OK);
    // After the window the email may try again.
    api.clock.advance(Duration::seconds(retry));
    assert_eq!(
        api.login("ann@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    // One client guessing many emails is stopped too.
    for i in 0..20 {
        let r = api
            .post_from(
                "203.0.113.9",
                "/api/v1/auth/login",
                json!({"email": format!("guess{i}@example.com"), "password": "whatever12"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let stopped = api
        .post_from(
            "203.0.113.9",
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&stopped, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // Registrations do not count against anyone.
    let registered = api
        .post_from(
            "203.0.113.9",
            "/api/v1/auth/register",
            json!({"email": "carol@example.com", "password": PASSWORD, "name": "Carol"}),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_customer_edits_and_erases_their_data() {
    let api = Api::new().await;
    let session = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    let access = token(&session, "access_token");
    let patched = api
        .as_bearer(
            &access,
            Method::PATCH,
            "/api/v1/me",
            json!({"name": "Ann B.", "phone": "+44 20 7946 0958"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["phone"], "+44 20 7946 0958");
    let bad = api
        .as_bearer(
            &access,
            Method::PATCH,
            "/api/v1/me",
            json!({"phone": "call me"}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let cleared = api
        .as_bearer(&access, Method::PATCH, "/api/v1/me", json!({"phone": null}))
        .await;
    assert_eq!(cleared.body["phone"], Value::Null);
    assert_eq!(cleared.body["name"], "Ann B.");

    let erased = api
        .as_bearer(&access, Method::DELETE, "/api/v1/me", json!({}))
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);
    let gone = api
        .as_bearer(&access, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_problem(&gone, StatusCode::UNAUTHORIZED, "unauthorized");
    let refresh = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await;
    assert_problem(&refresh, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_problem(
        &api.login("ann@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // The account row stays (for what it bought), without personal data.
    let id = session.body["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let kept = api
        .app
        .store()
        .user(boxoffice_domain::UserId(id))
        .await
        .unwrap();
    assert_eq!(kept.profile, None);
    // The address is free again.
    let again = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
}

#[tokio::test]
async fn admins_change_roles_and_the_next_token_carries_them() {
    let api = Api::new().await;
    let admin = api.token_for("root@example.com", Role::Admin).await;
    let session = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    let id = session.body["user"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/{id}/role");

    let by_staff = api
        .staff(Method::POST, &path, json!({"role": "staff"}))
        .await;
    assert_problem(&by_staff, StatusCode::FORBIDDEN, "forbidden");
    let bad = api
        .as_bearer(&admin, Method::POST, &path, json!({"role": "root"}))
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let unknown = api
        .as_bearer(
            &admin,
            Method::POST,
            &format!("/api/v1/users/{}/role", uuid::Uuid::now_v7()),
            json!({"role": "staff"}),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");

    let promoted = api
        .as_bearer(&admin, Method::POST, &path, json!({"role": "staff"}))
        .await;
    assert_eq!(promoted.status, StatusCode::OK);
    assert_eq!(promoted.body["role"], "staff");
    let refreshed = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await;
    let staff_token = token(&refreshed, "access_token");
    let movie = api
        .as_bearer(
            &staff_token,
            Method::POST,
            "/api/v1/movies",
            json!({"title": "Metropolis", "runtime_minutes": 153}),
        )
        .await;
    assert_eq!(movie.status, StatusCode::CREATED);
}

/// The id of the account `access` belongs to.
async fn my_id(api: &Api, access: &str) -> String {
    let me = api
        .as_bearer(access, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    me.body["id"].as_str().unwrap().to_owned()
}

/// A demotion applies to the demoted account's next request, not to its next token: the old
/// token no longer creates a film or reads someone else's booking.
#[tokio::test]
async fn a_demoted_staff_members_old_token_loses_the_role_at_once() {
    let api = Api::new().await;
    let admin = api.token_for("root@example.com", Role::Admin).await;
    let sam = api.token_for("sam@example.com", Role::Staff).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let show = api.on_sale(json!(["sss"])).await;
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("A1")]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let booking = format!("/api/v1/bookings/{}", held.body["id"].as_str().unwrap());
    let film = json!({"title": "Nosferatu", "runtime_minutes": 94});
    let as_staff = api.as_bearer(&sam, Method::GET, &booking, json!({})).await;
    assert_eq!(as_staff.status, StatusCode::OK, "{}", as_staff.body);

    let sam_id = my_id(&api, &sam).await;
    let demoted = api
        .as_bearer(
            &admin,
            Method::POST,
            &format!("/api/v1/users/{sam_id}/role"),
            json!({"role": "customer"}),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);

    let create = api
        .as_bearer(&sam, Method::POST, "/api/v1/movies", film)
        .await;
    assert_problem(&create, StatusCode::FORBIDDEN, "forbidden");
    let read = api.as_bearer(&sam, Method::GET, &booking, json!({})).await;
    assert_problem(&read, StatusCode::NOT_FOUND, "not_found");
    // The token still signs its owner in, as the customer the account now is.
    assert_eq!(
        api.as_bearer(&sam, Method::GET, "/api/v1/me", json!({}))
            .await
            .body["role"],
        "customer"
    );
}

/// After `DELETE /me` the old access token is refused everywhere, before it expires: it no
/// longer holds seats, pays or fetches tickets.
#[tokio::test]
async fn an_erased_accounts_old_token_is_refused_at_once() {
    let api = Api::new().await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let show = api.on_sale(json!(["sss"])).await;
    let paid = api.hold(&ann, &show.showtime_id, &[show.seat("A1")]).await;
    let paid = paid.body["id"].as_str().unwrap().to_owned();
    let checkout = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{paid}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.body);
    let secret = checkout.body["payment"]["client_secret"].as_str().unwrap();
    let intent = secret.trim_end_matches("_secret");
    let total = checkout.body["payment"]["amount"].as_i64().unwrap();
    api.gateway
        .set_intent_status(intent, IntentStatus::Succeeded, None);
    let delivered = api.deliver(&succeeded("evt_1", intent, total)).await;
    assert_eq!(delivered.body["outcome"], "processed", "{}", delivered.body);
    let tickets = format!("/api/v1/bookings/{paid}/tickets");
    let before = api.as_bearer(&ann, Method::GET, &tickets, json!({})).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("A2")]).await;
    let held = held.body["id"].as_str().unwrap().to_owned();

    let erased = api
        .as_bearer(&ann, Method::DELETE, "/api/v1/me", json!({}))
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);

    let hold = api.hold(&ann, &show.showtime_id, &[show.seat("A3")]).await;
    let pay = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{held}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    let fetch = api.as_bearer(&ann, Method::GET, &tickets, json!({})).await;
    for (what, reply) in [("hold", hold), ("checkout", pay), ("tickets", fetch)] {
        assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer", "{what}");
    }
}

/// The last admin can neither step down nor erase themselves (409 `last_admin`); once another
/// account is admin, they can.
#[tokio::test]
async fn the_last_admin_stays_an_admin() {
    let api = Api::new().await;
    let root = api.token_for("root@example.com", Role::Admin).await;
    let root_id = my_id(&api, &root).await;
    let own_role = format!("/api/v1/users/{root_id}/role");
    let demoted = api
        .as_bearer(&root, Method::POST, &own_role, json!({"role": "staff"}))
        .await;
    assert_problem(&demoted, StatusCode::CONFLICT, "last_admin");
    let erased = api
        .as_bearer(&root, Method::DELETE, "/api/v1/me", json!({}))
        .await;
    assert_problem(&erased, StatusCode::CONFLICT, "last_admin");
    let me = api
        .as_bearer(&root, Method::GET, "/api/v1/me", json!({}))
        .await;
    assert_eq!(me.body["role"], "admin");

    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let ann_id = my_id(&api, &ann).await;
    let promoted = api
        .as_bearer(
            &root,
            Method::POST,
            &format!("/api/v1/users/{ann_id}/role"),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    let stepped_down = api
        .as_bearer(&root, Method::POST, &own_role, json!({"role": "staff"}))
        .await;
    assert_eq!(stepped_down.status, StatusCode::OK, "{}", stepped_down.body);
    // Now ann is the last one.
    let gone = api
        .as_bearer(&ann, Method::DELETE, "/api/v1/me", json!({}))
        .await;
    assert_problem(&gone, StatusCode::CONFLICT, "last_admin");
}

/// Every operation of the OpenAPI document × every kind of caller: anonymous callers of a
/// protected route get 401, callers without the role get 403, callers with it get neither;
/// public routes never answer 401 or 403. The role an operation needs is read from its
/// `bearer` scopes in the document, so a route cannot be added without being checked here.
#[tokio::test]
async fn every_route_enforces_its_role() {
    let api = Api::new().await;
    let doc = boxoffice_http::openapi();
    let callers = [
        ("anonymous", None),
        ("customer", Some(Role::Customer)),
        ("another customer", Some(Role::Customer)),
        ("staff", Some(Role::Staff)),
        ("admin", Some(Role::Admin)),
    ];
    let mut checked = 0;
    for (path, item) in doc.paths.paths.iter() {
        let operations = [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let required: Option<Option<Role>> = operation.security.as_ref().map(|reqs| {
                let value = serde_json::to_value(reqs).unwrap();
                let scopes = value[0]["bearer"].as_array().cloned().unwrap_or_default();
                scopes
                    .first()
                    .and_then(|s| s.as_str())
                    .map(|s| s.parse::<Role>().unwrap())
            });
            let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            for (i, (who, role)) in callers.iter().enumerate() {
                let mut request = Request::builder()
                    .method(method.clone())
                    .uri(&concrete)
                    .header(header::CONTENT_TYPE, "application/json");
                if let Some(role) = role {
                    // A fresh account per check: some operations (DELETE /me) end the caller.
                    let email = format!("{who}-{checked}-{i}@example.com").replace(' ', "-");
                    let token = api.token_for(&email, *role).await;
                    request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
                let reply = api.send(request.body(Body::from("{}")).unwrap()).await;
                let status = reply.status;
                match (&required, role) {
                    (None, _) => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{method} {path} is public but answered {status} to {who}"
                    ),
                    (Some(_), None) => assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} for {who}"
                    ),
                    (Some(needed), Some(role)) => {
                        let needed = needed.unwrap_or(Role::Customer);
                        if role.includes(needed) {
                            assert!(
                                status != StatusCode::UNAUTHORIZED
                                    && status != StatusCode::FORBIDDEN,
                                "{method} {path} answered {status} to {who}"
                            );
                        } else {
                            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} for {who}");
                        }
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations found");
}

#[tokio::test]
async fn the_api_budget_per_client_answers_429_with_retry_after() {
    let api = Api::with_rate_limit(boxoffice_http::auth::RateLimit::parse("3/m").unwrap()).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut request = Request::get("/api/v1/movies").body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo::<SocketAddr>(
            "192.0.2.44:5000".parse().unwrap(),
        ));
        let reply = api.send(request).await;
        statuses.push(reply.status);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
            assert!(reply.headers.contains_key(header::RETRY_AFTER));
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// The web site's cookie sessions are sessions of the same accounts: the same registration,
/// credential check and failure limiter as the API; they last 14 days, end on sign-out, follow
/// the account's role and die with the account.
#[tokio::test]
async fn web_sessions_share_the_accounts_and_the_limiter() {
    use boxoffice_app::{AppError, WEB_SESSION_TTL};
    let api = Api::new().await;
    let web = api
        .app
        .register_web("Ann@Example.com", PASSWORD, "Ann")
        .await
        .unwrap();
    assert!(web.token.len() >= 32, "{}", web.token);
    assert_eq!(web.expires_at, common::t0() + WEB_SESSION_TTL);
    let (who, user) = api.app.web_session(&web.token).await.unwrap().unwrap();
    assert_eq!((who.user_id, who.role), (user.id, Role::Customer));
    assert_eq!(user.profile.unwrap().email.as_str(), "ann@example.com");
    // The same account signs in on the API.
    assert_eq!(
        api.login("ann@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert!(matches!(
        api.app
            .register_web("ann@example.com", PASSWORD, "Ann")
            .await,
        Err(AppError::EmailTaken)
    ));
    assert!(api.app.web_session("ws_unknown").await.unwrap().is_none());
    assert!(api.app.web_session("").await.unwrap().is_none());

    // One limiter: failures on the API count against web sign-ins and the other way round.
    for _ in 0..3 {
        let wrong = api.login("ann@example.com", "wrong password!").await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    for _ in 0..2 {
        assert!(matches!(
            api.app
                .sign_in_web("ann@example.com", "wrong password!", "192.0.2.1")
                .await,
            Err(AppError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        api.app
            .sign_in_web("ann@example.com", PASSWORD, "192.0.2.1")
            .await,
        Err(AppError::TooManyAttempts { .. })
    ));
    assert_problem(
        &api.login("ann@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
    api.clock.advance(Duration::minutes(16));
    let second = api
        .app
        .sign_in_web("ann@example.com", PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    assert_ne!(second.token, web.token);

    // The role as it is now.
    let admin = api.token_for("root@example.com", Role::Admin).await;
    let promoted = api
        .as_bearer(
            &admin,
            Method::POST,
            &format!("/api/v1/users/{}/role", who.user_id),
            json!({"role": "staff"}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    let (now, _) = api.app.web_session(&second.token).await.unwrap().unwrap();
    assert_eq!(now.role, Role::Staff);

    // Sign-out ends that session only.
    api.app.end_web_session(&second.token).await.unwrap();
    api.app.end_web_session(&second.token).await.unwrap();
    assert!(api.app.web_session(&second.token).await.unwrap().is_none());
    assert!(api.app.web_session(&web.token).await.unwrap().is_some());

    // 14 days from sign-in, not a moment longer.
    api.clock
        .advance(WEB_SESSION_TTL - Duration::minutes(16) - Duration::seconds(1));
    assert!(api.app.web_session(&web.token).await.unwrap().is_some());
    api.clock.advance(Duration::seconds(1));
    assert!(api.app.web_session(&web.token).await.unwrap().is_none());

    // Erasure ends every web session of the account.
    let third = api
        .app
        .sign_in_web("ann@example.com", PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    api.app.erase_me(now).await.unwrap();
    assert!(api.app.web_session(&third.token).await.unwrap().is_none());
}

/// `POST /me/password` needs the current password (401 `invalid_credentials` otherwise, 422
/// for a weak new one) and ends every session of the account, web sessions included.
#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_every_session() {
    let api = Api::new().await;
    let session = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    let access = token(&session, "access_token");
    let web = api
        .app
        .sign_in_web("ann@example.com", PASSWORD, "192.0.2.1")
        .await
        .unwrap();
    let change = |current: &str, new: &str| {
        let body = json!({"current_password": current, "new_password": new});
        let (api, access) = (&api, access.clone());
        async move {
            api.as_bearer(&access, Method::POST, "/api/v1/me/password", body)
                .await
        }
    };
    let wrong = change("not my password", "a brand new password").await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let weak = change(PASSWORD, "short").await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(weak.body["errors"][0]["field"], "new_password");
    assert!(api.app.web_session(&web.token).await.unwrap().is_some());

    let changed = change(PASSWORD, "a brand new password").await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let refresh = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await;
    assert_problem(&refresh, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(api.app.web_session(&web.token).await.unwrap().is_none());
    assert_problem(
        &api.login("ann@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(
        api.login("ann@example.com", "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
    let unsigned = api
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "whatever else"}),
        )
        .await;
    assert_problem(&unsigned, StatusCode::UNAUTHORIZED, "unauthorized");
}
