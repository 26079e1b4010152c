//! Seat layouts: the grid of characters a hall is described with, and the seats generated from
//! it. One string per row, front row first; rows are labelled A, B, … Z, AA, AB, …; seats are
//! numbered from 1 within a row, left to right, skipping gaps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a seat, which decides its price on a showtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatType {
    /// `s`: an ordinary seat.
    Standard,
    /// `p`: a premium seat.
    Premium,
    /// `r`: a recliner.
    Recliner,
    /// `w`: a space for a wheelchair.
    Wheelchair,
    /// `c`: a companion seat next to a wheelchair space.
    Companion,
    /// `x`: a seat that exists but is never sold (broken, reserved for the house).
    Blocked,
}

impl SeatType {
    /// Every seat type, in a stable order.
    pub const ALL: [SeatType; 6] = [
        SeatType::Standard,
        SeatType::Premium,
        SeatType::Recliner,
        SeatType::Wheelchair,
        SeatType::Companion,
        SeatType::Blocked,
    ];

    /// The layout character for this type.
    pub fn symbol(self) -> char {
        match self {
            SeatType::Standard => 's',
            SeatType::Premium => 'p',
            SeatType::Recliner => 'r',
            SeatType::Wheelchair => 'w',
            SeatType::Companion => 'c',
            SeatType::Blocked => 'x',
        }
    }

    /// The type a layout character stands for; `None` for a gap or an unknown character.
    pub fn from_symbol(symbol: char) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.symbol() == symbol)
    }

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatType::Standard => "standard",
            SeatType::Premium => "premium",
            SeatType::Recliner => "recliner",
            SeatType::Wheelchair => "wheelchair",
            SeatType::Companion => "companion",
            SeatType::Blocked => "blocked",
        }
    }

    /// Whether a seat of this type can ever be sold (and so needs a price).
    pub fn is_sellable(self) -> bool {
        self != SeatType::Blocked
    }
}

impl FromStr for SeatType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown seat type `{s}`"))
    }
}

impl fmt::Display for SeatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The character that marks a gap (aisle, missing seat).
pub const GAP: char = '_';
/// The most rows a hall may have.
pub const MAX_ROWS: usize = 100;
/// The most characters (seats and gaps) a row may have.
pub const MAX_ROW_WIDTH: usize = 100;

/// A seat as generated from a layout, before it has an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatSpec {
    /// Row label: `A` for the front row.
    pub row: String,
    /// Seat number within the row, from 1, gaps skipped.
    pub number: u16,
    /// `row` + `number`, as printed on a ticket (`A1`).
    pub label: String,
    /// Zero-based row index (front row 0), for drawing the map.
    pub row_index: u16,
    /// Zero-based column in the grid including gaps, for drawing the map.
    pub column: u16,
    /// What kind of seat it is.
    pub seat_type: SeatType,
}

/// Why a layout was rejected; each names the row (zero-based) where it applies.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The layout has no rows at all.
    #[error("the layout has no rows")]
    NoRows,
    /// More rows than [`MAX_ROWS`].
    #[error("the layout has more than {MAX_ROWS} rows")]
    TooManyRows,
    /// A row is an empty string.
    #[error("row {row} is empty")]
    EmptyRow {
        /// Zero-based row index.
        row: usize,
    },
    /// A row is wider than [`MAX_ROW_WIDTH`].
    #[error("row {row} is longer than {MAX_ROW_WIDTH} characters")]
    RowTooWide {
        /// Zero-based row index.
        row: usize,
    },
    /// A character that is neither a seat type nor a gap.
    #[error("row {row} has an unknown character `{symbol}` at position {column}")]
    UnknownCharacter {
        /// Zero-based row index.
        row: usize,
        /// Zero-based position in the row.
        column: usize,
        /// The offending character.
        symbol: char,
    },
    /// Every character of every row is a gap.
    #[error("the layout has no seat")]
    NoSeats,
}

impl LayoutError {
    /// The request field the error belongs to (`layout` or `layout[3]`).
    pub fn field(&self) -> String {
        match self {
            LayoutError::EmptyRow { row }
            | LayoutError::RowTooWide { row }
            | LayoutError::UnknownCharacter { row, .. } => format!("layout[{row}]"),
            _ => "layout".to_owned(),
        }
    }
}

