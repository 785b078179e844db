//! `collector demo`: realistic sample data through the same use cases the API calls.

use std::io::IsTerminal;

use anyhow::Result;
use chrono::{Duration, Utc};
use collector::app::{App, AppError, IngestOutcome};
use collector::domain::input::{NewFeedback, Parsed};
use collector::domain::types::{Caller, Role, UserId};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

const USERS: [&str; 6] = ["ana", "bo", "chen", "dee", "eli", "fay"];
const ASKS: [(&str, &str, &str); 6] = [
    ("gmail", "slack", "When a new email arrives from a client, post a summary to the #sales channel"),
    ("typeform", "sheets", "Add every new form response to a Google Sheet and tag it by source"),
    ("stripe", "hubspot", "Create a HubSpot deal whenever a Stripe payment succeeds"),
    ("github", "discord", "Notify our Discord when a pull request is merged to main"),
    ("calendly", "notion", "Log new Calendly bookings as pages in the Notion CRM"),
    ("shopify", "mailchimp", "Add new Shopify customers to the Mailchimp newsletter audience"),
];

/// A cheap deterministic generator, so two demo runs look alike.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn workflow(platform: &str, from: &str, to: &str, steps: u64) -> Value {
    match platform {
        "zapier" => json!({
            "trigger": {"app": from, "event": "new_item"},
            "actions": (0..steps).map(|i| json!({"app": to, "action": format!("step_{i}"), "params": {"note": format!("step {i}")}})).collect::<Vec<_>>()
        }),
        "make" => json!({
            "flow": (0..=steps).map(|i| json!({"id": i + 1, "module": format!("{}:{}", if i == 0 { from } else { to }, if i == 0 { "watch" } else { "create" }), "mapper": {"field": i}})).collect::<Vec<_>>()
        }),
        _ => {
            let mut nodes =
                vec![json!({"name": "Trigger", "type": format!("n8n-nodes-base.{from}Trigger"), "parameters": {}})];
            let mut conns = serde_json::Map::new();
            for i in 0..steps {
                let name = format!("Step {}", i + 1);
                let prev = nodes.last().and_then(|n| n["name"].as_str()).unwrap_or("Trigger").to_owned();
                nodes.push(json!({"name": name, "type": format!("n8n-nodes-base.{to}"), "parameters": {"operation": "create"}}));
                conns.insert(prev, json!({"main": [[{"node": name, "type": "main", "index": 0}]]}));
            }
            json!({"name": format!("{from} to {to}"), "nodes": nodes, "connections": conns})
        }
    }
}

pub async fn run(app: &App, count: u32, json_out: bool) -> Result<()> {
    let service = Caller { sub: UserId::parse("demo-backend").map_err(anyhow::Error::msg)?, role: Role::Service };
    let pb = if !json_out && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(u64::from(count));
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} interactions [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut rng = Lcg(0x5eed);
    let now = Utc::now();
    let (mut logged, mut feedback, mut validations) = (0u64, 0u64, 0u64);
    for i in 0..count {
        let platform = ["n8n", "zapier", "make"][rng.below(3) as usize];
        let (from, to, ask) = ASKS[rng.below(ASKS.len() as u64) as usize];
        let user = USERS[rng.below(USERS.len() as u64) as usize];
        let wf = workflow(platform, from, to, 1 + rng.below(4));
        let success = rng.below(10) < 8;
        // Spread over the last 60 days so archiving has something to do.
        let created_at = now - Duration::minutes(rng.below(60 * 24 * 60) as i64);
        let kind = if rng.below(4) == 0 { "conversation" } else { "workflow_generation" };
        let body = json!({
            "user_id": user, "platform": platform, "kind": kind,
            "user_message": format!("{ask} ({i})"),
            "ai_response": format!("Here is a {platform} workflow from {from} to {to}."),
            "intent": "create_workflow",
            "workflow": if kind == "workflow_generation" { wf.clone() } else { Value::Null },
            "success": success,
            "error_message": if success { Value::Null } else { json!("the model produced an incomplete workflow") },
            "processing_time_ms": 300 + rng.below(4000),
            "model_version": "assistant-2026-10",
            "created_at": created_at.to_rfc3339(),
        });
        let id = match app.log_interaction(&service, Parsed::interaction(body)).await? {
            IngestOutcome::Created(r) | IngestOutcome::Replayed(r) => r.interaction_id,
            IngestOutcome::NotCollected => anyhow::bail!("data collection is disabled (ENABLE_DATA_COLLECTION=false)"),
        };
        logged += 1;
        let roll = rng.below(10);
        let fb = match roll {
            0..=3 => {
                Some(json!({"interaction_id": id, "feedback_type": "thumbs_up", "sentiment_score": 4 + rng.below(2)}))
            }
            4 => Some(
                json!({"interaction_id": id, "feedback_type": "thumbs_down", "issue_category": "missing_steps", "sentiment_score": 2}),
            ),
            5 => {
                let mut fixed = wf.clone();
                fixed["corrected"] = json!(true);
                Some(
                    json!({"interaction_id": id, "feedback_type": "edit", "corrected_workflow": fixed, "comment": "added the missing filter"}),
                )
            }
            _ => None,
        };
        if let Some(fb) = fb {
            app.submit_feedback(&service, NewFeedback::parse(&fb).map_err(AppError::Validation)?).await?;
            feedback += 1;
        }
        if kind == "workflow_generation" && rng.below(3) == 0 {
            app.validate_workflow(
                &service,
                Parsed::validation(json!({"platform": platform, "workflow": wf, "interaction_id": id})),
            )
            .await?;
            validations += 1;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if json_out {
        println!("{}", json!({"interactions": logged, "feedback": feedback, "validations": validations}));
    } else {
        println!("demo: logged {logged} interactions with {feedback} feedback and {validations} validations");
    }
    Ok(())
}
