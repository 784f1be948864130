//! Sloth's query templates: Go `text/template` with one variable, `{{.window}}`.

/// Renders `template` with `window`. Sloth evaluates any template action; these are
/// PromQL queries, where `{{.window}}` (however spaced) is the one used, so any other
/// action is refused with a clear message rather than evaluated.
pub fn render(template: &str, window: &str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed template action in {template:?}"))?;
        let action = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if action != ".window" {
            return Err(format!(
                "template action {{{{{}}}}} is not supported (only {{{{.window}}}})",
                &after[..end]
            ));
        }
        out.push_str(window);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `template` uses `{{.window}}` (Sloth's check: `{{ *\.window *}}`).
pub fn has_window(template: &str) -> bool {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { return false };
        if after[..end].trim_matches(' ') == ".window" {
            return true;
        }
        rest = &after[end + 2..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_only() {
        assert_eq!(render("rate(x[{{.window}}])", "5m").unwrap(), "rate(x[5m])");
        assert_eq!(render("rate(x[{{ .window }}])", "1h").unwrap(), "rate(x[1h])");
        assert!(render("{{.other}}", "5m").is_err());
        assert!(has_window("a[{{ .window }}]") && !has_window("a[5m]"));
    }
}