/// A validated layout and the seats it generates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatLayout {
    rows: Vec<String>,
    seats: Vec<SeatSpec>,
}

impl SeatLayout {
    /// Parses a layout grid. Rejects unknown characters, empty rows, oversize grids and grids with
    /// no seat.
    pub fn parse<S: AsRef<str>>(rows: &[S]) -> Result<Self, LayoutError> {
        if rows.is_empty() {
            return Err(LayoutError::NoRows);
        }
        if rows.len() > MAX_ROWS {
            return Err(LayoutError::TooManyRows);
        }
        let mut seats = Vec::new();
        for (row_index, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.is_empty() {
                return Err(LayoutError::EmptyRow { row: row_index });
            }
            if row.chars().count() > MAX_ROW_WIDTH {
                return Err(LayoutError::RowTooWide { row: row_index });
            }
            let label = row_label(row_index);
            let mut number: u16 = 0;
            for (column, symbol) in row.chars().enumerate() {
                if symbol == GAP {
                    continue;
                }
                let seat_type =
                    SeatType::from_symbol(symbol).ok_or(LayoutError::UnknownCharacter {
                        row: row_index,
                        column,
                        symbol,
                    })?;
                number += 1;
                seats.push(SeatSpec {
                    label: format!("{label}{number}"),
                    row: label.clone(),
                    number,
                    // Both bounded by MAX_ROWS and MAX_ROW_WIDTH, far below u16::MAX.
                    row_index: row_index as u16,
                    column: column as u16,
                    seat_type,
                });
            }
        }
        if seats.is_empty() {
            return Err(LayoutError::NoSeats);
        }
        Ok(Self {
            rows: rows.iter().map(|r| r.as_ref().to_owned()).collect(),
            seats,
        })
    }

    /// The rows as given.
    pub fn rows(&self) -> &[String] {
        &self.rows
    }

    /// The seats, row by row, left to right.
    pub fn seats(&self) -> &[SeatSpec] {
        &self.seats
    }

    /// The distinct seat types present, in [`SeatType::ALL`] order.
    pub fn seat_types(&self) -> Vec<SeatType> {
        seat_types_of(self.seats.iter().map(|s| s.seat_type))
    }
}

/// The distinct seat types among `types`, in [`SeatType::ALL`] order.
pub fn seat_types_of(types: impl IntoIterator<Item = SeatType>) -> Vec<SeatType> {
    let mut present = [false; SeatType::ALL.len()];
    for t in types {
        present[t as usize] = true;
    }
    SeatType::ALL
        .into_iter()
        .filter(|t| present[*t as usize])
        .collect()
}

