//! Test records shared by the domain's unit tests.

use chrono::Utc;
use serde_json::{Value, json};

use super::records::{Feedback, FeedbackType, FullRecord};
use super::types::{Id, Kind, Platform, UserId};

/// A successful n8n record by user "u" with workflow `{"nodes":[1.5,2]}` and no links.
pub fn record(kind: Kind) -> FullRecord {
    FullRecord {
        interaction_id: Id::new(),
        user_id: UserId::parse("u").expect("user id"),
        platform: Platform::parse("n8n").expect("platform"),
        kind,
        user_message: "make a flow".into(),
        ai_response: Some("Here it is".into()),
        intent: None,
        workflow: Some(json!({"nodes": [1.5, 2]})),
        success: true,
        error_message: None,
        processing_time_ms: None,
        model_version: None,
        metadata: None,
        training_consent: true,
        created_at: Utc::now(),
        has_feedback: false,
        last_feedback_type: None,
        positive_feedback: 0,
        negative_feedback: 0,
        archived: false,
        feedback: vec![],
        validations: vec![],
    }
}

pub fn feedback(t: FeedbackType, corrected: Option<Value>) -> Feedback {
    Feedback {
        feedback_id: Id::new(),
        interaction_id: Id::new(),
        submitted_by: UserId::parse("u").expect("user id"),
        feedback_type: t,
        sentiment_score: None,
        comment: None,
        corrected_workflow: corrected,
        issue_category: None,
        created_at: Utc::now(),
    }
}
