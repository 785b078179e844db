//! The route table: every route of the API is one row, declared once, below ([`ROUTES`]). A row
//! says which Lambda function serves it, its method and path, its handler (whose
//! `#[utoipa::path]` is its entry in `/openapi.json`), who may call it ([`Access`]) and its flags.
//! Everything else derives from the table:
//!
//! - each function's router (`routes::log`, ..., [`by_name`]): its rows, finished with the common
//!   fallbacks and layers (`super::finish`); a function binary links only its own handlers;
//! - the whole API of `collector serve` (`super::router`): every row;
//! - [`NAMES`], the functions in the table's order;
//! - [`ApiDoc`] (`/openapi.json`): the handlers of the documented rows;
//! - the role checks: a row's [`Access`] is enforced here, by [`Guarded`], and nowhere else;
//! - the tests below: the document against the table (each handler documents its own row), each
//!   row's access as the router answers it, and template.yaml's `HttpApi` events against the rows.
//!
//! Row flags: `spill` (on Lambda a large answer goes to the bucket, `super::spill`), `page`
//! (not in the OpenAPI document: the admin dashboard's static files, `super::dashboard`). The
//! `stats` function also serves the document's UI at `/docs` when built with the `swagger`
//! feature (`stats::docs_ui`; not a row: not in the document nor in template.yaml).
//!
//! API Gateway sends each function only its routes (template.yaml); the fallbacks cover a
//! misrouted request. `archive-run` is the admin's "archive now" over HTTP; the `archiver`
//! function (schedule and table stream) is not an HTTP function. Both need the same write access
//! to the table and the bucket, which no other function has.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use super::error::ApiError;
use super::openapi::{BearerAuth, CommonResponses};
use super::{
    HttpState, archive_run, curation, dashboard, delete, export, finish, log, readiness, spill, stats, submit,
    validate_log,
};
use crate::domain::types::{Caller, Role};

