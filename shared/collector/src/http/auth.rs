//! Identity: claims in, a [`Caller`] out. Under `collector serve` a bearer JWT (HS256, local
//! secret) is verified and its claims handed on; on AWS, API Gateway's verified claims arrive in
//! the request context ([`api_gateway_claims`], feature `lambda`). Both end in the same
//! [`Claims`] extension and the same extractor.

use std::collections::HashSet;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::HttpState;
use super::error::ApiError;
use crate::domain::types::{Caller, Role, UserId};

/// Verified claims of the caller.
#[derive(Debug, Clone)]
pub struct Claims(pub Map<String, Value>);

/// Groups arrive as a JSON array (local JWT, Cognito), as a string holding a JSON array, or as
/// API Gateway's string form `"[admin service]"` (an array claim's elements joined by spaces);
/// a bare string without brackets is one group, whole. Only API Gateway's form is split, on
/// spaces, since that is how it joined them: a group named `ops,admin` or a bare `"IT admin"`
/// is not read as `admin`. (A bracketed `"[IT admin]"` cannot be told from two groups: group
/// names with spaces must not contain a role's name, docs/DEPLOY.md.)
pub fn parse_groups(v: Option<&Value>) -> Vec<String> {
    let names = |a: &[Value]| a.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    match v {
        Some(Value::Array(a)) => names(a),
        Some(Value::String(s)) => {
            let s = s.trim();
            // A JSON array of strings (`["a","b"]`); not API Gateway's `[null]` of a group "null".
            if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(s)
                && a.iter().all(Value::is_string)
            {
                return names(&a);
            }
            match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(inner) => inner.split_whitespace().map(str::to_owned).collect(),
                None if s.is_empty() => Vec::new(),
                None => vec![s.to_owned()],
            }
        }
        _ => Vec::new(),
    }
}

/// The OAuth scope that makes a token the service role. A client-credentials token (the AI
/// backend's, from the stack's Cognito app client; docs/DEPLOY.md) has no user and so no groups:
/// it carries `scope`, space-separated (`"collector/service"`: resource server `collector`, scope
/// `service`). Only the exact scope counts; admin is never granted by a scope.
pub const SERVICE_SCOPE: &str = "collector/service";

/// Whether the `scope` claim (a space-separated string, as issued and as API Gateway passes it)
/// holds [`SERVICE_SCOPE`].
fn has_service_scope(claims: &Map<String, Value>) -> bool {
    claims.get("scope").and_then(Value::as_str).is_some_and(|s| s.split_whitespace().any(|x| x == SERVICE_SCOPE))
}

pub fn caller_from_claims(claims: &Map<String, Value>, groups_claim: &str) -> Option<Caller> {
    let sub = UserId::parse(claims.get("sub")?.as_str()?).ok()?;
    let groups = parse_groups(claims.get(groups_claim));
    let role = if groups.iter().any(|g| g == "admin") {
        Role::Admin
    } else if groups.iter().any(|g| g == "service") || has_service_scope(claims) {
        Role::Service
    } else {
        Role::User
    };
    Some(Caller { sub, role })
}

/// Verify an HS256 token; `exp` is checked when present.
pub fn verify_token(key: &DecodingKey, token: &str) -> Option<Map<String, Value>> {
    let mut v = Validation::new(Algorithm::HS256);
    v.required_spec_claims = HashSet::new();
    v.validate_exp = true;
    v.leeway = 0;
    v.validate_aud = false;
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &v).ok().map(|d| d.claims)
}

/// Mint a local token (`collector token`): `sub`, groups under `groups_claim`, `iat`, and `exp`
/// when a lifetime is given.
pub fn mint_token(
    secret: &str,
    sub: &str,
    groups: &[String],
    groups_claim: &str,
    ttl: Option<std::time::Duration>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert("iat".into(), now.into());
    if let Some(ttl) = ttl {
        claims.insert("exp".into(), (now + ttl.as_secs() as i64).into());
    }
    if !groups.is_empty() {
        claims.insert(groups_claim.into(), Value::from(groups.to_vec()));
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
}

/// `collector serve`: a valid bearer token becomes [`Claims`]; anything else leaves none (401
/// later, on routes that need an identity).
pub async fn local_jwt(State(state): State<HttpState>, mut req: Request, next: Next) -> Response {
    if let Some(key) = &state.jwt_key {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim);
        if let Some(claims) = token.and_then(|t| verify_token(key, t)) {
            req.extensions_mut().insert(Claims(claims));
        }
    }
    next.run(req).await
}

