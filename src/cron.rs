//! Cron expressions of policy schedules: five fields, minute granularity.
//!
//! Parsing is croner's (POSIX/Vixie semantics); this module adds what a
//! schedule for SQL Agent or a PostgreSQL job scheduler needs: exactly five
//! fields (no seconds, no years) and at least one run time, so `0 0 30 2 *`
//! (February 30th) is rejected instead of silently never running.

use croner::parser::{CronParser, Seconds, Year};

/// Name and allowed range of each of the five fields.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Numbers in a field (in lists, ranges and steps) must be in range; names
/// (MON, JAN) and special characters are left to the parser.
fn check_numbers(text: &str, (name, low, high): (&str, u32, u32)) -> Result<(), String> {
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step
            && step.parse::<u32>().is_ok_and(|step| step == 0)
        {
            return Err(format!("{name} step must be at least 1"));
        }
        for bound in range.split('-') {
            if let Ok(number) = bound.parse::<u32>()
                && (number < low || number > high)
            {
                return Err(format!("{name} {number} is out of range {low}-{high}"));
            }
        }
    }
    Ok(())
}

/// Ok when `expression` is a five-field cron expression that fires at least once.
pub fn check(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if !trimmed.starts_with('@') {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(format!("expected 5 fields, found {fields}"));
        }
        for (text, field) in trimmed.split_whitespace().zip(FIELDS) {
            check_numbers(text, field)?;
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
        assert_eq!(
            check("0 25 * * *"),
            Err("hour 25 is out of range 0-23".to_string())
        );
        assert_eq!(
            check("*/0 * * * *"),
            Err("minute step must be at least 1".to_string())
        );
        assert_eq!(
            check("0 0 30 2 *"),
            Err("it never fires (no date matches)".to_string())
        );
    }
}
