//! Rotation schedules as Secrets Manager writes them: `rate(N hours|days)` and six-field
//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, all in UTC, plus the
//! rotation window (`2h`, `90m`, `1d`).

use time::{Date, Duration as TimeDuration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::model::Timestamp;

const EXAMPLES: &str = "for example rate(30 days), rate(12 hours) or cron(0 4 1 * ? *)";
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

/// Why an expression is not a schedule: what is wrong, with an example of a good one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}; write {EXAMPLES}")]
pub struct ScheduleError {
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> ScheduleError {
    ScheduleError {
        reason: reason.into(),
    }
}

/// A parsed schedule; `Display` gives back its canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate { amount: u32, unit: RateUnit },
    Cron(Box<Cron>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Hours,
    Days,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("the schedule is empty"));
        }
        let (kind, body) = match text.split_once('(') {
            Some((kind, rest)) => match rest.strip_suffix(')') {
                Some(body) => (kind.trim(), body.trim()),
                None => return Err(bad(format!("{text:?} is missing its closing parenthesis"))),
            },
            None => return Err(bad(format!("{text:?} is neither rate(...) nor cron(...)"))),
        };
        match kind {
            "rate" => parse_rate(body),
            "cron" => Ok(Schedule::Cron(Box::new(Cron::parse(body)?))),
            other => Err(bad(format!(
                "{other:?} is not a schedule kind (use rate or cron)"
            ))),
        }
    }

    /// Refuses a schedule with no rotation after `now` (30 February, only past years): it
    /// would be saved and then silently never rotate. Checked when a schedule is set, not
    /// when a stored one is read: a schedule may end after it was saved.
    pub fn check_fires(&self, now: Timestamp) -> Result<(), ScheduleError> {
        match self {
            Schedule::Cron(cron) if cron.next_after(now).is_none() => Err(bad(format!(
                "{self} never fires: no minute from now until {LAST_YEAR} matches it (a day that does not exist in the month, like 30 February, or only past years); check the day-of-month, month and year"
            ))),
            _ => Ok(()),
        }
    }

    /// The first rotation due after `last` (the last rotation, or when rotation was set up).
    pub fn next_after(&self, last: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Rate { amount, unit } => {
                let hours = match unit {
                    RateUnit::Hours => i64::from(*amount),
                    RateUnit::Days => i64::from(*amount) * 24,
                };
                Some(Timestamp(last.0 + hours * 3_600_000))
            }
            Schedule::Cron(cron) => cron.next_after(last),
        }
    }

    /// When a rotation scheduled for `scheduled` may start, given that it may only run
    /// within `window_ms` of an occurrence of this schedule. While that window is still
    /// open at `now` it is `scheduled`; once it has closed with nothing run (the machine
    /// was off or asleep), the rotation waits for the first later occurrence whose window
    /// has not closed, in the schedule's own cadence: a window exists so that rotations
    /// happen when the owner said they may (a maintenance slot), not whenever a laptop
    /// wakes up.
    pub fn window_start(
        &self,
        scheduled: Timestamp,
        window_ms: i64,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let window_ms = window_ms.max(1);
        if now.0 < scheduled.0.saturating_add(window_ms) {
            return Some(scheduled);
        }
        match self {
            Schedule::Rate { .. } => {
                let period = self.min_interval_ms();
                let periods = (now.0 - window_ms - scheduled.0) / period + 1;
                Some(Timestamp(
                    scheduled.0.saturating_add(periods.saturating_mul(period)),
                ))
            }
            // The first firing after `now - window` is the first whose window is still open.
            Schedule::Cron(cron) => cron.next_after(Timestamp(now.0 - window_ms)),
        }
    }

    /// The shortest time between two rotations, used to check the window fits.
    fn min_interval_ms(&self) -> i64 {
        match self {
            Schedule::Rate { amount, unit } => {
                i64::from(*amount)
                    * match unit {
                        RateUnit::Hours => 3_600_000,
                        RateUnit::Days => 86_400_000,
                    }
            }
            // A cron can fire every minute; its window is checked against its hours.
            Schedule::Cron(_) => 60_000,
        }
    }

    /// Checks that a window of `window_ms` fits between two rotations.
    pub fn check_window(&self, window_ms: i64) -> Result<(), ScheduleError> {
        if let Schedule::Rate { .. } = self {
            if window_ms >= self.min_interval_ms() {
                return Err(bad(format!(
                    "the rotation window ({}) must be shorter than the time between rotations ({self})",
                    format_duration(window_ms)
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Rate { amount, unit } => {
                let unit = match (unit, amount) {
                    (RateUnit::Hours, 1) => "hour",
                    (RateUnit::Hours, _) => "hours",
                    (RateUnit::Days, 1) => "day",
                    (RateUnit::Days, _) => "days",
                };
                write!(f, "rate({amount} {unit})")
            }
            Schedule::Cron(cron) => write!(f, "cron({})", cron.text),
        }
    }
}

fn parse_rate(body: &str) -> Result<Schedule, ScheduleError> {
    let mut parts = body.split_whitespace();
    let (Some(amount), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!(
            "rate({body}) must be a number and a unit, like rate(30 days)"
        )));
    };
    let amount: u32 = amount
        .parse()
        .map_err(|_| bad(format!("{amount:?} in rate({body}) is not a whole number")))?;
    let unit = match unit {
        "hour" | "hours" => RateUnit::Hours,
        "day" | "days" => RateUnit::Days,
        other => {
            return Err(bad(format!(
                "{other:?} in rate({body}) is not a unit: use hours or days"
            )))
        }
    };
    let max = match unit {
        RateUnit::Hours => 24_000,
        RateUnit::Days => 1000,
    };
    if amount == 0 || amount > max {
        return Err(bad(format!(
            "rate({body}) is out of range: use 1 to {max} {}",
            if unit == RateUnit::Hours {
                "hours"
            } else {
                "days"
            }
        )));
    }
    Ok(Schedule::Rate { amount, unit })
}

/// A six-field AWS cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    /// Bits 1..=31; `None` when the field is `?`.
    days_of_month: Option<u64>,
    last_day_of_month: bool,
    /// Bits 1..=7 (1 = Sunday, as AWS counts); `None` when the field is `?`.
    days_of_week: Option<DayOfWeek>,
    months: u64,
    /// Bits for FIRST_YEAR..=LAST_YEAR.
    years: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    Set(u64),
    /// `d#n`: the n-th such weekday of the month.
    Nth {
        day: u32,
        n: u32,
    },
    /// `dL`: the last such weekday of the month.
    Last {
        day: u32,
    },
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Field = Field {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Field = Field {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEAR: Field = Field {
    name: "year",
    min: FIRST_YEAR as u32,
    max: LAST_YEAR as u32,
    names: &[],
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, ScheduleError> {
        let upper = text.to_ascii_uppercase();
        if let Some(index) = self.names.iter().position(|n| *n == upper) {
            return Ok(self.min + index as u32);
        }
        let value: u32 = text.parse().map_err(|_| {
            let names = if self.names.is_empty() {
                String::new()
            } else {
                format!(" or {}-{}", self.names[0], self.names[self.names.len() - 1])
            };
            bad(format!(
                "{text:?} is not a valid {} value (use {}-{}{names})",
                self.name, self.min, self.max
            ))
        })?;
        if value < self.min || value > self.max {
            return Err(bad(format!(
                "{value} is out of range for {} (use {}-{})",
                self.name, self.min, self.max
            )));
        }
        Ok(value)
    }

    /// Parses `*`, `a`, `a-b`, `*/s`, `a/s`, `a-b/s` and comma lists of them into the
    /// list of values they select.
    fn values(&self, text: &str) -> Result<Vec<u32>, ScheduleError> {
        let mut out = Vec::new();
        for item in text.split(',') {
            if item.is_empty() {
                return Err(bad(format!(
                    "{} field {text:?} has an empty item",
                    self.name
                )));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!(
                            "step {step:?} in the {} field is not a positive number",
                            self.name
                        ))
                    })?;
                    (range, step)
                }
                None => (item, 1),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(bad(format!(
                        "range {range:?} in the {} field runs backwards",
                        self.name
                    )));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                (a, if item.contains('/') { self.max } else { a })
            };
            out.extend((lo..=hi).step_by(step as usize));
        }
        Ok(out)
    }

    fn bits(&self, text: &str) -> Result<u64, ScheduleError> {
        Ok(self
            .values(text)?
            .iter()
            .fold(0u64, |bits, v| bits | 1 << v))
    }
}