/// Expands the table (one block per function, one line per route) into [`ROUTES`], [`NAMES`],
/// one router function per function, [`by_name`], the whole API's routes and [`ApiDoc`].
macro_rules! route_table {
    // A row as a [`Route`].
    (@row $name:literal, $method:ident $path:literal, $m:ident :: $h:ident, $access:tt $(, $flag:ident)*) => {
        Route::new(
            $name,
            Verb::$method,
            $path,
            route_table!(@access $access),
            concat!(stringify!($m), "::", stringify!($h)),
        )$(.$flag())*
    };
    // A row's access: `public`, `identified` (any role) or `[Role, ...]`.
    (@access public) => { Access::Public };
    (@access identified) => { Access::Identified };
    (@access [$($role:ident),+]) => { Access::Only(&[$(Role::$role),+]) };
    // A row's handler: as it is when public, else behind its row's role check.
    (@handler public, $route:ident, $m:ident :: $h:ident) => { $m::$h };
    (@handler $access:tt, $route:ident, $m:ident :: $h:ident) => {
        Guarded { roles: $route.access.roles(), handler: $m::$h }
    };
    // The document: the handlers of every row but the `page` ones.
    (@doc [$($done:tt)*]) => {
        /// The OpenAPI document: the operations of the table's documented rows (each handler's
        /// `#[utoipa::path]`), then what every operation shares (`openapi::CommonResponses`)
        /// and the bearer scheme.
        #[derive(utoipa::OpenApi)]
        #[openapi(
            info(
                title = "collector",
                description = "Collects interactions, feedback and validations for fine-tuning.",
            ),
            paths($($done)*),
            modifiers(&BearerAuth, &CommonResponses),
        )]
        pub struct ApiDoc;
    };
    (@doc [$($done:tt)*] [$m:ident :: $h:ident] $($rest:tt)*) => {
        route_table!(@doc [$($done)* $m::$h,] $($rest)*);
    };
    (@doc [$($done:tt)*] [$m:ident :: $h:ident page $($flag:ident)*] $($rest:tt)*) => {
        route_table!(@doc [$($done)*] $($rest)*);
    };
    (@doc [$($done:tt)*] [$m:ident :: $h:ident $other:ident $($flag:ident)*] $($rest:tt)*) => {
        route_table!(@doc [$($done)*] [$m::$h $($flag)*] $($rest)*);
    };
    // One row's own document (tests): what its handler's `#[utoipa::path]` says; none for a page.
    (@one [$m:ident :: $h:ident]) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($m::$h))]
        struct One;
        Some(<One as utoipa::OpenApi>::openapi())
    }};
    (@one [$m:ident :: $h:ident page $($flag:ident)*]) => { None };
    (@one [$m:ident :: $h:ident $other:ident $($flag:ident)*]) => {
        route_table!(@one [$m::$h $($flag)*])
    };
    ($(
        $(#[doc = $doc:literal])*
        $router:ident = $name:literal $(+ $em:ident :: $ef:ident)? {
            $($method:ident $path:literal => $m:ident :: $h:ident, $access:tt $(, $flag:ident)*;)+
        }
    )+) => {
        /// Every route, in the table's order.
        pub const ROUTES: &[Route] = &[$($(
            route_table!(@row $name, $method $path, $m::$h, $access $(, $flag)*),
        )+)+];

        /// The functions, in the table's order.
        pub const NAMES: &[&str] = &[$($name),+];

        $(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = concat!(
                "The router of the function `", $name, "`: its rows of the table, finished (`super::finish`)."
            )]
            pub fn $router(state: HttpState) -> Router {
                finish(unfinished::$router(&state), state)
            }
        )+

        /// The router of the function called `name`, if there is one.
        pub fn by_name(name: &str, state: HttpState) -> Option<Router> {
            Some(match name {
                $($name => $router(state),)+
                _ => return None,
            })
        }

        /// Every row (the whole API), before the common layers.
        pub(super) fn all(state: &HttpState) -> Router<HttpState> {
            Router::new()$(.merge(unfinished::$router(state)))+
        }

        /// Each function's rows, before the common layers.
        mod unfinished {
            use super::*;
            $(
                pub(super) fn $router(state: &HttpState) -> Router<HttpState> {
                    let router = Router::new();
                    $(
                        let route = route_table!(@row $name, $method $path, $m::$h, $access $(, $flag)*);
                        let router = add(router, state, route, route_table!(@handler $access, route, $m::$h));
                    )+
                    $(let router = router.merge($em::$ef());)?
                    router
                }
            )+
        }

        route_table!(@doc [] $($([$m::$h $($flag)*])+)+);

        /// Each row with the document its handler alone makes (none for a page).
        #[cfg(test)]
        fn row_documents() -> Vec<(Route, Option<utoipa::openapi::OpenApi>)> {
            vec![$($(
                (
                    route_table!(@row $name, $method $path, $m::$h, $access $(, $flag)*),
                    route_table!(@one [$m::$h $($flag)*]),
                ),
            )+)+]
        }
    };
}

