//! The site's static files, embedded in the binary. Each is served under a name carrying a hash
//! of its content (`app.3f9a1c2b7d.js`), so it can be cached for a year: a new build that changes
//! a file changes its URL.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::WebState;

/// One embedded file.
struct Asset {
    /// Its name before hashing: `app.js`.
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: [Asset; 5] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "admin.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/admin.css"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/admin.js"),
    },
    // Pinned: htmx 2.0.8 from npm (htmx.org, dist/htmx.min.js); 4.x is a breaking major.
    Asset {
        name: "htmx.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/htmx-2.0.8.min.js"),
    },
];

/// The URLs the pages link.
pub struct Urls {
    /// The style sheet.
    pub css: String,
    /// The site's module.
    pub js: String,
    /// htmx.
    pub htmx: String,
    /// The back office's style sheet, on top of the site's.
    pub admin_css: String,
    /// The back office's module.
    pub admin_js: String,
    /// Hashed name → file.
    by_name: Vec<(String, &'static Asset)>,
}

/// The hashed URLs, worked out once.
pub fn urls() -> &'static Urls {
    static URLS: OnceLock<Urls> = OnceLock::new();
    URLS.get_or_init(|| {
        let by_name: Vec<(String, &'static Asset)> = FILES
            .iter()
            .map(|asset| (hashed_name(asset), asset))
            .collect();
        let url = |name: &str| {
            by_name
                .iter()
                .find(|(_, a)| a.name == name)
                .map(|(hashed, _)| format!("/assets/{hashed}"))
                .unwrap_or_default()
        };
        Urls {
            css: url("app.css"),
            js: url("app.js"),
            htmx: url("htmx.js"),
            admin_css: url("admin.css"),
            admin_js: url("admin.js"),
            by_name,
        }
    })
}

fn hashed_name(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.bytes);
    let hash = hex::encode(&digest[..5]);
    match asset.name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{}.{hash}", asset.name),
    }
}

pub fn routes() -> Router<WebState> {
    Router::new().route("/assets/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    match urls().by_name.iter().find(|(name, _)| *name == file) {
        Some((_, asset)) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                (
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_distinct_hashed_url() {
        let urls = urls();
        for url in [
            &urls.css,
            &urls.js,
            &urls.htmx,
            &urls.admin_css,
            &urls.admin_js,
        ] {
            assert!(url.starts_with("/assets/"), "{url}");
        }
        assert_ne!(urls.css, urls.js);
        assert!(urls.htmx.ends_with(".js") && urls.htmx.contains("htmx."));
    }
}
