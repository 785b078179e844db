//! Audit events: one info line (target `audit`) per archive run, export and
//! configuration-changing admin call, with the caller's `sub` and role, the route and counts;
//! a delete logs one when it is asked for (`requested=1`) and one when it ends (its counts, or
//! `failed=1` when it failed after it may have removed data; a refusal logs no second line).
//! Ids and counts only: never a message, workflow, comment or filter value someone typed.

use crate::domain::types::Caller;

/// Log one audit event. `subject` is the user whose data the call touched, when it is not the
/// caller; `counts` are what it did.
pub fn event(caller: &Caller, route: &'static str, subject: Option<&str>, counts: &[(&'static str, i64)]) {
    let counts = counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    tracing::info!(
        target: "audit",
        sub = %caller.sub.as_str(),
        role = caller.role.as_str(),
        route,
        subject = subject.unwrap_or("-"),
        counts = %counts,
        "audit"
    );
}

/// Tests: what is logged, captured as text (the tests of `audit` and of the delete routes).
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl CapturedLogs {
    /// A subscriber that writes every event here, without colours.
    pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        let out = self.clone();
        tracing_subscriber::fmt().with_writer(move || out.clone()).with_ansi(false).finish()
    }

    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::types::{Role, UserId};

    /// The line carries the caller, the route and the counts, and nothing else.
    #[test]
    fn an_event_names_caller_route_and_counts() {
        let logs = CapturedLogs::default();
        let subscriber = logs.subscriber();
        let caller = Caller { sub: UserId::parse("root").expect("id"), role: Role::Admin };
        tracing::subscriber::with_default(subscriber, || {
            event(&caller, "DELETE /api/feedback/data", Some("alice"), &[("interactions", 3), ("feedback", 1)]);
        });
        let text = logs.text();
        assert!(text.contains("INFO") && text.contains("audit"), "{text}");
        for want in [
            "sub=root",
            "role=\"admin\"",
            "route=\"DELETE /api/feedback/data\"",
            "subject=\"alice\"",
            "interactions=3 feedback=1",
        ] {
            assert!(text.contains(want), "{want} missing: {text}");
        }
    }
}
