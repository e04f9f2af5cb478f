//! PostgreSQL parameter values in a comparable form: `'1GB'` for
//! shared_buffers (unit 8kB) equals `131072`, `on` equals `true`, `'5min'`
//! equals `300s` for a parameter in seconds. Pure.

/// The canonical text of a parameter value, given the parameter's `unit`
/// and `vartype` from pg_settings; `is_list` for list parameters
/// (shared_preload_libraries...), compared element by element.
pub fn normalize(value: &str, unit: Option<&str>, vartype: Option<&str>, is_list: bool) -> String {
    let trimmed = value.trim();
    if is_list {
        return list_elements(trimmed).join(",");
    }
    match vartype {
        Some("bool") => match trimmed.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" | "t" | "y" => "on".into(),
            "off" | "false" | "no" | "0" | "f" | "n" => "off".into(),
            other => other.into(),
        },
        Some("integer") | Some("real") => match in_base_unit(trimmed, unit) {
            Some(number) if vartype == Some("integer") => format!("{}", number.round() as i64),
            Some(number) => format!("{number}"),
            None => trimmed.to_string(),
        },
        Some("enum") => trimmed.to_ascii_lowercase(),
        _ => trimmed.to_string(),
    }
}

/// The elements of a list value: as PostgreSQL writes a list (elements
/// separated by commas, each in double quotes with `""` for a quote where
/// it needs them), or, when the text is not such a list, as the manifest
/// writes one (split at commas, quotes at the ends of an element dropped,
/// which is how the templates write it). Empty elements are left out.
fn list_elements(text: &str) -> Vec<String> {
    quoted_list(text).unwrap_or_else(|| {
        text.split(',')
            .map(|element| element.trim().trim_matches('"').to_string())
            .filter(|element| !element.is_empty())
            .collect()
    })
}

/// A list in PostgreSQL's quoting, or None when the text is not one.
fn quoted_list(text: &str) -> Option<Vec<String>> {
    let mut elements = Vec::new();
    let mut characters = text.chars().peekable();
    loop {
        while characters.next_if(|c| c.is_whitespace()).is_some() {}
        let mut element = String::new();
        if characters.next_if_eq(&'"').is_some() {
            loop {
                match characters.next()? {
                    '"' if characters.next_if_eq(&'"').is_some() => element.push('"'),
                    '"' => break,
                    other => element.push(other),
                }
            }
            while characters.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(c) = characters.next_if(|c| *c != ',') {
                if c == '"' {
                    return None;
                }
                element.push(c);
            }
            element = element.trim_end().to_string();
        }
        if !element.is_empty() {
            elements.push(element);
        }
        match characters.next() {
            None => return Some(elements),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// A number with an optional unit suffix, in the parameter's base unit.
fn in_base_unit(text: &str, base_unit: Option<&str>) -> Option<f64> {
    let split = text
        .find(|character: char| {
            !(character.is_ascii_digit() || matches!(character, '.' | '-' | '+' | 'e' | 'E'))
        })
        .unwrap_or(text.len());
    // "1e3" is a number but "1MB"'s E is not: only split before letters that start a unit.
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let suffix = suffix.trim();
    let Some(base) = base_unit.filter(|unit| !unit.is_empty()) else {
        return if suffix.is_empty() {
            Some(number)
        } else {
            None
        };
    };
    if suffix.is_empty() {
        return Some(number);
    }
    let (given_kind, given_factor) = unit_factor(suffix)?;
    let (base_kind, base_factor) = unit_factor(base)?;
    if given_kind != base_kind {
        return None;
    }
    Some(number * given_factor / base_factor)
}

#[derive(PartialEq)]
enum UnitKind {
    Memory,
    Time,
}

/// Size of a unit in bytes or microseconds; pg_settings units such as `8kB`
/// and `16MB` carry a multiplier.
fn unit_factor(unit: &str) -> Option<(UnitKind, f64)> {
    let digits = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let multiplier: f64 = if digits == 0 {
        1.0
    } else {
        unit[..digits].parse().ok()?
    };
    let (kind, factor) = match &unit[digits..] {
        "B" => (UnitKind::Memory, 1.0),
        "kB" => (UnitKind::Memory, 1024.0),
        "MB" => (UnitKind::Memory, 1024.0 * 1024.0),
        "GB" => (UnitKind::Memory, 1024.0 * 1024.0 * 1024.0),
        "TB" => (UnitKind::Memory, 1024.0 * 1024.0 * 1024.0 * 1024.0),
        "us" => (UnitKind::Time, 1.0),
        "ms" => (UnitKind::Time, 1_000.0),
        "s" => (UnitKind::Time, 1_000_000.0),
        "min" => (UnitKind::Time, 60_000_000.0),
        "h" => (UnitKind::Time, 3_600_000_000.0),
        "d" => (UnitKind::Time, 86_400_000_000.0),
        _ => return None,
    };
    Some((kind, factor * multiplier))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn memory_values_compare_in_the_parameters_unit() {
        assert_eq!(
            normalize("1GB", Some("8kB"), Some("integer"), false),
            normalize("131072", Some("8kB"), Some("integer"), false)
        );
        assert_eq!(
            normalize("16MB", Some("kB"), Some("integer"), false),
            "16384"
        );
        assert_ne!(
            normalize("16MB", Some("kB"), Some("integer"), false),
            normalize("8MB", Some("kB"), Some("integer"), false)
        );
    }

    #[test]
    fn time_values_compare_in_the_parameters_unit() {
        assert_eq!(
            normalize("10min", Some("ms"), Some("integer"), false),
            "600000"
        );
        assert_eq!(
            normalize("250ms", Some("ms"), Some("integer"), false),
            normalize("250", Some("ms"), Some("integer"), false)
        );
        assert_eq!(
            normalize("5min", Some("s"), Some("integer"), false),
            normalize("300s", Some("s"), Some("integer"), false)
        );
    }

    #[test]
    fn list_parameters_compare_element_by_element() {
        assert_eq!(
            normalize(
                "pg_stat_statements,auto_explain",
                None,
                Some("string"),
                true
            ),
            normalize(
                "pg_stat_statements, auto_explain",
                None,
                Some("string"),
                true
            )
        );
        assert_eq!(
            normalize("\"$user\", public", None, Some("string"), true),
            "$user,public"
        );
    }

    /// What PostgreSQL stores for an element with a quote or comma in it
    /// (doubled quotes inside quotes) equals the manifest's plain spelling.
    #[test]
    fn list_elements_in_postgres_quoting_equal_the_manifests_spelling() {
        let list = |text: &str| normalize(text, None, Some("string"), true);
        assert_eq!(
            list("\"sch\"\"ema; --\", public"),
            list("\"sch\"ema; --\", public")
        );
        assert_eq!(list("\"sch\"\"ema; --\", public"), "sch\"ema; --,public");
        assert_eq!(list("\"a,b\", c"), "a,b,c");
        assert_ne!(list("\"a,b\", c"), list("a, b, d"));
        assert_eq!(list(""), "");
    }

    #[test]
    fn booleans_and_enums_ignore_spelling() {
        assert_eq!(
            normalize("true", None, Some("bool"), false),
            normalize("on", None, Some("bool"), false)
        );
        assert_eq!(normalize("Replica", None, Some("enum"), false), "replica");
        assert_eq!(normalize("0.5", None, Some("real"), false), "0.5");
        assert_eq!(
            normalize("'%m [%p] '", None, Some("string"), false),
            "'%m [%p] '"
        );
    }
}
