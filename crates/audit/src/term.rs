//! Prolog terms in and out: quoting host values into Prolog source, and
//! writing answer terms as Prolog text and as JSON.

use scryer_prolog::Term;
use serde_json::{json, Value};

/// `s` as a quoted Prolog atom (`'...'`), escaping quotes, backslashes and
/// control characters (ISO 13211-1 §6.4.2.1).
pub fn quote_atom(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    escape_into(&mut out, s, '\'');
    out.push('\'');
    out
}

/// `s` as a double-quoted Prolog string (a list of characters in Scryer).
pub fn quote_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    escape_into(&mut out, s, '"');
    out.push('"');
    out
}

fn escape_into(out: &mut String, s: &str, quote: char) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:x}\\", c as u32)),
            c => out.push(c),
        }
    }
}

/// A JSON value as a Prolog term: integers stay integers, other numbers
/// become floats, strings and booleans atoms, `null` the atom `null`, an
/// array of strings and numbers (an argv) a list of those, and other
/// arrays and objects the atom of their RFC 8785 text.
pub fn json_to_prolog(jcs: &str) -> String {
    match serde_json::from_str::<Value>(jcs) {
        Ok(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Ok(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => float_literal(f),
            _ => quote_atom(jcs),
        },
        Ok(Value::String(s)) => quote_atom(&s),
        Ok(Value::Bool(b)) => b.to_string(),
        Ok(Value::Null) => "null".to_owned(),
        // A list of strings and numbers (argv) is a Prolog list.
        Ok(Value::Array(items)) if items.iter().all(|v| v.is_string() || v.is_number()) => {
            let items: Vec<String> = items.iter().map(|v| json_to_prolog(&v.to_string())).collect();
            format!("[{}]", items.join(","))
        }
        _ => quote_atom(jcs),
    }
}

/// An f64 as a Prolog float literal (which needs a fraction: `1.0e21`).
fn float_literal(f: f64) -> String {
    let s = format!("{f:?}");
    if s.contains('.') {
        s
    } else if let Some((m, e)) = s.split_once('e') {
        format!("{m}.0e{e}")
    } else {
        format!("{s}.0")
    }
}

fn plain_atom(s: &str) -> bool {
    s == "[]" || s == "!" || (s.starts_with(|c: char| c.is_ascii_lowercase()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Writes `t` in Prolog syntax (canonical form: `f(a,b)`, lists `[a,b]`,
/// atoms quoted where needed, unbound variables as `_`).
pub fn text(t: &Term) -> String {
    match t {
        Term::Integer(i) => i.to_string(),
        Term::Rational(r) => r.to_string(),
        Term::Float(f) => float_literal(*f),
        Term::Atom(a) if plain_atom(a) => a.clone(),
        Term::Atom(a) => quote_atom(a),
        Term::String(s) => quote_chars(s),
        Term::List(items) => format!("[{}]", items.iter().map(text).collect::<Vec<_>>().join(",")),
        Term::Compound(f, args) => {
            let name = if plain_atom(f) { f.clone() } else { quote_atom(f) };
            format!("{name}({})", args.iter().map(text).collect::<Vec<_>>().join(","))
        }
        Term::Var(_) => "_".to_owned(),
        _ => "_".to_owned(),
    }
}

/// `t` as JSON: numbers as numbers (integers beyond i64 as strings), atoms
/// and strings as strings, lists as arrays, `f(a,b)` as `{"f": [a, b]}`,
/// unbound variables as `null`.
pub fn to_json(t: &Term) -> Value {
    match t {
        Term::Integer(i) => {
            let s = i.to_string();
            s.parse::<i64>().map(Value::from).unwrap_or(Value::String(s))
        }
        Term::Rational(r) => Value::String(r.to_string()),
        Term::Float(f) => json!(f),
        Term::Atom(a) => Value::String(a.clone()),
        Term::String(s) => Value::String(s.clone()),
        Term::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Term::Compound(f, args) => json!({ f.as_str(): args.iter().map(to_json).collect::<Vec<_>>() }),
        _ => Value::Null,
    }
}

/// The integer value of `t`, if it is an integer that fits in i64.
pub fn as_i64(t: &Term) -> Option<i64> {
    match t {
        Term::Integer(i) => i.to_string().parse().ok(),
        _ => None,
    }
}

/// The items of a Prolog list term (`[]` may come back as an atom).
pub fn list_items(t: &Term) -> Option<&[Term]> {
    match t {
        Term::List(items) => Some(items),
        Term::Atom(a) if a == "[]" => Some(&[]),
        Term::String(s) if s.is_empty() => Some(&[]),
        _ => None,
    }
}
