//! The admin dashboard (`GET /admin`): one static page, its script and its style sheet, embedded
//! in the binary. The page holds no data and needs no identity; everything it shows comes from the
//! API with the bearer token the admin pastes in (kept in the tab's sessionStorage). It is served
//! by `collector serve` and, on AWS, by the `readiness` function (template.yaml, no authorizer).
//!
//! It is not in `/openapi.json`: it is not part of the JSON API but a viewer of it, like `/docs`,
//! and a client generated from the document has nothing to call there.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this origin
//! only (no inline script, no `eval`), `fetch` to this origin only, images as `data:` only, no
//! frames, no plugins, forms nowhere. The files change only with the binary, so they may be
//! cached for a short while but are revalidated (`no-cache` would do too; the page is small).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE_HTML: &str = include_str!("dashboard/admin.html");
const SCRIPT_JS: &str = include_str!("dashboard/dashboard.js");
const STYLE_CSS: &str = include_str!("dashboard/dashboard.css");

/// The page's routes (all GET, public; the `readiness` function's rows flagged `page` in the route
/// table), outside the OpenAPI document.
pub const PAGE_ROUTES: [&str; 3] = ["/admin", "/admin/dashboard.js", "/admin/dashboard.css"];

/// The policy every dashboard answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn static_answer(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        body,
    )
        .into_response()
}

/// The page.
pub async fn page() -> Response {
    static_answer("text/html; charset=utf-8", PAGE_HTML)
}

/// The page's script.
pub async fn script() -> Response {
    static_answer("text/javascript; charset=utf-8", SCRIPT_JS)
}

/// The page's style sheet.
pub async fn style() -> Response {
    static_answer("text/css; charset=utf-8", STYLE_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_script_and_style_from_this_origin_and_inlines_none() {
        assert!(PAGE_HTML.contains(r#"<script src="/admin/dashboard.js" defer></script>"#));
        assert!(PAGE_HTML.contains(r#"<link rel="stylesheet" href="/admin/dashboard.css">"#));
        // No inline script or handler, no style attribute: the policy would block them.
        let lower = PAGE_HTML.to_lowercase();
        assert_eq!(lower.matches("<script").count(), 1, "one script tag, the external one");
        assert!(!lower.contains(" onclick=") && !lower.contains(" onload=") && !lower.contains(" style="));
        // Nothing from elsewhere (works offline).
        for text in [PAGE_HTML, SCRIPT_JS, STYLE_CSS] {
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "SVG_NS");
            assert!(!text.contains("http://") && !text.contains("https://"), "no absolute URL");
        }
        // Data goes into the page as text only.
        assert!(!SCRIPT_JS.contains("innerHTML"), "the script never writes HTML");
        assert!(!SCRIPT_JS.contains("eval("));
    }
}
