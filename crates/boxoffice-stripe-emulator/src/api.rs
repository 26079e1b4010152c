//! The Stripe-shaped HTTP API: payment intents, refunds, `Idempotency-Key` handling, Bearer
//! authentication and Stripe's error bodies, over an in-memory store; plus the `/_emulator`
//! control routes, behind the same key. Every request runs under one lock with no await inside, so concurrent
//! requests with the same idempotency key are serialised as on Stripe.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use boxoffice_app::clock::Clock;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::outbox::{Outbox, SwitchesPatch};

/// The API version stamped on events (informative; the emulator has only one behaviour).
const API_VERSION: &str = "2024-06-20";

/// Test payment methods: id → `None` (succeeds) or the decline code.
const PAYMENT_METHODS: &[(&str, Option<&str>)] = &[
    ("pm_card_visa", None),
    ("pm_card_mastercard", None),
    ("pm_card_chargeDeclined", Some("generic_decline")),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        Some("insufficient_funds"),
    ),
];

const REFUND_REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];
const CANCELLATION_REASONS: &[&str] = &[
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "abandoned",
];

/// A Stripe-style id: prefix, random letters and digits, and a counter so that two ids of one
/// process never collide even if the random source failed.
fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut random = [0u8; 18];
    // Best effort: uniqueness within the process comes from the counter.
    let _ = getrandom::fill(&mut random);
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    id.push('_');
    id.extend(
        random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])),
    );
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed);
    loop {
        id.push(char::from(ALPHABET[(n % 62) as usize]));
        n /= 62;
        if n == 0 {
            return id;
        }
    }
}

/// What a request produced: a status and a JSON body.
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
        }
    }

    fn error(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
        message: String,
    ) -> Self {
        let mut error = json!({"type": kind, "message": message});
        if let Some(code) = code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = param {
            error["param"] = json!(param);
        }
        Self {
            status,
            body: json!({"error": error}),
        }
    }

    fn invalid(code: &str, param: Option<&str>, message: String) -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some(code),
            param,
            message,
        )
    }

    fn missing(kind: &str, id: &str, param: &str, status: StatusCode) -> Self {
        Self::error(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            format!("No such {kind}: '{id}'"),
        )
    }

    fn into_response_with(self, replayed: bool) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if replayed {
            response.headers_mut().insert(
                "idempotent-replayed",
                header::HeaderValue::from_static("true"),
            );
        }
        response
    }
}

/// A form body, keys as sent (`metadata[booking_id]`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(body: &[u8]) -> Result<Self, Reply> {
        serde_urlencoded::from_bytes(body).map(Self).map_err(|e| {
            Reply::invalid("parameter_invalid", None, format!("Invalid form body: {e}"))
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses keys outside `known` (and outside `metadata[…]` when `metadata` is allowed), as
    /// Stripe does, so a typo in the adapter shows up as an error rather than being ignored.
    fn only(&self, known: &[&str], metadata: bool) -> Result<(), Reply> {
        match self
            .0
            .iter()
            .find(|(k, _)| !(known.contains(&k.as_str()) || (metadata && is_metadata_key(k))))
        {
            Some((k, _)) => Err(Reply::invalid(
                "parameter_unknown",
                Some(k),
                format!("Received unknown parameter: {k}"),
            )),
            None => Ok(()),
        }
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| is_metadata_key(k))
            .map(|(k, v)| (k["metadata[".len()..k.len() - 1].to_owned(), v.clone()))
            .collect()
    }

    fn amount(&self, key: &str) -> Result<Option<i64>, Reply> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(amount) if amount > 0 => Ok(Some(amount)),
                _ => Err(Reply::invalid(
                    "parameter_invalid_integer",
                    Some(key),
                    format!("Invalid positive integer: {raw:?}"),
                )),
            },
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, Reply> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Reply::invalid(
                "parameter_invalid_boolean",
                Some(key),
                format!("Invalid boolean: {other:?}"),
            )),
        }
    }

    fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, Reply> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(v) => Err(Reply::invalid(
                "parameter_invalid_string",
                Some(key),
                format!(
                    "Invalid {key}: must be one of {}; got {v:?}",
                    allowed.join(", ")
                ),
            )),
        }
    }

    /// The parameters in a canonical order: what "the same parameters" means for
    /// idempotency.
    fn fingerprint(&self, route: &str) -> String {
        let mut pairs = self.0.clone();
        pairs.sort();
        let mut out = route.to_owned();
        for (k, v) in pairs {
            out.push('\n');
            out.push_str(&k);
            out.push('=');
            out.push_str(&v);
        }
        out
    }
}