/// On Lambda: API Gateway (HTTP API, JWT authorizer) has verified the token; its claims arrive in
/// the request context lambda_http puts in the request's extensions, each value a string (an
/// array claim such as the groups comes as `"[admin service]"`, which [`parse_groups`] reads).
/// They become the same [`Claims`] the local middleware yields; no claims leave none (401 later).
#[cfg(feature = "lambda")]
pub async fn api_gateway_claims(mut req: Request, next: Next) -> Response {
    if let Some(claims) = request_context_claims(req.extensions()) {
        req.extensions_mut().insert(claims);
    }
    next.run(req).await
}

/// The JWT authorizer's claims in lambda_http's request context, if any.
#[cfg(feature = "lambda")]
pub fn request_context_claims(ext: &axum::http::Extensions) -> Option<Claims> {
    use lambda_http::request::RequestContext;
    let jwt = ext.get::<RequestContext>()?.authorizer()?.jwt.as_ref()?;
    if jwt.claims.is_empty() {
        return None;
    }
    Some(Claims(jwt.claims.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()))
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Self::Rejection> {
        let claims = parts.extensions.get::<Claims>().ok_or(ApiError::Unauthenticated)?;
        caller_from_claims(&claims.0, &state.groups_claim).ok_or(ApiError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_as_array_or_api_gateway_string() {
        assert_eq!(parse_groups(Some(&json!(["admin", "x"]))), ["admin", "x"]);
        assert_eq!(parse_groups(Some(&json!("[admin service]"))), ["admin", "service"]);
        assert_eq!(parse_groups(Some(&json!("[]"))), Vec::<String>::new());
        assert_eq!(parse_groups(Some(&json!("service"))), ["service"]);
        assert_eq!(parse_groups(None), Vec::<String>::new());
    }

    #[test]
    fn roles_from_claims() {
        let c = |v: Value| caller_from_claims(v.as_object().unwrap(), "cognito:groups").map(|c| c.role);
        assert_eq!(c(json!({"sub": "a"})), Some(Role::User));
        assert_eq!(c(json!({"sub": "a", "cognito:groups": "[service]"})), Some(Role::Service));
        assert_eq!(c(json!({"sub": "a", "cognito:groups": ["service", "admin"]})), Some(Role::Admin));
        assert_eq!(c(json!({"cognito:groups": ["admin"]})), None, "no sub, no identity");
        assert_eq!(c(json!({"sub": ""})), None);
    }

    #[test]
    fn groups_as_api_gateway_strings() {
        // API Gateway stringifies array claims; a JSON-looking string is read the same way.
        assert_eq!(parse_groups(Some(&json!("[admin]"))), ["admin"]);
        assert_eq!(parse_groups(Some(&json!("[ service  admin ]"))), ["service", "admin"]);
        assert_eq!(parse_groups(Some(&json!("[\"admin\",\"service\"]"))), ["admin", "service"]);
        // A comma or a space inside one group's name does not make a role out of it.
        assert_eq!(parse_groups(Some(&json!("[ops,admin]"))), ["ops,admin"]);
        assert_eq!(parse_groups(Some(&json!("[\"ops,admin\"]"))), ["ops,admin"]);
        assert_eq!(parse_groups(Some(&json!("IT admin"))), ["IT admin"]);
        assert_eq!(parse_groups(Some(&json!(["IT admin"]))), ["IT admin"]);
        assert_eq!(parse_groups(Some(&json!("[null true]"))), ["null", "true"]);
        let c = |v: Value| caller_from_claims(v.as_object().unwrap(), "groups").map(|c| c.role);
        assert_eq!(c(json!({"sub": "a", "groups": "[admin service]"})), Some(Role::Admin));
        assert_eq!(c(json!({"sub": "a", "groups": "[other]"})), Some(Role::User));
        assert_eq!(c(json!({"sub": "a", "groups": "[ops,admin]"})), Some(Role::User));
        assert_eq!(c(json!({"sub": "a", "groups": "IT admin"})), Some(Role::User));
    }

    #[test]
    fn the_service_scope_of_a_client_credentials_token_is_the_service_role() {
        // A Cognito client-credentials access token: sub is the client id, no groups, the scope.
        let c = |v: Value| caller_from_claims(v.as_object().unwrap(), "cognito:groups").map(|c| c.role);
        let token = |scope: &str| json!({"sub": "4mk2clientid", "client_id": "4mk2clientid", "token_use": "access", "scope": scope});
        assert_eq!(c(token("collector/service")), Some(Role::Service));
        assert_eq!(c(token("openid collector/service other/x")), Some(Role::Service));
        for not_it in ["collector/admin", "service", "collector/service2", "other/service", "", "collector/ service"] {
            assert_eq!(c(token(not_it)), Some(Role::User), "{not_it:?}");
        }
        assert_eq!(c(json!({"sub": "a", "scope": ["collector/service"]})), Some(Role::User), "scope is a string claim");
        // Groups still decide when present: an admin with the scope is an admin; the claim name
        // is whatever COLLECTOR_GROUPS_CLAIM says.
        assert_eq!(
            c(json!({"sub": "a", "scope": "collector/service", "cognito:groups": "[admin]"})),
            Some(Role::Admin)
        );
        let g = |v: Value| caller_from_claims(v.as_object().unwrap(), "roles").map(|c| c.role);
        assert_eq!(g(json!({"sub": "a", "roles": "[service]"})), Some(Role::Service));
        assert_eq!(g(json!({"sub": "a", "scope": "collector/service"})), Some(Role::Service));
        assert_eq!(c(json!({"scope": "collector/service"})), None, "no sub, no identity");
    }

    #[cfg(feature = "lambda")]
    #[test]
    fn claims_from_the_api_gateway_request_context() {
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/api/feedback/stats", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x", "requestId": "r",
                "routeKey": "$default", "stage": "$default", "time": "t", "timeEpoch": 0,
                "http": {"method": "GET", "path": "/api/feedback/stats", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                "authorizer": {"jwt": {"claims": {"sub": "alice", "cognito:groups": "[admin service]"}, "scopes": null}}
            }
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let claims = request_context_claims(req.extensions()).unwrap();
        assert_eq!(caller_from_claims(&claims.0, "cognito:groups").unwrap().role, Role::Admin);
        let mut machine = event.clone();
        machine["requestContext"]["authorizer"]["jwt"] = json!({"claims": {"sub": "4mk2clientid", "client_id": "4mk2clientid", "scope": "collector/service"}, "scopes": ["collector/service"]});
        let req = lambda_http::request::from_str(&machine.to_string()).unwrap();
        let claims = request_context_claims(req.extensions()).unwrap();
        assert_eq!(caller_from_claims(&claims.0, "cognito:groups").unwrap().role, Role::Service);
        let mut anonymous = event.clone();
        anonymous["requestContext"].as_object_mut().unwrap().remove("authorizer");
        let req = lambda_http::request::from_str(&anonymous.to_string()).unwrap();
        assert!(request_context_claims(req.extensions()).is_none());
    }

    #[test]
    fn minted_tokens_verify_and_expire() {
        let key = DecodingKey::from_secret(b"s3cret");
        let t = mint_token("s3cret", "alice", &["admin".into()], "cognito:groups", None).unwrap();
        let claims = verify_token(&key, &t).unwrap();
        assert_eq!(caller_from_claims(&claims, "cognito:groups").unwrap().role, Role::Admin);
        assert!(verify_token(&DecodingKey::from_secret(b"other"), &t).is_none());
        let mut expired = Map::new();
        expired.insert("sub".into(), "a".into());
        expired.insert("exp".into(), (chrono::Utc::now().timestamp() - 10).into());
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &EncodingKey::from_secret(b"s3cret"))
            .unwrap();
        assert!(verify_token(&key, &t).is_none());
    }
}
