//! Templates for message texts, prompts, HTTP requests and computed values: minijinja,
//! sandboxed (no loader, so no file system; bounded fuel; no auto-escaping), parsed once when
//! the flow is compiled. Context variables: `contact`, `vars`, `event`, `session`, `flow`,
//! `now`. Extra filters: `regex_replace(pattern, replacement)` and `digits`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use regex::Regex;

use super::diagnostic::Cx;

/// The top-level names a template may read.
pub const CONTEXT_VARIABLES: &[&str] = &["contact", "vars", "event", "session", "flow", "now"];

/// How many instructions one rendering may execute before it is stopped.
pub const TEMPLATE_FUEL: u64 = 100_000;

/// A compiled text parameter: constant text is kept as is and never rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// Text with no template syntax.
    Literal(String),
    /// A template in the flow's [`Templates`], by name (the parameter's JSON path).
    Template {
        /// The name in the flow's template set.
        name: Arc<str>,
        /// The source as written.
        source: String,
    },
}

impl Text {
    /// The text as written.
    pub fn source(&self) -> &str {
        match self {
            Text::Literal(s) => s,
            Text::Template { source, .. } => source,
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source())
    }
}

/// All the templates of one flow, compiled into one sandboxed minijinja environment.
pub struct Templates {
    env: Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.env.templates().count())
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_filter("regex_replace", regex_replace);
        env.add_filter("digits", |s: &str| {
            s.chars().filter(char::is_ascii_digit).collect::<String>()
        });
        Templates { env }
    }
}

impl Templates {
    /// Compiles `source` as the template named `path`; reports syntax errors, unknown
    /// top-level variables and unknown filters or tests at `path`. Returns the text and the
    /// run variables (`vars.X`) it reads.
    pub(crate) fn add(
        &mut self,
        source: &str,
        path: &str,
        cx: Cx<'_>,
    ) -> Option<(Text, BTreeSet<String>)> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Some((Text::Literal(source.to_owned()), BTreeSet::new()));
        }
        if let Err(e) = self
            .env
            .add_template_owned(path.to_owned(), source.to_owned())
        {
            cx.error(path, format!("invalid template: {}", describe(&e)));
            return None;
        }
        let template = self.env.get_template(path).ok()?;
        let mut ok = true;
        let mut vars = BTreeSet::new();
        let mut unknown: Vec<String> = Vec::new();
        for name in template.undeclared_variables(true) {
            let top = name.split('.').next().unwrap_or(&name);
            if let Some(var) = name.strip_prefix("vars.") {
                vars.insert(var.split('.').next().unwrap_or(var).to_owned());
            }
            if !CONTEXT_VARIABLES.contains(&top) && self.env.globals().all(|(g, _)| g != top) {
                unknown.push(top.to_owned());
            }
        }
        unknown.sort();
        unknown.dedup();
        for name in unknown {
            cx.error(
                path,
                format!(
                    "template reads unknown variable `{name}` (use {})",
                    CONTEXT_VARIABLES.join(", ")
                ),
            );
            ok = false;
        }
        if let Err(e) = template.render(Value::UNDEFINED)
            && matches!(
                e.kind(),
                ErrorKind::UnknownFilter
                    | ErrorKind::UnknownTest
                    | ErrorKind::UnknownFunction
                    | ErrorKind::UnknownMethod
            )
        {
            cx.error(path, format!("invalid template: {}", describe(&e)));
            ok = false;
        }
        if !ok {
            self.env.remove_template(path);
            return None;
        }
        Some((
            Text::Template {
                name: Arc::from(path),
                source: source.to_owned(),
            },
            vars,
        ))
    }

    /// Renders a text with a context holding (some of) [`CONTEXT_VARIABLES`].
    pub fn render(&self, text: &Text, context: &Value) -> Result<String, minijinja::Error> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template { name, .. } => self.env.get_template(name)?.render(context),
        }
    }
}

fn describe(e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    match e.line() {
        Some(line) => format!("{}{detail} (line {line})", e.kind()),
        None => format!("{}{detail}", e.kind()),
    }
}

/// `{{ phone | regex_replace("^8", "7") }}`: replaces every match; `$1` refers to groups.
fn regex_replace(
    value: &str,
    pattern: &str,
    replacement: &str,
) -> Result<String, minijinja::Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !cache.contains_key(pattern) {
        let re = Regex::new(pattern).map_err(|e| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid regex {pattern:?}: {e}"),
            )
        })?;
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), re);
    }
    let re = cache
        .get(pattern)
        .ok_or_else(|| minijinja::Error::new(ErrorKind::InvalidOperation, "regex cache"))?;
    Ok(re.replace_all(value, replacement).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::diagnostic::Sink;
    use minijinja::context;

    #[test]
    fn literal_text_is_not_a_template() {
        let sink = Sink::default();
        let (text, vars) = Templates::default()
            .add("Hello!", "/nodes/0/text", Cx::flow(&sink))
            .unwrap();
        assert_eq!(text, Text::Literal("Hello!".into()));
        assert!(vars.is_empty());
    }

    #[test]
    fn renders_with_filters_and_reports_vars_read() {
        let sink = Sink::default();
        let mut t = Templates::default();
        let src =
            "{{ vars.phone | digits | regex_replace('^8', '7') }} for {{ contact.fields.name }}";
        let (text, vars) = t.add(src, "/nodes/1/value", Cx::flow(&sink)).unwrap();
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), ["phone"]);
        let ctx = context! { vars => context! { phone => "8 (916) 123-45-67" }, contact => context! { fields => context! { name => "Ann" } } };
        assert_eq!(t.render(&text, &ctx).unwrap(), "79161234567 for Ann");
        assert!(!sink.has_errors());
    }

    #[test]
    fn reports_syntax_unknown_variables_and_filters() {
        let sink = Sink::default();
        let mut t = Templates::default();
        assert!(t.add("{{ contact.name ", "/a", Cx::flow(&sink)).is_none());
        assert!(t.add("{{ user.name }}", "/b", Cx::flow(&sink)).is_none());
        assert!(
            t.add("{{ contact.name | shout }}", "/c", Cx::flow(&sink))
                .is_none()
        );
        let messages: Vec<String> = sink.finish().into_iter().map(|d| d.message).collect();
        assert!(
            messages[0].starts_with("invalid template: syntax error"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("unknown variable `user`"),
            "{messages:?}"
        );
        assert!(messages[2].contains("unknown filter"), "{messages:?}");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let sink = Sink::default();
        let mut t = Templates::default();
        let (text, _) = t
            .add(
                "{% for i in range(100000) %}{{ i }}{% endfor %}",
                "/x",
                Cx::flow(&sink),
            )
            .unwrap_or_else(|| panic!("{:?}", sink.finish()));
        assert!(t.render(&text, &Value::UNDEFINED).is_err());
    }
}