fn is_metadata_key(k: &str) -> bool {
    k.starts_with("metadata[") && k.ends_with(']') && k.len() > "metadata[]".len()
}

struct Intent {
    id: String,
    amount: i64,
    currency: String,
    status: &'static str,
    client_secret: String,
    metadata: BTreeMap<String, String>,
    payment_method: Option<String>,
    last_payment_error: Option<Value>,
    latest_charge: Option<String>,
    amount_refunded: i64,
    created: i64,
    canceled_at: Option<i64>,
    cancellation_reason: Option<String>,
}

impl Intent {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_received": if self.status == "succeeded" { self.amount } else { 0 },
            "automatic_payment_methods": {"enabled": true, "allow_redirects": "never"},
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": "automatic",
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": false,
            "metadata": self.metadata,
            "payment_method": self.payment_method,
            "status": self.status,
        })
    }

    fn charge_json(&self) -> Value {
        json!({
            "id": self.latest_charge,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount,
            "amount_refunded": self.amount_refunded,
            "captured": true,
            "currency": self.currency,
            "livemode": false,
            "metadata": self.metadata,
            "paid": true,
            "payment_intent": self.id,
            "refunded": self.amount_refunded >= self.amount,
            "status": "succeeded",
        })
    }
}

struct Refund {
    id: String,
    payment_intent: String,
    charge: Option<String>,
    amount: i64,
    currency: String,
    reason: Option<String>,
    metadata: BTreeMap<String, String>,
    created: i64,
}

impl Refund {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "metadata": self.metadata,
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "status": "succeeded",
        })
    }
}

struct Saved {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Data {
    intents: HashMap<String, Intent>,
    refunds: HashMap<String, Refund>,
    /// (secret key, idempotency key) → the first answer.
    idempotency: HashMap<(String, String), Saved>,
}

/// The API's state.
pub(crate) struct Api {
    secret_key: String,
    clock: Arc<dyn Clock>,
    outbox: Arc<Outbox>,
    data: Mutex<Data>,
}

type Shared = State<Arc<Api>>;

/// The whole router: Stripe's routes and the control routes.
pub(crate) fn router(secret_key: String, clock: Arc<dyn Clock>, outbox: Arc<Outbox>) -> Router {
    let api = Arc::new(Api {
        secret_key,
        clock,
        outbox,
        data: Mutex::new(Data::default()),
    });
    Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}", get(retrieve_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(retrieve_refund))
        .route("/_emulator/config", get(get_config).post(set_config))
        .route("/_emulator/flush", post(flush))
        .route("/_emulator/events", get(events))
        .fallback(unknown_route)
        .with_state(api)
}

