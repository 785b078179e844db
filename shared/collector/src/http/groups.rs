//! One router per Lambda function. Each group is a slice of the whole API (`super::router`) over
//! the same handlers, finished with the same fallbacks and layers (`super::finish`), so a
//! function answers its routes exactly as `collector serve` does and anything else with our 404
//! or 405 body. API Gateway sends each function only its routes (template.yaml); the fallbacks
//! cover a misrouted request.
//!
//! | function | routes |
//! |---|---|
//! | `log` | `POST /api/interactions`, `POST /api/interactions/batch`, `GET /api/interactions`, `GET /api/interactions/{id}` |
//! | `submit` | `POST /api/feedback/submit` |
//! | `validate-log` | `POST /api/workflow/validate` |
//! | `stats` | `GET /api/feedback/stats`, `GET /api/health`, `GET /openapi.json` |
//! | `export` | `GET /api/feedback/export/{platform}` |
//! | `readiness` | `GET /api/feedback/readiness/{platform}` |
//! | `delete` | `DELETE /api/feedback/data/{id}`, `DELETE /api/feedback/data`, `DELETE /api/me/data`, `GET /api/me/data` |
//! | `curation` | `POST/GET /api/examples`, `DELETE /api/examples/{id}`, `POST/GET /api/training-metrics` |
//! | `archive-run` | `POST /api/feedback/archive` |
//!
//! `archive-run` is the admin's "archive now" over HTTP; the `archiver` function (schedule and
//! table stream) is not an HTTP function. Both need the same write access to the table and the
//! bucket, which no other group has.

use axum::Router;
use axum::routing::{delete, get, post};

use super::{HttpState, admin, data, feedback, finish, interactions, meta_router};

/// The function names, in the order of the table above.
pub const NAMES: [&str; 9] = ["log", "submit", "validate-log", "stats", "export", "readiness", "delete", "curation", "archive-run"];

/// The router of the function called `name`, if there is one.
pub fn by_name(name: &str, state: HttpState) -> Option<Router> {
    Some(match name {
        "log" => log(state),
        "submit" => submit(state),
        "validate-log" => validate_log(state),
        "stats" => stats(state),
        "export" => export(state),
        "readiness" => readiness(state),
        "delete" => delete_data(state),
        "curation" => curation(state),
        "archive-run" => archive_run(state),
        _ => return None,
    })
}

/// Logging and reading interactions.
pub fn log(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/interactions", post(interactions::log_interaction).get(interactions::list_interactions))
        .route("/api/interactions/batch", post(interactions::log_batch))
        .route("/api/interactions/{id}", get(interactions::get_interaction));
    finish(r, state)
}

/// Feedback on an interaction.
pub fn submit(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/submit", post(feedback::submit)), state)
}

/// Workflow validation, logged.
pub fn validate_log(state: HttpState) -> Router {
    finish(Router::new().route("/api/workflow/validate", post(interactions::validate)), state)
}

/// Storage statistics, plus the public health check and OpenAPI document.
pub fn stats(state: HttpState) -> Router {
    finish(meta_router().route("/api/feedback/stats", get(feedback::stats)), state)
}

/// Training export (admin).
pub fn export(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/export/{platform}", get(feedback::export_platform)), state)
}

/// Training readiness.
pub fn readiness(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/readiness/{platform}", get(feedback::readiness)), state)
}

/// Deletes and the right of access (function `delete`).
pub fn delete_data(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/feedback/data/{interaction_id}", delete(data::delete_one))
        .route("/api/feedback/data", delete(data::delete_user))
        .route("/api/me/data", delete(data::delete_me).get(data::my_data));
    finish(r, state)
}

/// Curated examples and training metrics (admin).
pub fn curation(state: HttpState) -> Router {
    let r = Router::new()
        .route("/api/examples", post(admin::add_example).get(admin::list_examples))
        .route("/api/examples/{id}", delete(admin::delete_example))
        .route("/api/training-metrics", post(admin::add_metric).get(admin::list_metrics));
    finish(r, state)
}

