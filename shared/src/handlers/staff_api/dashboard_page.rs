//! The operations dashboard's page, `GET /admin/dashboard/page`: one self-contained HTML document
//! (its style, the vendored Chart.js and its own script inlined) served behind the same JWT
//! authorizer and role as the figures it reads. It holds no figures and no token; its script
//! reads `GET /admin/dashboard` beside it and refreshes itself.
//!
//! Its Content-Security-Policy allows exactly the inlined style and scripts (by their SHA-256),
//! requests to its own origin, and nothing else: no CDN, no frames, no forms.

use base64::Engine;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const TEMPLATE: &str = include_str!("../../../assets/dashboard/page.html");
const STYLE: &str = include_str!("../../../assets/dashboard/page.css");
const SCRIPT: &str = include_str!("../../../assets/dashboard/page.js");
/// Chart.js 4.5.1's UMD build as npm publishes it (`tests/browser/package.json` pins the same
/// version; a test requires the two files to be identical).
const CHART_JS: &str = include_str!("../../../assets/vendor/chart.js/chart.umd.min.js");

/// The page and its policy, assembled once per process.
struct Page {
    html: String,
    policy: String,
}

/// `'sha256-…'` of an inline element's text, as CSP compares it.
fn source_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn page() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        // Each placeholder holds the text of its element; none of the inlined texts contains
        // another's placeholder, so the order of replacement does not matter.
        let html = TEMPLATE.replacen("/*STYLE*/", STYLE, 1).replacen("/*CHART*/", CHART_JS, 1).replacen(
            "/*SCRIPT*/",
            SCRIPT,
            1,
        );
        let policy = format!(
            "default-src 'none'; script-src {} {}; style-src {}; connect-src 'self'; img-src 'self' data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            source_hash(CHART_JS),
            source_hash(SCRIPT),
            source_hash(STYLE),
        );
        Page { html, policy }
    })
}

/// The page, never cached (it is behind the staff auth) and never framed.
pub(super) fn serve() -> Response<Body> {
    let page = page();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, page.policy.as_str())
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(Body::Text(page.html.clone()))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_inlines_each_part_once_and_its_policy_allows_exactly_those() {
        let page = page();
        for part in [STYLE, CHART_JS, SCRIPT] {
            assert_eq!(page.html.matches(part).count(), 1);
            assert!(page.policy.contains(&source_hash(part)));
        }
        assert!(!page.html.contains("/*STYLE*/") && !page.html.contains("/*SCRIPT*/"));
        let inline_links = TEMPLATE.matches("href=\"data:").count();
        assert!(
            !TEMPLATE.contains("src=") && TEMPLATE.matches("href=").count() == inline_links,
            "nothing from elsewhere"
        );
    }
}