/// The label of the row at `index` (zero-based): A … Z, AA … AZ, BA …, like spreadsheet columns.
pub fn row_label(index: usize) -> String {
    let mut n = index + 1;
    let mut label = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        label.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    label.reverse();
    String::from_utf8_lossy(&label).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_api_example_parses_as_documented() {
        let layout =
            SeatLayout::parse(&["ssss_ssss", "ssss_ssss", "pppp_pppp", "wc_____cw"]).unwrap();
        let labels: Vec<_> = layout.seats().iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            &labels[..9],
            ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "B1"]
        );
        let last_row: Vec<_> = layout
            .seats()
            .iter()
            .filter(|s| s.row == "D")
            .map(|s| (s.label.as_str(), s.seat_type, s.column))
            .collect();
        assert_eq!(
            last_row,
            [
                ("D1", SeatType::Wheelchair, 0),
                ("D2", SeatType::Companion, 1),
                ("D3", SeatType::Companion, 7),
                ("D4", SeatType::Wheelchair, 8),
            ]
        );
        assert_eq!(
            layout.seat_types(),
            [
                SeatType::Standard,
                SeatType::Premium,
                SeatType::Wheelchair,
                SeatType::Companion
            ]
        );
    }

    #[test]
    fn bad_layouts_are_rejected_with_the_row() {
        assert_eq!(SeatLayout::parse::<&str>(&[]), Err(LayoutError::NoRows));
        assert_eq!(
            SeatLayout::parse(&["ss", ""]),
            Err(LayoutError::EmptyRow { row: 1 })
        );
        assert_eq!(SeatLayout::parse(&["___", "_"]), Err(LayoutError::NoSeats));
        assert_eq!(
            SeatLayout::parse(&["ss", "sSs"]),
            Err(LayoutError::UnknownCharacter {
                row: 1,
                column: 1,
                symbol: 'S'
            })
        );
        let too_many: Vec<String> = vec!["s".into(); MAX_ROWS + 1];
        assert_eq!(SeatLayout::parse(&too_many), Err(LayoutError::TooManyRows));
        let too_wide = "s".repeat(MAX_ROW_WIDTH + 1);
        assert_eq!(
            SeatLayout::parse(&[too_wide]),
            Err(LayoutError::RowTooWide { row: 0 })
        );
    }

    #[test]
    fn row_labels_continue_past_z() {
        assert_eq!(row_label(0), "A");
        assert_eq!(row_label(25), "Z");
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(27), "AB");
        assert_eq!(row_label(51), "AZ");
        assert_eq!(row_label(52), "BA");
    }

    fn layout_char() -> impl Strategy<Value = char> {
        prop::sample::select(vec!['s', 'p', 'r', 'w', 'c', 'x', '_'])
    }

    fn row() -> impl Strategy<Value = String> {
        prop::collection::vec(layout_char(), 1..30).prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn every_seat_is_numbered_from_one_across_gaps(rows in prop::collection::vec(row(), 1..40)) {
            match SeatLayout::parse(&rows) {
                Err(LayoutError::NoSeats) => {
                    prop_assert!(rows.iter().all(|r| r.chars().all(|c| c == GAP)));
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                Ok(layout) => {
                    let expected: usize = rows.iter().map(|r| r.chars().filter(|c| *c != GAP).count()).sum();
                    prop_assert_eq!(layout.seats().len(), expected);
                    for (i, row) in rows.iter().enumerate() {
                        let in_row: Vec<_> = layout.seats().iter().filter(|s| s.row_index as usize == i).collect();
                        let seat_columns: Vec<usize> = row.char_indices().filter(|(_, c)| *c != GAP).map(|(col, _)| col).collect();
                        prop_assert_eq!(in_row.len(), seat_columns.len());
                        for (n, (seat, col)) in in_row.iter().zip(&seat_columns).enumerate() {
                            prop_assert_eq!(seat.number as usize, n + 1);
                            prop_assert_eq!(seat.column as usize, *col);
                            prop_assert_eq!(&seat.row, &row_label(i));
                            prop_assert_eq!(&seat.label, &format!("{}{}", row_label(i), n + 1));
                            prop_assert_eq!(seat.seat_type.symbol(), row.as_bytes()[*col] as char);
                        }
                    }
                    let mut labels: Vec<_> = layout.seats().iter().map(|s| s.label.clone()).collect();
                    labels.sort();
                    labels.dedup();
                    prop_assert_eq!(labels.len(), layout.seats().len(), "labels must be unique");
                }
            }
        }

        #[test]
        fn every_foreign_character_is_rejected(
            rows in prop::collection::vec(row(), 1..10),
            bad in any::<char>().prop_filter("not a layout character", |c| *c != GAP && SeatType::from_symbol(*c).is_none()),
            at_row in any::<prop::sample::Index>(),
            at_col in any::<prop::sample::Index>(),
        ) {
            let mut rows = rows;
            let r = at_row.index(rows.len());
            let mut chars: Vec<char> = rows[r].chars().collect();
            let c = at_col.index(chars.len());
            chars[c] = bad;
            rows[r] = chars.into_iter().collect();
            let err = SeatLayout::parse(&rows).unwrap_err();
            let is_expected = matches!(err, LayoutError::UnknownCharacter { .. });
            prop_assert!(is_expected, "unexpected error {:?}", err);
            if let LayoutError::UnknownCharacter { row, symbol, .. } = err {
                // The first bad character found is ours unless an earlier row had none: rows
                // before `r` are all valid, so it must be in row `r`.
                prop_assert_eq!(row, r);
                prop_assert_eq!(symbol, bad);
            }
        }

        #[test]
        fn row_labels_are_unique(a in 0usize..2000, b in 0usize..2000) {
            prop_assume!(a != b);
            prop_assert_ne!(row_label(a), row_label(b));
        }
    }
}
