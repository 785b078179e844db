//! Structural diff between two JSON documents, as RFC 6901 pointers.

use serde_json::{Number, Value};

pub use super::validators::{MAX_REPORT_BYTES, ReportTooLarge};

/// Paths that changed from an original workflow to an edited one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Diff {
    /// Pointers present only in the edited document (subtree roots only).
    pub added: Vec<String>,
    /// Pointers present only in the original document (subtree roots only).
    pub removed: Vec<String>,
    /// Pointers whose value differs, including type changes.
    pub modified: Vec<String>,
}

impl Diff {
    /// True when the documents are equal.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }
}

/// RFC 6901 pointers from `original` to `edited`; each list sorted (plain string sort). The
/// pointers listed hold at most [`MAX_REPORT_BYTES`] in all, else [`ReportTooLarge`]: a long key
/// above many changed values is in each of their pointers.
pub fn diff(original: &Value, edited: &Value) -> Result<Diff, ReportTooLarge> {
    let mut out = Diff::default();
    let mut path = String::new();
    let mut left = MAX_REPORT_BYTES;
    // Plain recursion: callers cap input depth at 64, so the stack is bounded.
    walk(original, edited, &mut path, &mut out, &mut left)?;
    out.added.sort();
    out.removed.sort();
    out.modified.sort();
    Ok(out)
}

/// Lists `path` in `list` if it fits in what is `left` of the limit.
fn list(list: &mut Vec<String>, path: &str, left: &mut usize) -> Result<(), ReportTooLarge> {
    *left = left.checked_sub(path.len() + std::mem::size_of::<String>()).ok_or(ReportTooLarge)?;
    list.push(path.to_owned());
    Ok(())
}

fn walk(a: &Value, b: &Value, path: &mut String, out: &mut Diff, left: &mut usize) -> Result<(), ReportTooLarge> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, va) in x {
                let len = push_key(path, key);
                match y.get(key) {
                    Some(vb) => walk(va, vb, path, out, left)?,
                    None => list(&mut out.removed, path, left)?,
                }
                path.truncate(len);
            }
            for key in y.keys().filter(|k| !x.contains_key(*k)) {
                let len = push_key(path, key);
                list(&mut out.added, path, left)?;
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => walk(va, vb, path, out, left)?,
                    (Some(_), None) => list(&mut out.removed, path, left)?,
                    (None, Some(_)) => list(&mut out.added, path, left)?,
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            if !numbers_equal(x, y) {
                list(&mut out.modified, path, left)?;
            }
        }
        // Remaining pairs are scalars or a type change; either way, no descent.
        _ => {
            if a != b {
                list(&mut out.modified, path, left)?;
            }
        }
    }
    Ok(())
}

/// Numeric equality so that 1 and 1.0 match: exact for two integers, f64 otherwise.
fn numbers_equal(x: &Number, y: &Number) -> bool {
    match (as_int(x), as_int(y)) {
        (Some(p), Some(q)) => p == q,
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
    }
}

