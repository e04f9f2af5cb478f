//! Cron expressions of policy schedules: five fields, minute granularity.
//!
//! Parsing is croner's (POSIX/Vixie semantics); this module adds what a
//! schedule for SQL Agent or a PostgreSQL job scheduler needs: exactly five
//! fields (no seconds, no years) and at least one run time, so `0 0 30 2 *`
//! (February 30th) is rejected instead of silently never running.

use croner::parser::{CronParser, Seconds, Year};

/// Ok when `expression` is a five-field cron expression that fires at least once.
pub fn check(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if !trimmed.starts_with('@') {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(format!("expected 5 fields, found {fields}"));
        }
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let schedule = parser.parse(trimmed).map_err(|error| error.to_string())?;
    // A fixed start keeps the check deterministic; croner searches a bounded
    // number of years ahead and fails when no time matches.
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .ok_or("internal error: bad start date")?;
    schedule
        .find_next_occurrence(&start, false)
        .map(|_| ())
        .map_err(|_| "it never fires (no date matches)".to_string())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_common_schedules() {
        for expression in [
            "0 1 * * 0",
            "*/15 * * * *",
            "30 2 1-7 * MON",
            "0 0 29 2 *",
            "@daily",
        ] {
            assert_eq!(check(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn rejects_wrong_field_counts_bad_values_and_impossible_dates() {
        assert_eq!(
            check("0 1 * *"),
            Err("expected 5 fields, found 4".to_string())
        );
        assert!(check("0 0 1 * * *").is_err());
        assert!(check("61 * * * *").is_err());
        assert!(check("0 25 * * *").is_err());
        assert_eq!(
            check("0 0 30 2 *"),
            Err("it never fires (no date matches)".to_string())
        );
    }
}