impl Cron {
    pub fn parse(body: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(bad(format!(
                "cron({body}) has {} fields; AWS cron takes six: minutes hours day-of-month month day-of-week year",
                fields.len()
            )));
        }
        let (dom, dow) = (fields[2], fields[4]);
        match (dom == "?", dow == "?") {
            (true, true) => {
                return Err(bad(
                    "day-of-month and day-of-week cannot both be ?: give one of them",
                ))
            }
            (false, false) => {
                return Err(bad(
                    "give either day-of-month or day-of-week and put ? in the other (e.g. cron(0 4 1 * ? *) or cron(0 4 ? * MON *))",
                ))
            }
            _ => {}
        }
        for (field, name) in [
            (fields[0], "minutes"),
            (fields[1], "hours"),
            (fields[3], "month"),
            (fields[5], "year"),
        ] {
            if field == "?" {
                return Err(bad(format!(
                    "? is only allowed in day-of-month or day-of-week, not in {name}"
                )));
            }
        }
        let (days_of_month, last_day_of_month) = match dom {
            "?" => (None, false),
            "L" | "l" => (Some(0), true),
            other if other.to_ascii_uppercase().contains('W') => {
                return Err(bad(format!(
                    "{other:?}: W (nearest weekday) is not supported in day-of-month"
                )))
            }
            other => (Some(DAY_OF_MONTH.bits(other)?), false),
        };
        let days_of_week = if dow == "?" {
            None
        } else if let Some((day, n)) = dow.split_once('#') {
            let day = DAY_OF_WEEK.value(day)?;
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| bad(format!("{dow:?}: the number after # must be 1 to 5")))?;
            Some(DayOfWeek::Nth { day, n })
        } else if let Some(day) = dow.strip_suffix(['L', 'l']).filter(|d| !d.is_empty()) {
            Some(DayOfWeek::Last {
                day: DAY_OF_WEEK.value(day)?,
            })
        } else {
            Some(DayOfWeek::Set(DAY_OF_WEEK.bits(dow)?))
        };
        let mut years = vec![false; (LAST_YEAR - FIRST_YEAR + 1) as usize];
        for year in YEAR.values(fields[5])? {
            years[(year as i32 - FIRST_YEAR) as usize] = true;
        }
        Ok(Cron {
            text: fields.join(" "),
            minutes: MINUTES.bits(fields[0])?,
            hours: HOURS.bits(fields[1])?,
            days_of_month,
            last_day_of_month,
            days_of_week,
            months: MONTH.bits(fields[3])?,
            years,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let year_ok = (FIRST_YEAR..=LAST_YEAR).contains(&date.year())
            && self.years[(date.year() - FIRST_YEAR) as usize];
        if !year_ok || self.months & (1 << u8::from(date.month())) == 0 {
            return false;
        }
        let dom = u32::from(date.day());
        let month_len = u32::from(date.month().length(date.year()));
        if let Some(bits) = self.days_of_month {
            return if self.last_day_of_month {
                dom == month_len
            } else {
                bits & (1 << dom) != 0
            };
        }
        // AWS numbers weekdays 1 (Sunday) to 7 (Saturday).
        let weekday = u32::from(date.weekday().number_from_sunday());
        match &self.days_of_week {
            Some(DayOfWeek::Set(bits)) => bits & (1 << weekday) != 0,
            Some(DayOfWeek::Nth { day, n }) => weekday == *day && (dom - 1) / 7 + 1 == *n,
            Some(DayOfWeek::Last { day }) => weekday == *day && dom + 7 > month_len,
            None => false,
        }
    }

    /// The first matching minute strictly after `after`, or `None` if there is none
    /// before the end of 2199.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = OffsetDateTime::from_unix_timestamp(after.0.div_euclid(1000))
            .ok()?
            .replace_second(0)
            .ok()?
            + TimeDuration::minutes(1);
        let mut date = start.date();
        let mut first_day = true;
        while date.year() <= LAST_YEAR {
            if self.day_matches(date) {
                let from = if first_day {
                    (u32::from(start.hour()), u32::from(start.minute()))
                } else {
                    (0, 0)
                };
                for hour in from.0..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first_minute = if hour == from.0 { from.1 } else { 0 };
                    for minute in first_minute..60 {
                        if self.minutes & (1 << minute) != 0 {
                            let time = Time::from_hms(hour as u8, minute as u8, 0).ok()?;
                            let at = PrimitiveDateTime::new(date, time).assume_utc();
                            return Some(Timestamp((at.unix_timestamp()) * 1000));
                        }
                    }
                }
            }
            first_day = false;
            date = if self.months & (1 << u8::from(date.month())) == 0 {
                // Skip the rest of a month that never matches.
                let (year, month) = match date.month() {
                    Month::December => (date.year() + 1, Month::January),
                    month => (date.year(), month.next()),
                };
                Date::from_calendar_date(year, month, 1).ok()?
            } else {
                date.next_day()?
            };
        }
        None
    }
}

