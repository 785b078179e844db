//! Test support: start the real app on port 0 with a fresh data folder (zero2prod's spawn_app),
//! mint tokens, and call routes.

use std::collections::HashMap;

use collector::app::App;
use collector::config::Config;
use collector::http::{self, HttpState};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: App,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
    pub fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("JSONL line"))
            .collect()
    }
    /// Assert status and, for errors, the contract's error shape and code.
    pub fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", String::from_utf8_lossy(&self.body));
        if let Some(code) = code {
            let j = self.json();
            assert!(j["error"]["message"].is_string(), "error lacks message: {j}");
            assert_eq!(j["error"]["code"], code, "body: {j}");
        }
        self
    }
}

/// Who calls: None is anonymous.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anon,
    User(&'a str),
    Service,
    Admin,
}

pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vars: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.insert("COLLECTOR_DATA_DIR".into(), dir.path().join("data").display().to_string());
    vars.entry("COLLECTOR_JWT_SECRET".into()).or_insert_with(|| SECRET.into());
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let app = App::open_local(config).expect("open store");
    let router = http::router(HttpState::local(app.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TestApp { base: format!("http://{addr}"), client: reqwest::Client::new(), app, dir }
}

pub fn token(sub: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    http::auth::mint_token(SECRET, sub, &groups, "cognito:groups", None).expect("mint")
}

impl TestApp {
    pub async fn call(&self, method: Method, path: &str, who: Who<'_>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        let tok = match who {
            Who::Anon => None,
            Who::User(u) => Some(token(u, &[])),
            Who::Service => Some(token("svc-backend", &["service"])),
            Who::Admin => Some(token("root", &["admin"])),
        };
        if let Some(t) = tok {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        Resp { status: r.status(), headers: r.headers().clone(), body: r.bytes().await.expect("body").to_vec() }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        who: Who<'_>,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.base, path)).body(body);
        if let Who::User(u) = who {
            req = req.bearer_auth(token(u, &[]));
        } else if let Who::Admin = who {
            req = req.bearer_auth(token("root", &["admin"]));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("request");
        Resp { status: r.status(), headers: r.headers().clone(), body: r.bytes().await.expect("body").to_vec() }
    }

    pub async fn get(&self, path: &str, who: Who<'_>) -> Resp {
        self.call(Method::GET, path, who, None).await
    }
    pub async fn post(&self, path: &str, who: Who<'_>, body: Value) -> Resp {
        self.call(Method::POST, path, who, Some(body)).await
    }
    pub async fn delete(&self, path: &str, who: Who<'_>) -> Resp {
        self.call(Method::DELETE, path, who, None).await
    }

    /// Log an interaction and return its id.
    pub async fn log(&self, who: Who<'_>, body: Value) -> String {
        let r = self.post("/api/interactions", who, body).await;
        r.expect(201, None);
        r.json()["interaction_id"].as_str().expect("id").to_owned()
    }
}

pub fn n8n_workflow(steps: usize, pad: usize) -> Value {
    let mut nodes = vec![json!({"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}})];
    let mut conns = serde_json::Map::new();
    for i in 1..steps {
        nodes.push(json!({"name": format!("Step {i}"), "type": "n8n-nodes-base.httpRequest",
            "parameters": {"url": format!("https://example.com/{i}"), "note": "x".repeat(pad / steps.max(1))}}));
        let prev = if i == 1 { "Start".to_string() } else { format!("Step {}", i - 1) };
        conns.insert(prev, json!({"main": [[{"node": format!("Step {i}"), "type": "main", "index": 0}]]}));
    }
    json!({"name": "wf", "nodes": nodes, "connections": conns})
}

/// A workflow_generation interaction body.
pub fn interaction(platform: &str, msg: &str) -> Value {
    json!({"platform": platform, "kind": "workflow_generation", "user_message": msg,
           "ai_response": "Here is your workflow.", "workflow": n8n_workflow(3, 0)})
}

pub fn days_ago(d: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339()
}