route_table! {
    /// Logging and reading interactions. (`GET /api/interactions` answers a service 403 from the
    /// use case, after the query is read: `app::App::list_interactions`.) A record or a page too
    /// large for Lambda's answer spills to the bucket.
    log = "log" {
        POST "/api/interactions" => log::log_interaction, identified;
        POST "/api/interactions/batch" => log::log_batch, [Service, Admin];
        GET "/api/interactions" => log::list_interactions, identified, spill;
        GET "/api/interactions/{id}" => log::get_interaction, identified, spill;
    }
    /// Feedback on an interaction.
    submit = "submit" {
        POST "/api/feedback/submit" => submit::submit, identified;
    }
    /// Workflow validation, logged.
    validate_log = "validate-log" {
        POST "/api/workflow/validate" => validate_log::validate, identified;
    }
    /// Storage statistics, plus the public health check and OpenAPI document.
    stats = "stats" + stats::docs_ui {
        GET "/api/feedback/stats" => stats::stats, identified;
        GET "/api/health" => stats::health, public;
        GET "/openapi.json" => stats::openapi_json, public;
    }
    /// Training export (admin), and the exports' manifests. Large answers spill to the bucket.
    export = "export" {
        GET "/api/feedback/export/{platform}" => export::export_platform, [Admin], spill;
        GET "/api/exports" => export::list_exports, [Admin];
        GET "/api/exports/{export_id}" => export::get_export, [Admin];
    }
    /// Training readiness, and the admin dashboard's static page (which reads the API with the
    /// admin's token; the page itself holds no data).
    readiness = "readiness" {
        GET "/api/feedback/readiness/{platform}" => readiness::readiness, identified;
        GET "/admin" => dashboard::page, public, page;
        GET "/admin/dashboard.js" => dashboard::script, public, page;
        GET "/admin/dashboard.css" => dashboard::style, public, page;
    }
    /// Deletes and the right of access. A user's data spills to the bucket when large.
    delete = "delete" {
        DELETE "/api/feedback/data/{interaction_id}" => delete::delete_one, [User, Admin], spill;
        DELETE "/api/feedback/data" => delete::delete_user, [Admin], spill;
        DELETE "/api/me/data" => delete::delete_me, [User], spill;
        GET "/api/me/data" => delete::my_data, [User], spill;
    }
    /// Curated examples and training metrics (admin), and the platforms (listed to anyone,
    /// added by an admin). The lists are not paged (CONTRACT): a large one spills to the bucket.
    curation = "curation" {
        POST "/api/examples" => curation::add_example, [Admin];
        GET "/api/examples" => curation::list_examples, [Admin], spill;
        DELETE "/api/examples/{id}" => curation::delete_example, [Admin];
        POST "/api/training-metrics" => curation::add_metric, [Admin];
        GET "/api/training-metrics" => curation::list_metrics, [Admin], spill;
        POST "/api/platforms" => curation::add_platform, [Admin];
        GET "/api/platforms" => curation::list_platforms, identified;
    }
    /// Archive now (admin), over HTTP.
    archive_run = "archive-run" {
        POST "/api/feedback/archive" => archive_run::archive, [Admin];
    }
}

/// One route of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The Lambda function that serves it (its binary in template.yaml).
    pub function: &'static str,
    pub method: Verb,
    /// axum's path syntax, which is API Gateway's and OpenAPI's too (`{id}`).
    pub path: &'static str,
    pub access: Access,
    /// The handler, `module::function`.
    pub handler: &'static str,
    /// In `/openapi.json` (every route but the dashboard's page).
    pub documented: bool,
    /// On Lambda, a large answer spills to the bucket (`super::spill`).
    pub spill: bool,
}

impl Route {
    const fn new(
        function: &'static str,
        method: Verb,
        path: &'static str,
        access: Access,
        handler: &'static str,
    ) -> Route {
        Route { function, method, path, access, handler, documented: true, spill: false }
    }

    /// Flag `spill`.
    const fn spill(self) -> Route {
        Route { spill: true, ..self }
    }

    /// Flag `page`: not in the OpenAPI document.
    const fn page(self) -> Route {
        Route { documented: false, ..self }
    }
}

/// The methods the API uses.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    GET,
    POST,
    DELETE,
}

impl Verb {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::GET => "GET",
            Verb::POST => "POST",
            Verb::DELETE => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::GET => MethodFilter::GET,
            Verb::POST => MethodFilter::POST,
            Verb::DELETE => MethodFilter::DELETE,
        }
    }
}

/// Who may call a route (CONTRACT section 1 and 4). Rules that depend on the data (a user's own
/// records, a service naming `user_id`) are the use cases' (`app`), and answer 403 or 404 there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No identity needed.
    Public,
    /// Any identified caller: 401 without an identity.
    Identified,
    /// An identified caller of one of these roles: 401 without an identity, 403 for another role.
    Only(&'static [Role]),
}

