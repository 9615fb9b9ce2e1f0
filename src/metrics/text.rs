//! The Prometheus text exposition format (version 0.0.4), just what the booth writes: a family
//! header, then samples with escaped label values.

use std::fmt::{Display, Write};

pub struct Exposition(pub String);

impl Exposition {
    pub fn new() -> Exposition {
        Exposition(String::with_capacity(8192))
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    /// A family with one sample per value of its one label (orders by `status`, say).
    pub fn labelled<L: AsRef<str>, V: Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) {
        self.family(name, kind, help);
        for (value, n) in samples {
            self.sample(name, &[(label, value.as_ref())], n);
        }
    }

    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and newline; nothing else.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.sample("x", &[("booth", "Say \"cheese\"\\\n")], 1);
        assert_eq!(e.0, "x{booth=\"Say \\\"cheese\\\"\\\\\\n\"} 1\n");
    }
}