/// Parses a window or timeout like `2h`, `90m`, `45s`, `1d` or `1h30m` into milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, ScheduleError> {
    let text = text.trim();
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => {
                return Err(ScheduleError {
                    reason: format!(
                        "{text:?} is not a duration: use a number with s, m, h or d, like 2h or 90m"
                    ),
                })
            }
        };
        let n: i64 = number.parse().map_err(|_| ScheduleError {
            reason: format!("{text:?} is not a duration: a unit must follow a number, like 2h"),
        })?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any || total <= 0 {
        return Err(ScheduleError {
            reason: format!(
                "{text:?} is not a duration: use a positive number with s, m, h or d, like 2h or 90m"
            ),
        });
    }
    Ok(total)
}

/// Formats milliseconds the way [`parse_duration`] reads them.
pub fn format_duration(ms: i64) -> String {
    let mut rest = ms / 1000;
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= secs {
            out.push_str(&format!("{}{unit}", rest / secs));
            rest %= secs;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        let t =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        Timestamp(t.unix_timestamp() * 1000)
    }

    fn next(expr: &str, after: &str) -> String {
        Schedule::parse(expr)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .rfc3339()
    }

    fn window_start(expr: &str, scheduled: &str, window: &str, now: &str) -> String {
        Schedule::parse(expr)
            .unwrap()
            .window_start(at(scheduled), parse_duration(window).unwrap(), at(now))
            .unwrap()
            .rfc3339()
    }

    #[test]
    fn a_rotation_waits_for_an_open_window() {
        let daily_4am = "cron(0 4 * * ? *)";
        // Inside the window, or before it opens: the scheduled time stands.
        for now in [
            "2026-03-01T03:00:00Z",
            "2026-03-01T04:00:00Z",
            "2026-03-01T05:59:59Z",
        ] {
            assert_eq!(
                window_start(daily_4am, "2026-03-01T04:00:00Z", "2h", now),
                "2026-03-01T04:00:00Z",
                "{now}"
            );
        }
        // The window closed (its end is exclusive) with nothing run: the next day's.
        for now in ["2026-03-01T06:00:00Z", "2026-03-01T23:00:00Z"] {
            assert_eq!(
                window_start(daily_4am, "2026-03-01T04:00:00Z", "2h", now),
                "2026-03-02T04:00:00Z",
                "{now}"
            );
        }
        // Three days asleep: the next window is still the next 04:00, not a catch-up.
        assert_eq!(
            window_start(
                daily_4am,
                "2026-03-01T04:00:00Z",
                "2h",
                "2026-03-04T05:00:00Z"
            ),
            "2026-03-04T04:00:00Z"
        );
        assert_eq!(
            window_start(
                daily_4am,
                "2026-03-01T04:00:00Z",
                "2h",
                "2026-03-04T07:00:00Z"
            ),
            "2026-03-05T04:00:00Z"
        );
    }

    #[test]
    fn a_rate_keeps_its_cadence_when_a_window_is_missed() {
        let every_6h = "rate(6 hours)";
        let scheduled = "2026-03-01T00:00:00Z";
        assert_eq!(
            window_start(every_6h, scheduled, "1h", "2026-03-01T00:59:00Z"),
            scheduled
        );
        assert_eq!(
            window_start(every_6h, scheduled, "1h", "2026-03-01T01:00:00Z"),
            "2026-03-01T06:00:00Z"
        );
        // Two periods and a bit later, inside the third window.
        assert_eq!(
            window_start(every_6h, scheduled, "1h", "2026-03-01T12:30:00Z"),
            "2026-03-01T12:00:00Z"
        );
        assert_eq!(
            window_start(every_6h, scheduled, "1h", "2026-03-01T13:00:00Z"),
            "2026-03-01T18:00:00Z"
        );
    }

    #[test]
    fn rates_parse_and_add_up() {
        assert_eq!(
            Schedule::parse("rate(30 days)").unwrap(),
            Schedule::Rate {
                amount: 30,
                unit: RateUnit::Days
            }
        );
        assert_eq!(
            Schedule::parse(" rate(1 day) ").unwrap().to_string(),
            "rate(1 day)"
        );
        assert_eq!(
            next("rate(12 hours)", "2026-01-31T20:00:00Z"),
            "2026-02-01T08:00:00Z"
        );
        assert_eq!(
            next("rate(30 days)", "2026-01-15T10:30:00Z"),
            "2026-02-14T10:30:00Z"
        );
    }

    #[test]
    fn cron_next_dates() {
        // 04:00 on the 1st of every month.
        assert_eq!(
            next("cron(0 4 1 * ? *)", "2026-01-01T04:00:00Z"),
            "2026-02-01T04:00:00Z"
        );
        assert_eq!(
            next("cron(0 4 1 * ? *)", "2026-01-01T03:59:59Z"),
            "2026-01-01T04:00:00Z"
        );
        // Every Monday at 08:30; 2026-03-04 is a Wednesday.
        assert_eq!(
            next("cron(30 8 ? * MON *)", "2026-03-04T12:00:00Z"),
            "2026-03-09T08:30:00Z"
        );
        // Last day of February in a leap year and in a common year.
        assert_eq!(
            next("cron(0 0 L * ? *)", "2028-02-10T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2027-03-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        // Second Tuesday; last Friday.
        assert_eq!(
            next("cron(0 9 ? * 3#2 *)", "2026-03-01T00:00:00Z"),
            "2026-03-10T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 ? * 6L *)", "2026-03-01T00:00:00Z"),
            "2026-03-27T09:00:00Z"
        );
        // Steps, ranges, lists and month names; a year field that ends.
        // The last match of a year-bounded expression, then none.
        assert!(Schedule::parse("cron(*/15 10-12 1,15 JAN-MAR ? 2026)")
            .unwrap()
            .next_after(at("2026-03-15T12:50:00Z"))
            .is_none());
        assert_eq!(
            next(
                "cron(*/15 10-12 1,15 JAN-MAR ? 2026)",
                "2026-03-15T12:10:00Z"
            ),
            "2026-03-15T12:15:00Z"
        );
        assert_eq!(
            next(
                "cron(*/15 10-12 1,15 JAN-MAR ? 2026)",
                "2026-01-01T11:50:00Z"
            ),
            "2026-01-01T12:00:00Z"
        );
        assert_eq!(
            next(
                "cron(*/15 10-12 1,15 JAN-MAR ? 2026)",
                "2026-01-01T12:45:00Z"
            ),
            "2026-01-15T10:00:00Z"
        );
        assert!(Schedule::parse("cron(0 0 1 1 ? 2026)")
            .unwrap()
            .next_after(at("2026-06-01T00:00:00Z"))
            .is_none());
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused_when_set() {
        let now = at("2026-06-01T00:00:00Z");
        for expr in [
            "cron(0 0 30 2 ? *)",
            "cron(0 0 31 4,6,9,11 ? *)",
            "cron(0 4 1 * ? 2020)",
        ] {
            let err = Schedule::parse(expr)
                .unwrap()
                .check_fires(now)
                .unwrap_err()
                .to_string();
            assert!(err.contains("never fires"), "{expr}: {err}");
        }
        Schedule::parse("cron(0 4 1 * ? 2026)")
            .unwrap()
            .check_fires(now)
            .unwrap();
        Schedule::parse("rate(1 day)")
            .unwrap()
            .check_fires(now)
            .unwrap();
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("every day", "neither rate"),
            ("rate(30 days", "closing parenthesis"),
            ("rate(0 days)", "out of range"),
            ("rate(5 weeks)", "not a unit"),
            ("rate(x days)", "not a whole number"),
            ("rate(30)", "a number and a unit"),
            ("cron(0 4 * * *)", "has 5 fields"),
            ("cron(0 4 1 * MON *)", "put ? in the other"),
            ("cron(0 4 ? * ? *)", "cannot both be ?"),
            ("cron(61 4 1 * ? *)", "out of range for minutes"),
            ("cron(0 25 1 * ? *)", "out of range for hours"),
            ("cron(0 4 1 FOO ? *)", "not a valid month"),
            ("cron(0 4 ? * MON#6 *)", "1 to 5"),
            ("cron(0 4 15W * ? *)", "not supported"),
            ("cron(0 4 9-3 * ? *)", "runs backwards"),
            ("cron(0/0 4 1 * ? *)", "not a positive number"),
            ("weekly(1)", "not a schedule kind"),
        ];
        for (expr, needle) in cases {
            let err = Schedule::parse(expr).unwrap_err().to_string();
            assert!(err.contains(needle), "{expr:?}: {err}");
            assert!(
                err.contains("rate(30 days)"),
                "{expr:?} gives an example: {err}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert_eq!(format_duration(5_400_000), "1h30m");
        for bad in ["", "2", "h", "2x", "0h", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let rate = Schedule::parse("rate(2 hours)").unwrap();
        assert!(rate.check_window(3_600_000).is_ok());
        assert!(rate.check_window(7_200_000).is_err());
    }
}