impl Api {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// The secret key of the caller when it is the right one; Stripe's 401 otherwise.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Reply> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let unauthorized = |message: String| {
            Reply::error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                None,
                None,
                message,
            )
        };
        match given {
            None => Err(unauthorized(
                "You did not provide an API key. Provide it in the Authorization header \
                 (Authorization: Bearer YOUR_SECRET_KEY)."
                    .to_owned(),
            )),
            Some(key) if key == self.secret_key => Ok(()),
            Some(key) => {
                let tail: String = key
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Err(unauthorized(format!(
                    "Invalid API Key provided: sk_****{tail}"
                )))
            }
        }
    }

    /// A POST: authentication, form parsing, `Idempotency-Key`, then `op` under the lock.
    fn post(
        &self,
        headers: &HeaderMap,
        route: &str,
        body: &[u8],
        op: impl FnOnce(&Self, &mut Data, &Params) -> Reply,
    ) -> Response {
        if let Err(reply) = self.authenticate(headers) {
            return reply.into_response_with(false);
        }
        let params = match Params::parse(body) {
            Ok(params) => params,
            Err(reply) => return reply.into_response_with(false),
        };
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(|k| (self.secret_key.clone(), k.to_owned()));
        let fingerprint = params.fingerprint(route);
        let mut data = self.lock();
        if let Some(saved) = key.as_ref().and_then(|k| data.idempotency.get(k)) {
            if saved.fingerprint != fingerprint {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they \
                     were first used with. Try using a key other than the one used on the \
                     original request."
                        .to_owned(),
                )
                .into_response_with(false);
            }
            return Reply {
                status: saved.status,
                body: saved.body.clone(),
            }
            .into_response_with(true);
        }
        let reply = op(self, &mut data, &params);
        if let Some(key) = key {
            data.idempotency.insert(
                key,
                Saved {
                    fingerprint,
                    status: reply.status,
                    body: reply.body.clone(),
                },
            );
        }
        reply.into_response_with(false)
    }

    fn emit(&self, kind: &str, object: Value) {
        let id = new_id("evt");
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": {"object": object},
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
        });
        let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        self.outbox.enqueue(id, kind.to_owned(), body);
    }

    /// Confirms `intent` with `payment_method` (known to exist): succeeds or declines.
    fn confirm(&self, intent: &mut Intent, payment_method: &str, decline: Option<&str>) -> Reply {
        intent.latest_charge = Some(new_id("ch"));
        match decline {
            None => {
                intent.status = "succeeded";
                intent.payment_method = Some(payment_method.to_owned());
                intent.last_payment_error = None;
                self.emit("payment_intent.succeeded", intent.json());
                Reply::ok(intent.json())
            }
            Some(decline_code) => {
                let error = json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline_code,
                    "message": "Your card was declined.",
                    "charge": intent.latest_charge,
                    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                    "payment_method": {"id": payment_method, "object": "payment_method"},
                });
                // As on Stripe: the method is detached and the intent waits for another.
                intent.status = "requires_payment_method";
                intent.payment_method = None;
                intent.last_payment_error = Some(error.clone());
                self.emit("payment_intent.payment_failed", intent.json());
                let mut error = error;
                error["payment_intent"] = intent.json();
                Reply {
                    status: StatusCode::PAYMENT_REQUIRED,
                    body: json!({"error": error}),
                }
            }
        }
    }

    fn create_intent(&self, data: &mut Data, params: &Params) -> Reply {
        let checked = (|| {
            params.only(
                &[
                    "amount",
                    "currency",
                    "payment_method",
                    "confirm",
                    "description",
                    "automatic_payment_methods[enabled]",
                    "automatic_payment_methods[allow_redirects]",
                ],
                true,
            )?;
            let amount = params.amount("amount")?.ok_or_else(|| {
                Reply::invalid(
                    "parameter_missing",
                    Some("amount"),
                    "Missing required param: amount.".into(),
                )
            })?;
            let currency = match params.get("currency") {
                Some(c) if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
                    c.to_ascii_lowercase()
                }
                Some(c) => {
                    return Err(Reply::invalid(
                        "parameter_invalid_string",
                        Some("currency"),
                        format!("Invalid currency: {c}"),
                    ));
                }
                None => {
                    return Err(Reply::invalid(
                        "parameter_missing",
                        Some("currency"),
                        "Missing required param: currency.".into(),
                    ));
                }
            };
            let method = params
                .get("payment_method")
                .map(payment_method)
                .transpose()?;
            let confirm = params.boolean("confirm")?;
            if confirm && method.is_none() {
                return Err(Reply::invalid(
                    "payment_intent_unexpected_state",
                    None,
                    "You cannot confirm this PaymentIntent because it's missing a payment method."
                        .into(),
                ));
            }
            Ok((amount, currency, method, confirm))
        })();
        let (amount, currency, method, confirm) = match checked {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let id = new_id("pi");
        let mut intent = Intent {
            client_secret: format!("{id}_secret_{}", &new_id("s")[2..]),
            id: id.clone(),
            amount,
            currency,
            status: if method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            },
            metadata: params.metadata(),
            payment_method: method.map(|(pm, _)| pm.to_owned()),
            last_payment_error: None,
            latest_charge: None,
            amount_refunded: 0,
            created: self.now(),
            canceled_at: None,
            cancellation_reason: None,
        };
        let reply = match method {
            Some((pm, decline)) if confirm => self.confirm(&mut intent, pm, decline),
            _ => Reply::ok(intent.json()),
        };
        data.intents.insert(id, intent);
        reply
    }

    fn confirm_intent(&self, data: &mut Data, params: &Params, id: &str) -> Reply {
        if let Err(reply) = params.only(&["payment_method", "return_url"], false) {
            return reply;
        }
        let Some(intent) = data.intents.get_mut(id) else {
            return Reply::missing("payment_intent", id, "intent", StatusCode::NOT_FOUND);
        };
        if !matches!(
            intent.status,
            "requires_payment_method" | "requires_confirmation"
        ) {
            return unexpected_state(intent, "confirm");
        }
        let chosen = params
            .get("payment_method")
            .or(intent.payment_method.as_deref());
        let Some(chosen) = chosen else {
            return Reply::invalid(
                "payment_intent_unexpected_state",
                None,
                "You cannot confirm this PaymentIntent because it's missing a payment method."
                    .into(),
            );
        };
        match payment_method(chosen) {
            Ok((pm, decline)) => self.confirm(intent, pm, decline),
            Err(reply) => reply,
        }
    }

    fn cancel_intent(&self, data: &mut Data, params: &Params, id: &str) -> Reply {
        if let Err(reply) = params.only(&["cancellation_reason"], false) {
            return reply;
        }
        let reason = match params.one_of("cancellation_reason", CANCELLATION_REASONS) {
            Ok(reason) => reason,
            Err(reply) => return reply,
        };
        let Some(intent) = data.intents.get_mut(id) else {
            return Reply::missing("payment_intent", id, "intent", StatusCode::NOT_FOUND);
        };
        if matches!(intent.status, "succeeded" | "canceled") {
            return unexpected_state(intent, "cancel");
        }
        intent.status = "canceled";
        intent.canceled_at = Some(self.now());
        intent.cancellation_reason = reason;
        self.emit("payment_intent.canceled", intent.json());
        Reply::ok(intent.json())
    }

    fn create_refund(&self, data: &mut Data, params: &Params) -> Reply {
        let checked = (|| {
            params.only(&["payment_intent", "amount", "reason"], true)?;
            let intent_id = params.get("payment_intent").ok_or_else(|| {
                Reply::invalid(
                    "parameter_missing",
                    Some("payment_intent"),
                    "Missing required param: payment_intent.".into(),
                )
            })?;
            Ok((
                intent_id.to_owned(),
                params.amount("amount")?,
                params.one_of("reason", REFUND_REASONS)?,
            ))
        })();
        let (intent_id, amount, reason) = match checked {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let Some(intent) = data.intents.get_mut(&intent_id) else {
            return Reply::missing(
                "payment_intent",
                &intent_id,
                "payment_intent",
                StatusCode::BAD_REQUEST,
            );
        };
        if intent.status != "succeeded" {
            return Reply::invalid(
                "payment_intent_unexpected_state",
                Some("payment_intent"),
                format!(
                    "This PaymentIntent ({}) does not have a successful charge to refund.",
                    intent.id
                ),
            );
        }
        let left = intent.amount - intent.amount_refunded;
        if left == 0 {
            return Reply::invalid(
                "charge_already_refunded",
                None,
                format!(
                    "Charge {} has already been refunded.",
                    intent.latest_charge.as_deref().unwrap_or("")
                ),
            );
        }
        let amount = amount.unwrap_or(left);
        if amount > left {
            return Reply::invalid(
                "amount_too_large",
                Some("amount"),
                format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
                ),
            );
        }
        intent.amount_refunded += amount;
        let refund = Refund {
            id: new_id("re"),
            payment_intent: intent.id.clone(),
            charge: intent.latest_charge.clone(),
            amount,
            currency: intent.currency.clone(),
            reason,
            metadata: params.metadata(),
            created: self.now(),
        };
        self.emit("refund.created", refund.json());
        self.emit("charge.refunded", intent.charge_json());
        let reply = Reply::ok(refund.json());
        data.refunds.insert(refund.id.clone(), refund);
        reply
    }
}

