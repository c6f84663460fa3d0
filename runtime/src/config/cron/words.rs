//! A cron expression in words, for a person checking a change at a glance:
//! `0 7 * * 1-5` is "at 07:00 Monday–Friday". The common shapes are told
//! in words; anything else is told as the expression itself, which the next
//! fire times beside it make concrete.

use super::CronExpr;

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl CronExpr {
    /// The expression in words: "at 07:00 Monday–Friday", "every 15
    /// minutes", "at 09:30 on day 1 of the month"; "on cron `…`" where no
    /// words fit.
    pub fn in_words(&self) -> String {
        words(self.as_str()).unwrap_or_else(|| format!("on cron `{}`", self.as_str()))
    }
}

fn words(text: &str) -> Option<String> {
    let expanded = match text.trim() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        other => other,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = fields.as_slice() else {
        return None;
    };
    let time = time_of_day(minute, hour)?;
    let days = match (*day, *weekday) {
        ("*", "*") => time.starts_with("at ").then(|| "every day".to_owned()),
        ("*", weekday) => Some(weekdays(weekday)?),
        (day, "*") => Some(format!("on day {} of the month", list(&numbers(day, 1, 31)?))),
        _ => return None,
    };
    let months = match *month {
        "*" => None,
        month => Some(format!("in {}", list(&names(month, 1, 12, &MONTHS, 1)?))),
    };
    let mut said = time;
    for part in [days, months].into_iter().flatten() {
        said.push(' ');
        said.push_str(&part);
    }
    Some(said)
}

/// "at 07:00", "at 07:00 and 19:00", "every 15 minutes", "every hour at :30".
fn time_of_day(minute: &str, hour: &str) -> Option<String> {
    if let Some(step) = minute.strip_prefix("*/") {
        let step: u32 = step.parse().ok()?;
        return (hour == "*").then(|| match step {
            1 => "every minute".to_owned(),
            n => format!("every {n} minutes"),
        });
    }
    let minutes = numbers(minute, 0, 59)?;
    if hour == "*" {
        let at: Vec<String> = minutes.iter().map(|m| format!(":{m:02}")).collect();
        return Some(format!("every hour at {}", list(&at)));
    }
    if let Some(step) = hour.strip_prefix("*/") {
        let step: u32 = step.parse().ok()?;
        let [minute] = minutes.as_slice() else {
            return None;
        };
        return Some(format!("every {step} hours at :{minute:02}"));
    }
    let hours = numbers(hour, 0, 23)?;
    if hours.len() * minutes.len() > 6 {
        return None;
    }
    let times: Vec<String> = hours
        .iter()
        .flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}")))
        .collect();
    Some(format!("at {}", list(&times)))
}

/// "Monday–Friday", "Monday, Wednesday and Friday", "Sunday".
fn weekdays(field: &str) -> Option<String> {
    if let Some((from, to)) = field.split_once('-') {
        if !field.contains(',') {
            let (from, to) = (day_number(from)?, day_number(to)?);
            if from < to {
                return Some(format!("{}–{}", DAYS[from % 7], DAYS[to % 7]));
            }
        }
    }
    let days = names(field, 0, 7, &DAYS, 0)?;
    Some(list(&days))
}

fn day_number(text: &str) -> Option<usize> {
    text.parse::<usize>()
        .ok()
        .filter(|d| *d <= 7)
        .or_else(|| DAYS.iter().position(|d| d[..3].eq_ignore_ascii_case(text)))
}

/// The numbers of a field of plain numbers and ranges (`1,15`, `9-11`)
/// within `low..=high`; none for steps or names.
fn numbers(field: &str, low: u32, high: u32) -> Option<Vec<u32>> {
    let mut numbers = Vec::new();
    for part in field.split(',') {
        let (from, to) = match part.split_once('-') {
            Some((from, to)) => (from.parse().ok()?, to.parse().ok()?),
            None => {
                let n: u32 = part.parse().ok()?;
                (n, n)
            }
        };
        if from < low || to > high || from > to {
            return None;
        }
        numbers.extend(from..=to);
    }
    Some(numbers)
}

/// The names of a field's values (`mon,wed`, `1-3`, `jan`), `first` being
/// the number of `names[0]`; a day-of-week 7 is Sunday.
fn names(field: &str, low: u32, high: u32, names: &[&str], first: u32) -> Option<Vec<String>> {
    let mut said = Vec::new();
    for part in field.split(',') {
        let number = |text: &str| -> Option<u32> {
            text.parse().ok().or_else(|| {
                names
                    .iter()
                    .position(|n| n[..3].eq_ignore_ascii_case(text))
                    .map(|i| i as u32 + first)
            })
        };
        let (from, to) = match part.split_once('-') {
            Some((from, to)) => (number(from)?, number(to)?),
            None => (number(part)?, number(part)?),
        };
        if from < low || to > high || from > to {
            return None;
        }
        for n in from..=to {
            let name = names[((n - first) as usize) % names.len()].to_owned();
            if !said.contains(&name) {
                said.push(name);
            }
        }
    }
    Some(said)
}

/// "a", "a and b", "a, b and c".
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: &str) -> String {
        CronExpr::parse(text).unwrap().in_words()
    }

    #[test]
    fn the_common_shapes_are_told_in_words() {
        assert_eq!(said("0 7 * * 1-5"), "at 07:00 Monday–Friday");
        assert_eq!(said("0 7 * * mon-fri"), "at 07:00 Monday–Friday");
        assert_eq!(said("30 9 * * *"), "at 09:30 every day");
        assert_eq!(said("0 7,19 * * *"), "at 07:00 and 19:00 every day");
        assert_eq!(said("0 9 * * 1,3,5"), "at 09:00 Monday, Wednesday and Friday");
        assert_eq!(said("0 9 * * 7"), "at 09:00 Sunday");
        assert_eq!(said("*/15 * * * *"), "every 15 minutes");
        assert_eq!(said("5 * * * *"), "every hour at :05");
        assert_eq!(said("0 */2 * * *"), "every 2 hours at :00");
        assert_eq!(said("0 9 1 * *"), "at 09:00 on day 1 of the month");
        assert_eq!(said("0 0 1 1 *"), "at 00:00 on day 1 of the month in January");
        assert_eq!(said("@daily"), "at 00:00 every day");
        assert_eq!(said("0 8 * 12 *"), "at 08:00 every day in December");
    }

    #[test]
    fn what_words_do_not_fit_is_told_as_the_expression() {
        assert_eq!(said("0 9 13 * fri"), "on cron `0 9 13 * fri`");
        assert_eq!(said("*/5 9-17 * * *"), "on cron `*/5 9-17 * * *`");
        assert_eq!(said("0 * * * 1-5/2"), "on cron `0 * * * 1-5/2`");
    }
}
