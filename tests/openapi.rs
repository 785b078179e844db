//! `/openapi.json` documents the API as it answers: the bearer JWT scheme on every route but the
//! public ones, every route the router serves (and none it does not), and the statuses a client
//! meets (401 on every secured route, 403 where a role is checked, the error body).
//! infra/schemathesis.sh fuzzes the same document against the release binary.

use std::collections::BTreeSet;

use collector::http::routes::ROUTES;
use collector_e2e::{Who, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// Routes anyone may call: no identity needed (CONTRACT section 1).
const PUBLIC: [(&str, &str); 2] = [("get", "/api/health"), ("get", "/openapi.json")];

async fn document(app: &collector_e2e::TestApp) -> Value {
    let r = app.get("/openapi.json", Who::Anon).await;
    r.expect(200, None);
    r.json()
}

/// (method, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// (method, path) of every route the routers serve: the rows of the route table
/// (`collector::http::routes::ROUTES`), which `collector serve` merges and the Lambda functions
/// split. Swagger UI's own routes (`/docs`) are not among them.
fn routes_served() -> BTreeSet<(String, String)> {
    let rows: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.method.as_str().to_lowercase(), r.path.to_owned())).collect();
    assert_eq!(rows.len(), ROUTES.len(), "a route is in two rows");
    rows
}

/// The routers are built from the table and nothing else: no HTTP module adds a route of its own
/// (`.route(` is called once, in `routes.rs`, with a row's path).
fn no_route_outside_the_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/collector/src/http");
    for entry in std::fs::read_dir(&dir).expect("http sources") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read source");
        // A module's own tests may build a router of their own (`http::body`'s middleware tests).
        let served = src.split("\n#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let calls = served.matches(".route(").count();
        if path.file_name().is_some_and(|n| n == "routes.rs") {
            assert_eq!(calls, 1, "{}: one .route( call, the table's", path.display());
            assert!(src.contains(".route(route.path, "), "{}: the table's rows are routed", path.display());
        } else {
            assert_eq!(calls, 0, "{} adds a route outside the table", path.display());
        }
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-7000-8000-000000000000")
        .replace("{interaction_id}", "00000000-0000-7000-8000-000000000000")
        .replace("{platform}", "n8n")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).expect("method")
}

#[tokio::test]
async fn the_document_has_the_bearer_jwt_scheme_on_every_route_but_the_public_ones() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1: {}", doc["openapi"]);

    let schemes = doc["components"]["securitySchemes"].as_object().expect("securitySchemes");
    assert_eq!(schemes.len(), 1, "one scheme: {schemes:?}");
    let (name, scheme) = schemes.iter().next().expect("a scheme");
    assert_eq!(scheme, &json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}));
    assert_eq!(doc["security"], json!([{ name.as_str(): [] }]), "the scheme applies to every operation by default");

    for (m, path) in operations(&doc) {
        let op = &doc["paths"][&path][&m];
        let public = PUBLIC.contains(&(m.as_str(), path.as_str()));
        if public {
            assert_eq!(op["security"], json!([{}]), "{m} {path} needs no identity");
        } else {
            assert!(op.get("security").is_none(), "{m} {path} keeps the bearer requirement: {}", op["security"]);
        }
        // What the document says is what the server does: anonymous callers get 401 exactly
        // on the secured routes.
        let r = app.call(method(&m), &concrete(&path), Who::Anon, None).await;
        if public {
            assert_eq!(r.status.as_u16(), 200, "{m} {path} anonymously");
        } else {
            r.expect(401, Some("unauthenticated"));
        }
    }
}

#[tokio::test]
async fn every_route_the_router_serves_is_documented_and_every_documented_route_is_served() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    let documented = operations(&doc);
    no_route_outside_the_table();
    let mut served = routes_served();
    assert!(served.len() >= 20, "the table has the routes: {served:?}");
    // The admin dashboard's static page is outside the document (it is not the JSON API, like
    // `/docs`; collector::http::dashboard): served, public, and nothing else.
    for page in collector::http::dashboard::PAGE_ROUTES {
        assert!(served.remove(&("get".to_owned(), page.to_owned())), "the table serves {page}");
        assert!(!documented.iter().any(|(_, p)| p == page), "{page} is not in the document");
        let r = app.get(page, Who::Anon).await;
        r.expect(200, None);
        assert!(r.headers.contains_key("content-security-policy"), "{page} has a CSP");
    }
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes the router serves that the document lacks"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented routes the router does not serve"
    );
    // Over HTTP: every documented operation is routed (never the fallback's 404 or 405), and a
    // method a documented path does not take answers 405 with Allow.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        for m in METHODS {
            let r = app.call(method(m), &concrete(path), Who::Anon, None).await;
            if documented.contains(&(m.to_owned(), path.clone())) {
                let public = PUBLIC.contains(&(m, path.as_str()));
                assert_eq!(r.status.as_u16(), if public { 200 } else { 401 }, "{m} {path} is served");
            } else {
                r.expect(405, Some("method_not_allowed"));
                assert!(r.headers.contains_key("allow"), "{m} {path}: 405 names the allowed methods");
            }
        }
    }
    // The UI is the one route outside the document: it is the document's viewer, and only
    // `collector serve` has it (not the Lambda functions).
    let r = app.get("/docs/", Who::Anon).await;
    r.expect(200, None);
    assert!(!documented.iter().any(|(_, p)| p.starts_with("/docs")));
}