/// Archive now (admin), over HTTP.
pub fn archive_run(state: HttpState) -> Router {
    finish(Router::new().route("/api/feedback/archive", post(feedback::archive)), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the whole API is served by exactly one function (the public meta routes
    /// by `stats`), so the functions together are the API.
    #[test]
    fn the_groups_cover_the_api_once() {
        use utoipa::OpenApi;
        let doc = super::super::ApiDoc::openapi();
        let mut expected: Vec<(String, String)> = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [("GET", &item.get), ("POST", &item.post), ("DELETE", &item.delete), ("PUT", &item.put), ("PATCH", &item.patch)]
            {
                if op.is_some() {
                    expected.push((m.to_owned(), path.clone()));
                }
            }
        }
        expected.push(("GET".into(), "/openapi.json".into()));
        expected.sort();
        let mut served: Vec<(String, String)> =
            ROUTES.iter().flat_map(|(_, rs)| rs.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))).collect();
        served.sort();
        let before = served.len();
        served.dedup();
        assert_eq!(before, served.len(), "a route is in two groups");
        assert_eq!(served, expected);
        assert_eq!(ROUTES.iter().map(|(n, _)| *n).collect::<Vec<_>>(), NAMES);
    }

    /// The routes as template.yaml declares them (method, path), per function.
    pub(super) const ROUTES: [(&str, &[(&str, &str)]); 9] = [
        (
            "log",
            &[
                ("POST", "/api/interactions"),
                ("POST", "/api/interactions/batch"),
                ("GET", "/api/interactions"),
                ("GET", "/api/interactions/{id}"),
            ],
        ),
        ("submit", &[("POST", "/api/feedback/submit")]),
        ("validate-log", &[("POST", "/api/workflow/validate")]),
        ("stats", &[("GET", "/api/feedback/stats"), ("GET", "/api/health"), ("GET", "/openapi.json")]),
        ("export", &[("GET", "/api/feedback/export/{platform}")]),
        ("readiness", &[("GET", "/api/feedback/readiness/{platform}")]),
        (
            "delete",
            &[
                ("DELETE", "/api/feedback/data/{interaction_id}"),
                ("DELETE", "/api/feedback/data"),
                ("DELETE", "/api/me/data"),
                ("GET", "/api/me/data"),
            ],
        ),
        (
            "curation",
            &[
                ("POST", "/api/examples"),
                ("GET", "/api/examples"),
                ("DELETE", "/api/examples/{id}"),
                ("POST", "/api/training-metrics"),
                ("GET", "/api/training-metrics"),
            ],
        ),
        ("archive-run", &[("POST", "/api/feedback/archive")]),
    ];

    /// template.yaml sends each route to the function that serves it (its binary named in
    /// `Metadata.BuildProperties.Binary`), and nothing else.
    #[cfg(feature = "test-suite")]
    #[test]
    fn the_template_routes_match_the_groups() {
        let template: serde_yaml::Value = serde_yaml::from_str(include_str!("../../../../template.yaml")).unwrap();
        let mut declared: Vec<(String, String, String)> = Vec::new();
        for (_, res) in template["Resources"].as_mapping().unwrap() {
            if res["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
            for (_, ev) in res["Properties"]["Events"].as_mapping().into_iter().flatten() {
                if ev["Type"].as_str() == Some("HttpApi") {
                    let p = &ev["Properties"];
                    let method = p["Method"].as_str().unwrap().to_uppercase();
                    declared.push((binary.clone(), method, p["Path"].as_str().unwrap().to_owned()));
                }
            }
        }
        declared.sort();
        let mut expected: Vec<(String, String, String)> =
            ROUTES.iter().flat_map(|(n, rs)| rs.iter().map(|(m, p)| ((*n).to_owned(), (*m).to_owned(), (*p).to_owned()))).collect();
        expected.sort();
        assert_eq!(declared, expected);
    }
}