/// A known test payment method and its decline code, or Stripe's 400 for an unknown one.
fn payment_method(id: &str) -> Result<(&'static str, Option<&'static str>), Reply> {
    PAYMENT_METHODS
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(known, decline)| (*known, *decline))
        .ok_or_else(|| {
            Reply::missing(
                "PaymentMethod",
                id,
                "payment_method",
                StatusCode::BAD_REQUEST,
            )
        })
}

fn unexpected_state(intent: &Intent, action: &str) -> Reply {
    let mut reply = Reply::invalid(
        "payment_intent_unexpected_state",
        None,
        format!(
            "You cannot {action} this PaymentIntent because it has a status of {}.",
            intent.status
        ),
    );
    reply.body["error"]["payment_intent"] = intent.json();
    reply
}

async fn create_intent(State(api): Shared, headers: HeaderMap, body: Bytes) -> Response {
    api.post(
        &headers,
        "POST /v1/payment_intents",
        &body,
        |api, data, params| api.create_intent(data, params),
    )
}

async fn confirm_intent(
    State(api): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = format!("POST /v1/payment_intents/{id}/confirm");
    api.post(&headers, &route, &body, |api, data, params| {
        api.confirm_intent(data, params, &id)
    })
}

async fn cancel_intent(
    State(api): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = format!("POST /v1/payment_intents/{id}/cancel");
    api.post(&headers, &route, &body, |api, data, params| {
        api.cancel_intent(data, params, &id)
    })
}

