//! Reading a JSON object's parameters while collecting every problem: missing required
//! parameters, wrong types and unknown parameters — `deny_unknown_fields`, but reported all
//! at once instead of stopping at the first.

use serde_json::{Map, Value};

use super::diagnostic::{Cx, join};

/// One JSON object being read; [`Obj::finish`] reports the keys nobody asked for.
pub(crate) struct Obj<'v, 'a> {
    map: &'v Map<String, Value>,
    path: String,
    what: &'static str,
    cx: Cx<'a>,
    known: Vec<&'static str>,
}

/// "a string", "an array", …: how a JSON value's kind reads in a message.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'v, 'a> Obj<'v, 'a> {
    /// Starts reading `value` at `path`; reports an error and returns `None` when it is not
    /// an object. `what` names the thing in messages ("node", "trigger", …).
    pub(crate) fn new(
        value: &'v Value,
        path: &str,
        what: &'static str,
        cx: Cx<'a>,
    ) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Obj {
                map,
                path: path.to_owned(),
                what,
                cx,
                known: Vec::new(),
            }),
            other => {
                cx.error(
                    path,
                    format!("{what} must be an object, not {}", kind(other)),
                );
                None
            }
        }
    }

    /// The JSON pointer of this object.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The JSON pointer of one of its keys.
    pub(crate) fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Where diagnostics go.
    pub(crate) fn cx(&self) -> Cx<'a> {
        self.cx
    }

    /// Declares keys as known without reading them (read elsewhere, or ignored on purpose).
    pub(crate) fn allow(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// True when the key is present (and marks it known).
    pub(crate) fn has(&mut self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    /// The raw value of an optional key.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.known.push(key);
        self.map.get(key)
    }

    /// The raw value of a required key; reports it missing.
    pub(crate) fn req(&mut self, key: &'static str) -> Option<&'v Value> {
        let value = self.get(key);
        if value.is_none() {
            self.cx.error(
                &self.path,
                format!("{} is missing required parameter `{key}`", self.what),
            );
        }
        value
    }

    fn typed<T>(
        &mut self,
        key: &'static str,
        required: bool,
        want: &str,
        f: impl Fn(&'v Value) -> Option<T>,
    ) -> Option<T> {
        let value = if required {
            self.req(key)?
        } else {
            self.get(key)?
        };
        let out = f(value);
        if out.is_none() {
            self.cx.error(
                &self.at(key),
                format!("`{key}` must be {want}, not {}", kind(value)),
            );
        }
        out
    }

    /// A required string.
    pub(crate) fn req_str(&mut self, key: &'static str) -> Option<&'v str> {
        self.typed(key, true, "a string", Value::as_str)
    }

    /// An optional string.
    pub(crate) fn opt_str(&mut self, key: &'static str) -> Option<&'v str> {
        self.typed(key, false, "a string", Value::as_str)
    }

    /// An optional whole number in `min..=max`.
    pub(crate) fn opt_u32(&mut self, key: &'static str, min: u32, max: u32) -> Option<u32> {
        let want = format!("a whole number from {min} to {max}");
        let n = self.typed(key, false, &want, Value::as_u64)?;
        match u32::try_from(n) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.cx
                    .error(&self.at(key), format!("`{key}` must be {want}, not {n}"));
                None
            }
        }
    }

    /// An optional array.
    pub(crate) fn opt_array(&mut self, key: &'static str) -> Option<&'v Vec<Value>> {
        self.typed(key, false, "an array", Value::as_array)
    }

    /// A required array.
    pub(crate) fn req_array(&mut self, key: &'static str) -> Option<&'v Vec<Value>> {
        self.typed(key, true, "an array", Value::as_array)
    }

    /// An optional object.
    pub(crate) fn opt_object(&mut self, key: &'static str) -> Option<&'v Map<String, Value>> {
        self.typed(key, false, "an object", Value::as_object)
    }

    /// Reports every key that was never asked for.
    pub(crate) fn finish(self) {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                self.cx.error(
                    &join(&self.path, key),
                    format!(
                        "unknown {} parameter `{key}` (expected one of: {})",
                        self.what,
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

/// Reads an array of strings, reporting each element that is not one.
pub(crate) fn strings<'v>(items: &'v [Value], path: &str, cx: Cx<'_>) -> Vec<&'v str> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let s = v.as_str();
            if s.is_none() {
                cx.error(&join(path, i), format!("must be a string, not {}", kind(v)));
            }
            s
        })
        .collect()
}