impl Access {
    /// The roles admitted (none needed for a public route).
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Access::Public => &[],
            Access::Identified => &[Role::User, Role::Service, Role::Admin],
            Access::Only(roles) => roles,
        }
    }
}

/// Adds one row to a router: its handler on its method and path, with the spill layer when flagged.
fn add<H, T>(router: Router<HttpState>, state: &HttpState, route: Route, handler: H) -> Router<HttpState>
where
    H: Handler<T, HttpState>,
    T: 'static,
{
    let mut method_router = on(route.method.filter(), handler);
    if route.method == Verb::GET && route.access != Access::Public {
        // axum answers HEAD with the GET handler minus its body: an export would be run,
        // recorded as a manifest and counted, for an answer nobody reads. API Gateway routes
        // no HEAD to the functions; `collector serve` answers it 405 the same way.
        method_router = method_router.head(|| async { ApiError::MethodNotAllowed });
    }
    if route.spill {
        method_router =
            method_router.route_layer(axum::middleware::from_fn_with_state(state.clone(), spill::spill_large_answers));
    }
    router.route(route.path, method_router)
}

/// The message of a role refused.
pub const WRONG_ROLE: &str = "this route is not open to your role";

/// A handler behind its row's role check: the one place a route's roles are enforced. It takes
/// the handler's arguments in the handler's order, as axum would (`State`, then the [`Caller`]:
/// 401 without an identity; then the path, query and body: their 400, 404 or 413), and only then
/// checks the role (403 [`WRONG_ROLE`]), so a bad request is reported before a wrong role, as
/// when each handler checked its role first thing. Handlers of identified routes take
/// `(State<HttpState>, Caller, ...)`.
#[derive(Clone, Copy)]
pub struct Guarded<H> {
    roles: &'static [Role],
    handler: H,
}

type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// The marker of a guarded handler that takes only the state and the caller.
#[doc(hidden)]
pub enum CallerOnly {}

impl<H, Fut, Res> Handler<(CallerOnly,), HttpState> for Guarded<H>
where
    H: FnOnce(State<HttpState>, Caller) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send,
    Res: IntoResponse,
{
    type Future = Answer;

    fn call(self, req: Request, state: HttpState) -> Self::Future {
        Box::pin(async move {
            let (mut parts, _) = req.into_parts();
            let caller = match Caller::from_request_parts(&mut parts, &state).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
            if !self.roles.contains(&caller.role) {
                return ApiError::Forbidden(WRONG_ROLE).into_response();
            }
            (self.handler)(State(state), caller).await.into_response()
        })
    }
}

macro_rules! guarded_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case)]
        impl<H, Fut, Res, M, $($ty,)* $last> Handler<(M, $($ty,)* $last), HttpState> for Guarded<H>
        where
            H: FnOnce(State<HttpState>, Caller, $($ty,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Res> + Send,
            Res: IntoResponse,
            $($ty: FromRequestParts<HttpState> + Send,)*
            $last: FromRequest<HttpState, M> + Send,
        {
            type Future = Answer;

            fn call(self, req: Request, state: HttpState) -> Self::Future {
                Box::pin(async move {
                    let (mut parts, body) = req.into_parts();
                    let caller = match Caller::from_request_parts(&mut parts, &state).await {
                        Ok(c) => c,
                        Err(e) => return e.into_response(),
                    };
                    $(
                        let $ty = match $ty::from_request_parts(&mut parts, &state).await {
                            Ok(v) => v,
                            Err(e) => return e.into_response(),
                        };
                    )*
                    let $last = match $last::from_request(Request::from_parts(parts, body), &state).await {
                        Ok(v) => v,
                        Err(e) => return e.into_response(),
                    };
                    if !self.roles.contains(&caller.role) {
                        return ApiError::Forbidden(WRONG_ROLE).into_response();
                    }
                    (self.handler)(State(state), caller, $($ty,)* $last).await.into_response()
                })
            }
        }
    };
}