async fn create_refund(State(api): Shared, headers: HeaderMap, body: Bytes) -> Response {
    api.post(&headers, "POST /v1/refunds", &body, |api, data, params| {
        api.create_refund(data, params)
    })
}

async fn retrieve_intent(
    State(api): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    let data = api.lock();
    match data.intents.get(&id) {
        Some(intent) => Reply::ok(intent.json()),
        None => Reply::missing("payment_intent", &id, "intent", StatusCode::NOT_FOUND),
    }
    .into_response_with(false)
}

async fn retrieve_refund(
    State(api): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    let data = api.lock();
    match data.refunds.get(&id) {
        Some(refund) => Reply::ok(refund.json()),
        None => Reply::missing("refund", &id, "id", StatusCode::NOT_FOUND),
    }
    .into_response_with(false)
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    Reply::error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
        format!("Unrecognized request URL ({method}: {}).", uri.path()),
    )
    .into_response_with(false)
}

// The control routes can pause, duplicate or reorder deliveries and show every event sent, so
// they take the same key as `/v1/*`: whoever could reach the port could otherwise steer the
// webhooks of a `serve` that runs the emulator.

async fn get_config(State(api): Shared, headers: HeaderMap) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    Json(api.outbox.switches()).into_response()
}

async fn set_config(State(api): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    // Read after the key is checked, so that a caller without it learns nothing from the body.
    let patch: SwitchesPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => {
            return Reply::invalid("parameter_invalid_json", None, format!("Invalid JSON: {e}"))
                .into_response_with(false);
        }
    };
    Json(api.outbox.patch_switches(&patch)).into_response()
}

async fn flush(State(api): Shared, headers: HeaderMap) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    api.outbox.flush();
    StatusCode::NO_CONTENT.into_response()
}

async fn events(State(api): Shared, headers: HeaderMap) -> Response {
    if let Err(reply) = api.authenticate(&headers) {
        return reply.into_response_with(false);
    }
    Json(api.outbox.deliveries()).into_response()
}
