//! The film catalogue: what a movie is and which values of it are acceptable.

use chrono::{DateTime, NaiveDate, Utc};

use crate::MovieId;
use crate::validation::{ValidationErrors, Validator, optional_text, required_text};

/// The longest runtime we accept, in minutes (a typo guard: the longest features run ~10 h).
pub const MAX_RUNTIME_MINUTES: i64 = 900;
/// The longest title, in characters.
pub const TITLE_MAX: usize = 200;
/// The longest age rating.
pub const CERTIFICATE_MAX: usize = 16;
/// The longest synopsis.
pub const SYNOPSIS_MAX: usize = 5000;
/// The longest entry of a tag list.
pub const TAG_MAX: usize = 40;
/// The most entries a tag list (genres, languages, amenities) may have.
pub const MAX_TAGS: usize = 20;

/// A film of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movie {
    /// Its id.
    pub id: MovieId,
    /// What staff entered about it.
    pub details: MovieDetails,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The editable facts of a movie, all validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovieDetails {
    /// Title as shown to customers.
    pub title: String,
    /// Running time without ads, in minutes (1..=900).
    pub runtime_minutes: u16,
    /// Age rating (`PG-13`, `12A`, `FSK 12`); may be empty when not yet rated.
    pub certificate: String,
    /// Genres, trimmed and de-duplicated.
    pub genres: Vec<String>,
    /// Spoken languages, trimmed and de-duplicated.
    pub languages: Vec<String>,
    /// Free-text synopsis.
    pub synopsis: String,
    /// First release date, when known.
    pub release_date: Option<NaiveDate>,
}

/// Unvalidated movie fields as a client sent them; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct MovieInput {
    /// See [`MovieDetails::title`].
    pub title: Option<String>,
    /// See [`MovieDetails::runtime_minutes`].
    pub runtime_minutes: Option<i64>,
    /// See [`MovieDetails::certificate`].
    pub certificate: Option<String>,
    /// See [`MovieDetails::genres`].
    pub genres: Option<Vec<String>>,
    /// See [`MovieDetails::languages`].
    pub languages: Option<Vec<String>>,
    /// See [`MovieDetails::synopsis`].
    pub synopsis: Option<String>,
    /// See [`MovieDetails::release_date`]; `Some(None)` clears it.
    pub release_date: Option<Option<NaiveDate>>,
}

impl MovieDetails {
    /// Validates a new movie: title and runtime are required.
    pub fn create(input: MovieInput) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        if input.title.is_none() {
            v.error("title", "is required");
        }
        if input.runtime_minutes.is_none() {
            v.error("runtime_minutes", "is required");
        }
        let blank = MovieDetails {
            title: String::new(),
            runtime_minutes: 0,
            certificate: String::new(),
            genres: Vec::new(),
            languages: Vec::new(),
            synopsis: String::new(),
            release_date: None,
        };
        let patched = blank.apply(input, &mut v);
        v.finish().map(|()| patched)
    }

    /// Validates a partial update on top of the current details.
    pub fn patch(&self, input: MovieInput) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let patched = self.clone().apply(input, &mut v);
        v.finish().map(|()| patched)
    }

    fn apply(mut self, input: MovieInput, v: &mut Validator) -> Self {
        if let Some(value) = input
            .title
            .and_then(|x| v.check("title", required_text(&x, TITLE_MAX)))
        {
            self.title = value;
        }
        if let Some(value) = input
            .runtime_minutes
            .and_then(|x| v.check("runtime_minutes", parse_runtime(x)))
        {
            self.runtime_minutes = value;
        }
        if let Some(value) = input
            .certificate
            .and_then(|x| v.check("certificate", optional_text(&x, CERTIFICATE_MAX)))
        {
            self.certificate = value;
        }
        if let Some(value) = input.genres.and_then(|x| v.check("genres", parse_tags(x))) {
            self.genres = value;
        }
        if let Some(value) = input
            .languages
            .and_then(|x| v.check("languages", parse_tags(x)))
        {
            self.languages = value;
        }
        if let Some(value) = input
            .synopsis
            .and_then(|x| v.check("synopsis", optional_text(&x, SYNOPSIS_MAX)))
        {
            self.synopsis = value;
        }
        if let Some(date) = input.release_date {
            self.release_date = date;
        }
        self
    }
}

/// Checks a runtime in minutes.
pub fn parse_runtime(minutes: i64) -> Result<u16, String> {
    if (1..=MAX_RUNTIME_MINUTES).contains(&minutes) {
        Ok(minutes as u16)
    } else {
        Err(format!(
            "must be between 1 and {MAX_RUNTIME_MINUTES} minutes"
        ))
    }
}

/// Trims every tag, drops duplicates (case-insensitively, keeping the first spelling) and checks
/// the count and each length.
pub fn parse_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = required_text(&tag, TAG_MAX).map_err(|e| format!("every entry {e}"))?;
        if !out.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(format!("must have at most {MAX_TAGS} entries"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> MovieInput {
        MovieInput {
            title: Some("  Dune  ".into()),
            runtime_minutes: Some(155),
            genres: Some(vec!["Sci-Fi".into(), "sci-fi".into(), " Drama ".into()]),
            ..MovieInput::default()
        }
    }

    #[test]
    fn a_movie_is_normalised() {
        let m = MovieDetails::create(input()).unwrap();
        assert_eq!(m.title, "Dune");
        assert_eq!(m.runtime_minutes, 155);
        assert_eq!(m.genres, ["Sci-Fi", "Drama"]);
    }

    #[test]
    fn missing_and_bad_fields_are_all_reported() {
        let errors = MovieDetails::create(MovieInput {
            runtime_minutes: Some(0),
            genres: Some(vec!["".into()]),
            ..MovieInput::default()
        })
        .unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "runtime_minutes", "genres"]);
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let m = MovieDetails::create(input()).unwrap();
        let p = m
            .patch(MovieInput {
                runtime_minutes: Some(160),
                ..MovieInput::default()
            })
            .unwrap();
        assert_eq!(p.runtime_minutes, 160);
        assert_eq!(p.title, m.title);
        assert!(
            m.patch(MovieInput {
                title: Some(" ".into()),
                ..MovieInput::default()
            })
            .is_err()
        );
    }
}