guarded_handler!([], T1);
guarded_handler!([T1], T2);
guarded_handler!([T1, T2], T3);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use tower::ServiceExt;
    use utoipa::OpenApi;
    use utoipa::openapi::HttpMethod;

    use super::*;

    /// (method, path) of every operation of a document, and whether it is public.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [
                (HttpMethod::Get, &item.get),
                (HttpMethod::Post, &item.post),
                (HttpMethod::Delete, &item.delete),
                (HttpMethod::Put, &item.put),
                (HttpMethod::Patch, &item.patch),
                (HttpMethod::Head, &item.head),
                (HttpMethod::Options, &item.options),
                (HttpMethod::Trace, &item.trace),
            ] {
                if let Some(op) = op {
                    let m = serde_json::to_value(&m).unwrap().as_str().unwrap().to_uppercase();
                    out.push((m, path.clone(), super::super::openapi::is_public(op)));
                }
            }
        }
        out
    }

    /// Every route is one row; each function has rows; the page rows are the dashboard's.
    #[test]
    fn each_route_is_one_row() {
        let rows: BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.method.as_str(), r.path)).collect();
        assert_eq!(rows.len(), ROUTES.len(), "a route is in two rows");
        let mut functions: Vec<&str> = ROUTES.iter().map(|r| r.function).collect();
        functions.dedup();
        assert_eq!(functions, NAMES, "a function's rows are together, in NAMES' order");
        let pages: Vec<&str> = ROUTES.iter().filter(|r| !r.documented).map(|r| r.path).collect();
        assert_eq!(pages, dashboard::PAGE_ROUTES);
        assert!(ROUTES.iter().filter(|r| !r.documented).all(|r| r.access == Access::Public && r.method == Verb::GET));
    }

    /// `/openapi.json` has exactly the documented rows, each from its own row's handler, public
    /// exactly when the row is, and a 403 listed wherever the row restricts the roles.
    #[test]
    fn the_document_is_the_table() {
        let doc = ApiDoc::openapi();
        let mut documented: Vec<(String, String, bool)> = ROUTES
            .iter()
            .filter(|r| r.documented)
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned(), r.access == Access::Public))
            .collect();
        documented.sort();
        let mut ops = operations(&doc);
        ops.sort();
        assert_eq!(ops, documented);
        for (route, own) in row_documents() {
            let Some(own) = own else {
                assert!(!route.documented, "{route:?}");
                continue;
            };
            let ops: Vec<(String, String)> = operations(&own).into_iter().map(|(m, p, _)| (m, p)).collect();
            assert_eq!(ops, [(route.method.as_str().to_owned(), route.path.to_owned())], "{}", route.handler);
        }
        let json = serde_json::to_value(&doc).unwrap();
        for r in ROUTES.iter().filter(|r| matches!(r.access, Access::Only(_))) {
            let op = &json["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op["responses"].get("403").is_some(), "{} {} lists 403", r.method.as_str(), r.path);
        }
    }

    fn concrete(path: &str) -> String {
        path.replace("{platform}", "n8n")
            .replace("{id}", "01936f4e-7a00-7000-8000-000000000001")
            .replace("{interaction_id}", "01936f4e-7a00-7000-8000-000000000001")
            .replace("{export_id}", "01936f4e-7a00-7000-8000-000000000001")
    }

    /// Each row answers as its access says, from its function's router and the whole API's: no
    /// identity 401 (public rows: never); a role the row does not admit 403 `WRONG_ROLE`, an
    /// admitted one never that.
    #[tokio::test]
    async fn each_row_answers_as_its_access_says() {
        const SECRET: &str = "routes-test-secret";
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().into_owned();
        let config = crate::config::Config::from_lookup(|k| match k {
            "COLLECTOR_DATA_DIR" => Some(data.clone()),
            "COLLECTOR_JWT_SECRET" => Some(SECRET.into()),
            _ => None,
        })
        .expect("config");
        let state = HttpState::local(crate::app::App::open_local(config).expect("open"));
        let claim = state.groups_claim.to_string();
        let token = |groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            super::super::auth::mint_token(SECRET, "someone", &groups, &claim, None).expect("token")
        };
        let callers = [
            (None, None),
            (Some(Role::User), Some(token(&[]))),
            (Some(Role::Service), Some(token(&["service"]))),
            (Some(Role::Admin), Some(token(&["admin"]))),
        ];
        let whole = super::super::router(state.clone());
        for r in ROUTES {
            let function = by_name(r.function, state.clone()).expect("a function");
            for (role, token) in &callers {
                for (router, whose) in [(&function, r.function), (&whole, "serve")] {
                    let mut req = axum::http::Request::builder().method(r.method.as_str()).uri(concrete(r.path));
                    if let Some(t) = token {
                        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
                    }
                    let body = if r.method == Verb::POST { Body::from("{}") } else { Body::empty() };
                    let resp = router.clone().oneshot(req.body(body).expect("request")).await.expect("infallible");
                    let status = resp.status();
                    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
                    let wrong_role = status == StatusCode::FORBIDDEN
                        && serde_json::from_slice::<serde_json::Value>(&bytes).expect("JSON")["error"]["message"]
                            == WRONG_ROLE;
                    let at = format!("{whose}: {} {} as {role:?}: {status}", r.method.as_str(), r.path);
                    match role {
                        None => assert_eq!(status == StatusCode::UNAUTHORIZED, r.access != Access::Public, "{at}"),
                        Some(role) => assert_eq!(
                            wrong_role,
                            !r.access.roles().contains(role) && r.access != Access::Public,
                            "{at}"
                        ),
                    }
                }
            }
        }
    }

    /// The dashboard's page, script and style come from the `readiness` function (and from the
    /// whole router of `collector serve`) with their types and the strict policy, no identity
    /// needed; no other function serves them.
    #[tokio::test]
    async fn the_readiness_function_and_the_local_router_serve_the_dashboard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().into_owned();
        let config =
            crate::config::Config::from_lookup(|k| (k == "COLLECTOR_DATA_DIR").then(|| data.clone())).expect("config");
        let state = HttpState::local(crate::app::App::open_local(config).expect("open"));
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).expect("request");
        for (router, whose) in [(readiness(state.clone()), "readiness"), (super::super::router(state.clone()), "serve")]
        {
            for (path, ty) in [
                ("/admin", "text/html; charset=utf-8"),
                ("/admin/dashboard.js", "text/javascript; charset=utf-8"),
                ("/admin/dashboard.css", "text/css; charset=utf-8"),
            ] {
                let resp = router.clone().oneshot(get(path)).await.expect("infallible");
                assert_eq!(resp.status(), StatusCode::OK, "{whose} {path}");
                assert_eq!(resp.headers()[header::CONTENT_TYPE], ty, "{whose} {path}");
                assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], dashboard::CONTENT_SECURITY_POLICY);
                assert!(resp.headers().contains_key(header::CACHE_CONTROL));
            }
        }
        for name in NAMES.iter().filter(|n| **n != "readiness") {
            let resp =
                by_name(name, state.clone()).expect("a function").oneshot(get("/admin")).await.expect("infallible");
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name} does not serve the page");
        }
    }

    /// template.yaml sends each route to the function that serves it (its binary named in
    /// `Metadata.BuildProperties.Binary`), and nothing else: its `HttpApi` events are the table.
    #[cfg(feature = "test-suite")]
    #[test]
    fn the_template_routes_are_the_table() {
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
            ROUTES.iter().map(|r| (r.function.to_owned(), r.method.as_str().to_owned(), r.path.to_owned())).collect();
        expected.sort();
        assert_eq!(declared, expected);
    }
}