#[tokio::test]
async fn every_status_a_route_answers_is_documented_with_the_error_body() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    let error_ref = json!({"$ref": "#/components/schemas/ErrorBody"});
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error"]), "{error}");
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], json!(["code", "message"]), "{detail}");

    for (m, path) in operations(&doc) {
        let op = &doc["paths"][&path][&m];
        let responses = op["responses"].as_object().expect("responses");
        let public = PUBLIC.contains(&(m.as_str(), path.as_str()));
        if !public {
            assert!(responses.contains_key("401"), "{m} {path} lists 401");
            assert!(responses.contains_key("503"), "{m} {path} lists 503");
            assert!(responses["503"]["headers"].get("Retry-After").is_some(), "{m} {path}: 503 documents Retry-After");
        }
        assert!(responses.contains_key("500"), "{m} {path} lists 500");
        if op.get("requestBody").is_some() {
            for s in ["400", "413"] {
                assert!(responses.contains_key(s), "{m} {path} takes a body and lists {s}");
            }
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{m} {path}: the body has a schema"
            );
        }
        for (status, resp) in responses {
            if status.as_str() >= "400" {
                assert_eq!(
                    resp["content"]["application/json"]["schema"], error_ref,
                    "{m} {path} {status}: the error body"
                );
            }
        }

        // Probe as each role with an empty object body: whatever the route answers (400 for a
        // missing field, 403 for the role, 404 for an unknown id, 200...) is documented.
        let body = (m == "post").then(|| json!({}));
        for who in [Who::User("alice"), Who::Service, Who::Admin] {
            let r = app.call(method(&m), &concrete(&path), who, body.clone()).await;
            let status = r.status.as_u16().to_string();
            assert!(responses.contains_key(&status), "{m} {path} answered {status}, which the document does not list");
        }
    }

    // A role check is documented: the admin-only routes answer a user 403 and say so.
    for (m, path) in [
        ("post", "/api/feedback/archive"),
        ("get", "/api/feedback/export/{platform}"),
        ("delete", "/api/feedback/data"),
        ("post", "/api/examples"),
        ("get", "/api/examples"),
        ("delete", "/api/examples/{id}"),
        ("post", "/api/training-metrics"),
        ("get", "/api/training-metrics"),
        ("post", "/api/platforms"),
        ("post", "/api/interactions/batch"),
    ] {
        assert!(doc["paths"][path][m]["responses"].get("403").is_some(), "{m} {path} lists 403");
    }
}

#[tokio::test]
async fn the_served_document_lists_the_configured_platforms() {
    let app = spawn_app(&[("PLATFORMS", "n8n,acme")]).await;
    let doc = document(&app).await;
    let known = &doc["components"]["schemas"]["KnownPlatform"];
    assert_eq!(known["enum"], json!(["n8n", "acme"]), "{known}");
    // Request bodies and parameters that name a platform use it.
    assert_eq!(
        doc["components"]["schemas"]["InteractionInput"]["properties"]["platform"]["$ref"],
        "#/components/schemas/KnownPlatform"
    );
    let readiness = &doc["paths"]["/api/feedback/readiness/{platform}"]["get"]["parameters"][0];
    assert_eq!(readiness["schema"]["$ref"], "#/components/schemas/KnownPlatform", "{readiness}");
    // What the schema says the server takes, it takes; what it excludes, it refuses.
    app.post("/api/interactions", Who::User("alice"), json!({"platform": "acme", "user_message": "hi"}))
        .await
        .expect(201, None);
    app.post("/api/interactions", Who::User("alice"), json!({"platform": "zapier", "user_message": "hi"}))
        .await
        .expect(400, Some("validation_failed"));
}
