//! The list convention: `?limit=&cursor=` in, `{"items": [...], "next_cursor": …}` out.

use boxoffice_app::page_limit;
use boxoffice_domain::text::Text;
use boxoffice_store::{Cursor, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// The longest cursor this server hands out (a title's key, hex-encoded, and an id).
pub const CURSOR_MAX: usize = 4096;

/// Which page of a list to read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items (1 to 200, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Text<{ CURSOR_MAX }>>,
}

impl PageQuery {
    /// The store's page request; a bad limit or cursor is a validation error.
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let limit = page_limit(self.limit)?;
        let after =
            match self.cursor.as_deref() {
                Some(text) if !text.is_empty() => Some(Cursor::decode(text).map_err(|e| {
                    ApiError::validation(boxoffice_domain::ValidationErrors::from(e))
                })?),
                _ => None,
            };
        Ok(PageRequest { limit, after })
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Maps a store page into the response shape.
    pub fn from_page<U>(page: Page<U>, f: impl Fn(U) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(f).collect(),
            next_cursor: page.next.map(|c| c.to_string()),
        }
    }

    /// A complete list that needs no further pages.
    pub fn all(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}
