//! `kind: DeploymentWindow`: when deployments may start. Weekly windows in a time zone (deploy
//! only inside them) and dated freezes (never inside them), on apps, environments and
//! pipelines. Rollbacks, aborts and emergency stops are never held by a window.
//!
//! Evaluation is pure: [`DeploymentWindow::closed_at`] says whether an instant is outside the
//! window and, if so, when it opens next; [`next_open`] does the same for every window that
//! applies at once.

use std::fmt;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ObjectMeta;
use crate::name::{AppName, ObjectName};
use crate::time::Timestamp;

/// A `DeploymentWindow` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentWindow {
    pub metadata: ObjectMeta,
    pub spec: WindowSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WindowSpec {
    /// The IANA time zone the days and times are in (`Europe/Berlin`, `UTC`).
    pub time_zone: Zone,
    /// What the window holds: apps, environments (the apps labelled with them), pipelines
    /// (every stage of them).
    pub applies_to: AppliesTo,
    /// Weekly windows: deployments start only inside one of them. None: at any time (but
    /// during a freeze).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<WeeklyWindow>,
    /// Dated freezes: no deployment starts inside them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<Freeze>,
}

/// What a window holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppliesTo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<ObjectName>,
}

impl AppliesTo {
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty() && self.environments.is_empty() && self.pipelines.is_empty()
    }
}

/// Days of the week and a time range on each, in the window's time zone. An `end` at or
/// before `start` ends on the next day (`22:00`–`06:00`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeeklyWindow {
    pub days: Vec<Day>,
    pub start: ClockTime,
    pub end: ClockTime,
}

/// A dated freeze, from `start` to `end` in the window's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Freeze {
    pub start: CivilTime,
    pub end: CivilTime,
    /// Shown to whoever is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A day of the week: `mon` ... `sun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Day::Mon => Weekday::Monday,
            Day::Tue => Weekday::Tuesday,
            Day::Wed => Weekday::Wednesday,
            Day::Thu => Weekday::Thursday,
            Day::Fri => Weekday::Friday,
            Day::Sat => Weekday::Saturday,
            Day::Sun => Weekday::Sunday,
        }
    }
}

/// A time of day, `HH:MM`, from `00:00` to `24:00`, as minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime(u16);

impl ClockTime {
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Parses `HH:MM`.
    ///
    /// # Errors
    /// What is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a time of day: write HH:MM, from 00:00 to 24:00");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A date, or a date and time (`2026-12-24`, `2026-12-24T18:00`), without a zone: the
/// window's time zone places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilTime(DateTime);

impl fmt::Display for CivilTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M"))
    }
}

impl Serialize for CivilTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CivilTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "`{text}` is not a local date and time: write 2026-12-24 or 2026-12-24T18:00 \
                 (the window's `timeZone` places it)"
            ))
        };
        if text.ends_with('Z') || text.contains('+') || text.len() > 19 {
            return Err(bad());
        }
        let parsed = match text.parse::<DateTime>() {
            Ok(dt) => dt,
            Err(_) => text.parse::<Date>().map_err(|_| bad())?.at(0, 0, 0, 0),
        };
        Ok(Self(parsed))
    }
}

/// An IANA time zone name, checked against the time zone database built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// # Errors
    /// The name is not in the time zone database.
    pub fn new(name: &str) -> Result<Self, String> {
        TimeZone::get(name)
            .map(|tz| Self {
                name: name.to_owned(),
                tz,
            })
            .map_err(|_| {
                format!(
                    "unknown time zone `{name}`: use an IANA name such as `Europe/Berlin` or `UTC`"
                )
            })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why a window holds deployments at an instant, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// The window's name.
    pub window: String,
    /// `outside the weekly windows (mon-fri 09:00-17:00 Europe/Berlin)` or `frozen: <reason>`.
    pub why: String,
    /// When the window opens again; `None` when it never does (within a year and a week).
    pub until: Option<Timestamp>,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deployment window `{}`: {}", self.window, self.why)?;
        match self.until {
            Some(t) => write!(f, "; opens at {t}"),
            None => f.write_str("; it does not open within a year"),
        }
    }
}

