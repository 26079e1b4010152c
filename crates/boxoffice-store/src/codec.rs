//! Conversions between domain values and the column values both adapters store (text and JSON),
//! so that the SQLite and PostgreSQL adapters decode rows the same way.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use boxoffice_domain::booking::{BookingItem, BookingStatus, TicketDiscounts, TicketType};
use boxoffice_domain::identity::{Email, Profile, Role};
use boxoffice_domain::layout::{SeatSpec, SeatType};
use boxoffice_domain::schedule::{PriceCard, ShowtimeStatus};
use boxoffice_domain::{Currency, SeatId};
use chrono_tz::Tz;

/// A price card as a JSON object `{"standard": 1200}`.
pub fn prices_to_json(card: &PriceCard) -> String {
    let map: BTreeMap<&str, i64> = card.0.iter().map(|(t, a)| (t.as_str(), *a)).collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads a price card stored by [`prices_to_json`].
pub fn prices_from_json(text: &str) -> anyhow::Result<PriceCard> {
    let raw: BTreeMap<String, i64> = serde_json::from_str(text).context("price card")?;
    let mut card = BTreeMap::new();
    for (key, amount) in raw {
        let seat_type = key.parse::<SeatType>().map_err(|e| anyhow!(e))?;
        card.insert(seat_type, amount);
    }
    Ok(PriceCard(card))
}

/// A cinema's ticket discounts as a JSON object `{"child": 25}`.
pub fn discounts_to_json(discounts: &TicketDiscounts) -> String {
    serde_json::to_string(&discounts.to_map()).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads discounts stored by [`discounts_to_json`].
pub fn discounts_from_json(text: &str) -> anyhow::Result<TicketDiscounts> {
    let raw: BTreeMap<String, i64> = serde_json::from_str(text).context("ticket discounts")?;
    TicketDiscounts::parse(&raw).map_err(|e| anyhow!("stored ticket discounts: {e}"))
}

/// Reads a stored booking status.
pub fn booking_status(text: &str) -> anyhow::Result<BookingStatus> {
    BookingStatus::parse(text).ok_or_else(|| anyhow!("stored booking status {text:?} is unknown"))
}

/// Reads a stored booking reference (its compact form).
pub fn booking_reference(
    text: &str,
) -> anyhow::Result<boxoffice_domain::booking::BookingReference> {
    boxoffice_domain::booking::BookingReference::parse(text)
        .ok_or_else(|| anyhow!("stored booking reference {text:?} is malformed"))
}

/// Reads a stored payment status.
pub fn payment_status(text: &str) -> anyhow::Result<boxoffice_domain::payment::PaymentStatus> {
    boxoffice_domain::payment::PaymentStatus::parse(text)
        .ok_or_else(|| anyhow!("stored payment status {text:?} is unknown"))
}

/// Reads a stored refund state.
pub fn refund_state(text: &str) -> anyhow::Result<boxoffice_domain::payment::RefundState> {
    boxoffice_domain::payment::RefundState::parse(text)
        .ok_or_else(|| anyhow!("stored refund state {text:?} is unknown"))
}

/// Rebuilds a booking item from its stored columns.
pub fn booking_item(
    seat_id: uuid::Uuid,
    label: String,
    seat_type: &str,
    ticket_type: &str,
    price: i64,
) -> anyhow::Result<BookingItem> {
    Ok(BookingItem {
        seat_id: SeatId(seat_id),
        label,
        seat_type: seat_type.parse::<SeatType>().map_err(|e| anyhow!(e))?,
        ticket_type: TicketType::parse(ticket_type)
            .ok_or_else(|| anyhow!("stored ticket type {ticket_type:?} is unknown"))?,
        price,
    })
}

/// A list of strings (tags, layout rows) as a JSON array.
pub fn strings_to_json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads a list stored by [`strings_to_json`].
pub fn strings_from_json(text: &str) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(text).context("string list")
}

/// Reads a stored IANA timezone name.
pub fn timezone(name: &str) -> anyhow::Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| anyhow!("stored timezone {name:?} is unknown"))
}

/// Reads a stored currency code.
pub fn currency(code: &str) -> anyhow::Result<Currency> {
    code.parse::<Currency>().map_err(|e| anyhow!(e))
}

/// Reads a stored showtime status.
pub fn showtime_status(text: &str) -> anyhow::Result<ShowtimeStatus> {
    ShowtimeStatus::parse(text).ok_or_else(|| anyhow!("stored showtime status {text:?} is unknown"))
}

/// Rebuilds a seat's position and type from its stored columns.
pub fn seat_spec(
    row: String,
    number: i64,
    label: String,
    row_index: i64,
    column: i64,
    seat_type: &str,
) -> anyhow::Result<SeatSpec> {
    Ok(SeatSpec {
        row,
        number: u16::try_from(number).context("seat number")?,
        label,
        row_index: u16::try_from(row_index).context("seat row index")?,
        column: u16::try_from(column).context("seat column")?,
        seat_type: seat_type.parse::<SeatType>().map_err(|e| anyhow!(e))?,
    })
}

/// Reads a stored role.
pub fn role(text: &str) -> anyhow::Result<Role> {
    text.parse::<Role>()
        .map_err(|_| anyhow!("stored role {text:?} is unknown"))
}

/// Rebuilds a profile from its nullable columns (all null once the account is erased).
pub fn profile(
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
) -> anyhow::Result<Option<Profile>> {
    match (email, name) {
        (Some(email), Some(name)) => Ok(Some(Profile {
            email: Email::parse(&email).map_err(|e| anyhow!("stored email: {e}"))?,
            name,
            phone,
        })),
        _ => Ok(None),
    }
}

/// The case-folded form of a title that title search matches against.
pub fn search_key(text: &str) -> String {
    text.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_cards_round_trip() {
        let card = PriceCard(BTreeMap::from([
            (SeatType::Standard, 1200),
            (SeatType::Wheelchair, 0),
        ]));
        let text = prices_to_json(&card);
        assert_eq!(text, r#"{"standard":1200,"wheelchair":0}"#);
        assert_eq!(prices_from_json(&text).unwrap(), card);
        assert!(prices_from_json(r#"{"vip":1}"#).is_err());
    }
}