/// i128 covers both i64 and u64 without loss.
fn as_int(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// Appends an escaped pointer segment; returns the length to truncate back to.
pub(crate) fn push_key(path: &mut String, key: &str) -> usize {
    let len = path.len();
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The diff of documents within the limit (the limit's own test calls `super::diff`).
    fn diff(a: &Value, b: &Value) -> Diff {
        super::diff(a, b).expect("within the limit")
    }

    fn d(added: &[&str], removed: &[&str], modified: &[&str]) -> Diff {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect();
        Diff { added: v(added), removed: v(removed), modified: v(modified) }
    }

    /// A long key above many changed items: refused once the pointers pass the limit, not
    /// built (each would hold the key: 20 GB here).
    #[test]
    fn pointers_past_the_limit_are_refused() {
        let key = "k".repeat(200 * 1024);
        let items: Vec<Value> = (0..100_000).map(|_| json!(0)).collect();
        let (a, b) = (json!({key.clone(): []}), json!({key: items}));
        assert_eq!(super::diff(&a, &b), Err(ReportTooLarge));
        assert_eq!(super::diff(&b, &a), Err(ReportTooLarge));
        // Many short pointers fit.
        let many: Vec<Value> = (0..100_000).map(|_| json!(0)).collect();
        assert_eq!(diff(&json!({"a": []}), &json!({"a": many})).added.len(), 100_000);
    }

    #[test]
    fn identical_is_empty() {
        let v = json!({"a": [1, {"b": null}], "c": "x", "d": true, "e": 2.5});
        let r = diff(&v, &v.clone());
        assert!(r.is_empty());
        assert_eq!(r, Diff::default());
        assert!(diff(&json!(null), &json!(null)).is_empty());
        assert!(!d(&["/a"], &[], &[]).is_empty());
    }

    #[test]
    fn added_removed_modified_keys() {
        let r = diff(&json!({"keep": 1, "gone": 2, "chg": "a"}), &json!({"keep": 1, "chg": "b", "new": 3}));
        assert_eq!(r, d(&["/new"], &["/gone"], &["/chg"]));
    }

    #[test]
    fn subtree_listed_once_at_root() {
        let r = diff(
            &json!({"a": {"old": {"x": [1, 2, {"y": 1}]}}}),
            &json!({"a": {"new": {"deep": {"deeper": [1, 2, 3]}}}}),
        );
        assert_eq!(r, d(&["/a/new"], &["/a/old"], &[]));
    }

    #[test]
    fn arrays_grow_and_shrink_by_index() {
        let r = diff(&json!([1, 2]), &json!([1, 3, {"z": 1}, 4]));
        assert_eq!(r, d(&["/2", "/3"], &[], &["/1"]));
        let r = diff(&json!({"l": [1, 2, 3]}), &json!({"l": [1]}));
        assert_eq!(r, d(&[], &["/l/1", "/l/2"], &[]));
        let r = diff(&json!([[1], [2, 3]]), &json!([[1, 9], [2]]));
        assert_eq!(r, d(&["/0/1"], &["/1/1"], &[]));
    }

    #[test]
    fn type_changes_are_modified_without_descent() {
        let r = diff(
            &json!({"o": {"a": 1}, "n": 1, "z": null, "b": false, "s": "x"}),
            &json!({"o": [1], "n": "1", "z": {"k": 1}, "b": 0, "s": ["x"]}),
        );
        assert_eq!(r, d(&[], &[], &["/b", "/n", "/o", "/s", "/z"]));
        assert_eq!(diff(&json!({"a": 1}), &json!([1])), d(&[], &[], &[""]));
        assert_eq!(diff(&json!(1), &json!(2)), d(&[], &[], &[""]));
    }

    #[test]
    fn keys_are_escaped() {
        let r = diff(&json!({"a/b": 1, "c~d": {"e/~f": 1}}), &json!({"a/b": 2, "c~d": {}, "~/": 0}));
        assert_eq!(r, d(&["/~0~1"], &["/c~0d/e~1~0f"], &["/a~1b"]));
    }

    #[test]
    fn lists_are_sorted_as_strings() {
        let original = json!({"z": 1, "b": 1, "list": (0..12).collect::<Vec<_>>()});
        let edited = json!({"a": 1, "y": 1, "list": []});
        let r = diff(&original, &edited);
        assert_eq!(r.added, ["/a", "/y"]);
        // Plain string order: "/list/10" sorts before "/list/2".
        let mut removed: Vec<String> = (0..12).map(|i| format!("/list/{i}")).collect();
        removed.extend(["/b".to_string(), "/z".to_string()]);
        removed.sort();
        assert_eq!(r.removed, removed);
        assert_eq!(r.removed[0], "/b");
        assert_eq!(r.removed[2], "/list/1");
        assert_eq!(r.removed[3], "/list/10");
    }

    #[test]
    fn numbers_compare_by_value() {
        let parse = |s: &str| serde_json::from_str::<Value>(s).expect("valid json");
        assert!(diff(&parse("1"), &parse("1.0")).is_empty());
        assert!(diff(&parse("[0, -2]"), &parse("[0.0, -2.0]")).is_empty());
        assert!(diff(&parse("1e2"), &parse("100")).is_empty());
        assert!(diff(&parse("18446744073709551615"), &parse("18446744073709551615")).is_empty());
        assert_eq!(diff(&parse("1"), &parse("1.5")), d(&[], &[], &[""]));
        assert_eq!(diff(&parse("18446744073709551615"), &parse("-1")), d(&[], &[], &[""]));
        // Integers compare exactly, even where f64 would round them together.
        assert_eq!(diff(&parse("9007199254740993"), &parse("9007199254740992")), d(&[], &[], &[""]));
        assert_eq!(diff(&json!({"v": "1"}), &json!({"v": 1})), d(&[], &[], &["/v"]));
    }

    #[test]
    fn serializes_as_three_lists() {
        let v = serde_json::to_value(d(&["/a"], &[], &["/b"])).expect("serialize");
        assert_eq!(v, json!({"added": ["/a"], "removed": [], "modified": ["/b"]}));
    }
}