/// How far ahead [`next_open`] looks.
const HORIZON_DAYS: i64 = 372;

impl DeploymentWindow {
    /// The problem with this window's fields, as a field path and a message.
    pub fn check(&self) -> Result<(), (String, String)> {
        let spec = &self.spec;
        if spec.applies_to.is_empty() {
            return Err((
                "spec.appliesTo".into(),
                "name at least one app, environment or pipeline the window holds".into(),
            ));
        }
        if spec.allow.is_empty() && spec.freezes.is_empty() {
            return Err((
                "spec".into(),
                "a window needs weekly windows (`allow`) or `freezes`".into(),
            ));
        }
        for (i, w) in spec.allow.iter().enumerate() {
            if w.days.is_empty() {
                return Err((
                    format!("spec.allow[{i}].days"),
                    "name at least one day".into(),
                ));
            }
            if w.start == w.end {
                return Err((
                    format!("spec.allow[{i}].end"),
                    "a window cannot start and end at the same time".into(),
                ));
            }
        }
        for (i, f) in spec.freezes.iter().enumerate() {
            if f.end <= f.start {
                return Err((
                    format!("spec.freezes[{i}].end"),
                    format!("the freeze must end after it starts ({})", f.start),
                ));
            }
        }
        Ok(())
    }

    /// Whether the window holds `app` (in `environment`), deployed by `pipeline` if any.
    pub fn applies(
        &self,
        app: &AppName,
        environment: Option<&str>,
        pipeline: Option<&str>,
    ) -> bool {
        let to = &self.spec.applies_to;
        to.apps.contains(app)
            || environment.is_some_and(|e| to.environments.iter().any(|x| x == e))
            || pipeline.is_some_and(|p| to.pipelines.iter().any(|x| x.as_str() == p))
    }

    /// `None` when deployments may start at `at`; otherwise why not and until when.
    pub fn closed_at(&self, at: Timestamp) -> Option<Closed> {
        let why = self.why_closed(at)?;
        let until = self.next_open_alone(at);
        Some(Closed {
            window: self.metadata.name.to_string(),
            why,
            until,
        })
    }

    fn why_closed(&self, at: Timestamp) -> Option<String> {
        let tz = &self.spec.time_zone.tz;
        let local = zoned(at, tz).datetime();
        if let Some(f) = self.freeze_at(local) {
            return Some(match &f.reason {
                Some(r) => format!("frozen from {} to {} ({r})", f.start, f.end),
                None => format!("frozen from {} to {}", f.start, f.end),
            });
        }
        if self.spec.allow.is_empty() || self.in_weekly(at) {
            return None;
        }
        Some(format!(
            "outside its weekly windows ({} {})",
            self.describe_weekly(),
            self.spec.time_zone.name
        ))
    }

    /// `mon,tue 09:00-17:00; sat 10:00-12:00`.
    pub fn describe_weekly(&self) -> String {
        self.spec
            .allow
            .iter()
            .map(|w| {
                let days: Vec<&str> = w.days.iter().map(|d| day_name(*d)).collect();
                format!("{} {}-{}", days.join(","), w.start, w.end)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn freeze_at(&self, local: DateTime) -> Option<&Freeze> {
        self.spec
            .freezes
            .iter()
            .find(|f| f.start.0 <= local && local < f.end.0)
    }

    /// Whether `at` falls in one of the weekly windows: one that started today or, running
    /// past midnight, yesterday.
    fn in_weekly(&self, at: Timestamp) -> bool {
        let tz = &self.spec.time_zone.tz;
        let today = zoned(at, tz).date();
        let Ok(yesterday) = today.yesterday() else {
            return false;
        };
        [yesterday, today].into_iter().any(|day| {
            self.ranges_starting(day)
                .any(|(start, end)| start <= at && at < end)
        })
    }

    /// The weekly windows that start on `day`, as instants.
    fn ranges_starting(&self, day: Date) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let tz = &self.spec.time_zone.tz;
        self.spec
            .allow
            .iter()
            .filter(move |w| w.days.iter().any(|d| d.weekday() == day.weekday()))
            .filter_map(move |w| {
                let start = local_instant(day, w.start, tz)?;
                let end_day = if w.end <= w.start {
                    day.tomorrow().ok()?
                } else {
                    day
                };
                let end = local_instant(end_day, w.end, tz)?;
                Some((start, end))
            })
    }

    /// The first instant at or after `at` at which this window alone lets deployments start.
    fn next_open_alone(&self, at: Timestamp) -> Option<Timestamp> {
        let tz = &self.spec.time_zone.tz;
        let mut t = at;
        // Each round leaves a freeze or enters a weekly window; a few suffice unless freezes
        // and windows interleave, which the bound covers.
        for _ in 0..64 {
            let local = zoned(t, tz).datetime();
            if let Some(f) = self.freeze_at(local) {
                t = local_datetime_instant(f.end.0, tz)?
                    .max(t.plus(std::time::Duration::from_millis(1)));
                continue;
            }
            if self.spec.allow.is_empty() || self.in_weekly(t) {
                return Some(t);
            }
            t = self.next_weekly_start(t)?;
        }
        None
    }

    /// The first start of a weekly window after `at`, within eight days.
    fn next_weekly_start(&self, at: Timestamp) -> Option<Timestamp> {
        let tz = &self.spec.time_zone.tz;
        let mut day = zoned(at, tz).date();
        let mut best: Option<Timestamp> = None;
        for _ in 0..9 {
            for (start, _) in self.ranges_starting(day) {
                if start > at && best.is_none_or(|b| start < b) {
                    best = Some(start);
                }
            }
            day = day.tomorrow().ok()?;
        }
        best
    }
}

/// The first instant at or after `at` at which none of `windows` holds deployments: `Ok(())`
/// when that is `at` itself, otherwise the windows that hold them now and the instant they
/// all open (`None` when that is more than a year away).
///
/// # Errors
/// The windows closed at `at`, and when they all open.
pub fn next_open(
    windows: &[&DeploymentWindow],
    at: Timestamp,
) -> Result<(), (Vec<Closed>, Option<Timestamp>)> {
    let closed: Vec<Closed> = windows.iter().filter_map(|w| w.closed_at(at)).collect();
    if closed.is_empty() {
        return Ok(());
    }
    let horizon = at.plus(std::time::Duration::from_secs(
        u64::try_from(HORIZON_DAYS).unwrap_or(0) * 86_400,
    ));
    let mut t = at;
    let until = loop {
        let mut later = t;
        for w in windows {
            if w.why_closed(t).is_some() {
                match w.next_open_alone(t) {
                    Some(open) => later = later.max(open),
                    None => break,
                }
            }
        }
        if later == t {
            break Some(t);
        }
        if later > horizon {
            break None;
        }
        t = later;
    };
    // The loop above breaks out of the `for` only when a window never opens.
    let until = until.filter(|u| windows.iter().all(|w| w.why_closed(*u).is_none()));
    Err((closed, until))
}

fn day_name(d: Day) -> &'static str {
    match d {
        Day::Mon => "mon",
        Day::Tue => "tue",
        Day::Wed => "wed",
        Day::Thu => "thu",
        Day::Fri => "fri",
        Day::Sat => "sat",
        Day::Sun => "sun",
    }
}

fn zoned(at: Timestamp, tz: &TimeZone) -> jiff::Zoned {
    let ms = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX);
    ts.to_zoned(tz.clone())
}

/// `day` at `time` in `tz`; a time the clocks skip (spring forward) is placed after the gap.
fn local_instant(day: Date, time: ClockTime, tz: &TimeZone) -> Option<Timestamp> {
    let dt = if time.minutes() == 24 * 60 {
        day.tomorrow().ok()?.at(0, 0, 0, 0)
    } else {
        let (h, m) = (time.minutes() / 60, time.minutes() % 60);
        day.at(i8::try_from(h).ok()?, i8::try_from(m).ok()?, 0, 0)
    };
    local_datetime_instant(dt, tz)
}

fn local_datetime_instant(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let z = dt.to_zoned(tz.clone()).ok()?;
    u64::try_from(z.timestamp().as_millisecond())
        .ok()
        .map(Timestamp)
}

#[cfg(test)]
mod tests;
