use super::*;

fn window(yaml: &str) -> DeploymentWindow {
    let spec: WindowSpec = serde_yaml_ng::from_str(yaml).expect("window spec");
    DeploymentWindow {
        metadata: ObjectMeta {
            name: ObjectName::new("w").expect("name"),
            labels: Default::default(),
        },
        spec,
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("instant")
}

const BUSINESS: &str = "
timeZone: Europe/Berlin
appliesTo: {environments: [production]}
allow:
  - days: [mon, tue, wed, thu, fri]
    start: '09:00'
    end: '17:00'
";

#[test]
fn weekly_window_is_read_in_its_time_zone() {
    let w = window(BUSINESS);
    // Monday 2026-12-07 08:30 UTC is 09:30 in Berlin (CET, UTC+1): open.
    assert_eq!(w.closed_at(at("2026-12-07T08:30:00Z")), None);
    // 07:30 UTC is 08:30 in Berlin: closed until 09:00 Berlin = 08:00 UTC.
    let closed = w.closed_at(at("2026-12-07T07:30:00Z")).expect("closed");
    assert_eq!(closed.until, Some(at("2026-12-07T08:00:00Z")));
    assert!(
        closed
            .why
            .contains("mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin"),
        "{}",
        closed.why
    );
    // Friday 17:00 Berlin: closed until Monday 09:00.
    let closed = w.closed_at(at("2026-12-11T16:00:00Z")).expect("closed");
    assert_eq!(closed.until, Some(at("2026-12-14T08:00:00Z")));
}

#[test]
fn summer_time_moves_the_window_in_utc() {
    let w = window(BUSINESS);
    // In July Berlin is UTC+2: 09:00 local is 07:00 UTC.
    assert_eq!(w.closed_at(at("2026-07-06T07:00:00Z")), None);
    let closed = w.closed_at(at("2026-07-06T06:59:00Z")).expect("closed");
    assert_eq!(closed.until, Some(at("2026-07-06T07:00:00Z")));
}

#[test]
fn a_window_past_midnight_ends_the_next_day() {
    let w = window(
        "
timeZone: UTC
appliesTo: {apps: [shop]}
allow: [{days: [sat], start: '22:00', end: '06:00'}]
",
    );
    // 2026-12-12 is a Saturday.
    assert_eq!(w.closed_at(at("2026-12-12T23:00:00Z")), None);
    assert_eq!(w.closed_at(at("2026-12-13T05:59:00Z")), None);
    let closed = w.closed_at(at("2026-12-13T06:00:00Z")).expect("closed");
    assert_eq!(closed.until, Some(at("2026-12-19T22:00:00Z")));
}

#[test]
fn a_freeze_holds_even_inside_the_weekly_window_and_ends_in_one() {
    let w = window(&format!(
        "{BUSINESS}freezes:\n  - {{start: '2026-12-23', end: '2027-01-04T12:00', reason: year end}}\n"
    ));
    let closed = w.closed_at(at("2026-12-23T10:00:00Z")).expect("frozen");
    assert!(closed.why.contains("year end"), "{}", closed.why);
    // Monday 2027-01-04 12:00 Berlin is 11:00 UTC, inside the weekly window.
    assert_eq!(closed.until, Some(at("2027-01-04T11:00:00Z")));
}

#[test]
fn several_windows_open_when_all_do() {
    let business = window(BUSINESS);
    let freeze = window(
        "
timeZone: America/New_York
appliesTo: {pipelines: [shop]}
freezes: [{start: '2026-12-07T00:00', end: '2026-12-08T00:00'}]
",
    );
    // Monday 10:00 Berlin; New York's Monday lasts until 05:00 UTC Tuesday, when Berlin is
    // closed: both open on Tuesday 09:00 Berlin.
    let (closed, until) =
        next_open(&[&business, &freeze], at("2026-12-07T09:00:00Z")).expect_err("held");
    assert_eq!(closed.len(), 1);
    assert_eq!(until, Some(at("2026-12-08T08:00:00Z")));
    assert_eq!(
        next_open(&[&business, &freeze], at("2026-12-08T08:00:00Z")),
        Ok(())
    );
}

#[test]
fn bad_fields_are_refused_with_their_path() {
    let err = serde_yaml_ng::from_str::<WindowSpec>("timeZone: Mars/Olympus\nappliesTo: {}\n")
        .expect_err("bad zone")
        .to_string();
    assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
    let err = serde_yaml_ng::from_str::<WindowSpec>(
        "timeZone: UTC\nappliesTo: {apps: [a]}\nallow: [{days: [mon], start: '9:00', end: '17:00'}]\n",
    )
    .expect_err("bad time")
    .to_string();
    assert!(err.contains("`9:00` is not a time of day"), "{err}");
    let w = window(
        "timeZone: UTC\nappliesTo: {}\nfreezes: [{start: '2026-01-02', end: '2026-01-03'}]\n",
    );
    assert_eq!(w.check().expect_err("no scope").0, "spec.appliesTo");
    let w = window(
        "timeZone: UTC\nappliesTo: {apps: [a]}\nfreezes: [{start: '2026-01-03', end: '2026-01-02'}]\n",
    );
    assert_eq!(w.check().expect_err("backwards").0, "spec.freezes[0].end");
    let err = serde_yaml_ng::from_str::<WindowSpec>(
        "timeZone: UTC\nappliesTo: {apps: [a]}\nfreezes: [{start: '2026-01-03T00:00Z', end: '2026-01-04'}]\n",
    )
    .expect_err("zoned")
    .to_string();
    assert!(err.contains("not a local date and time"), "{err}");
}

#[test]
fn applies_by_app_environment_or_pipeline() {
    let w = window(
        "timeZone: UTC\nappliesTo: {apps: [a], environments: [prod], pipelines: [p]}\nfreezes: [{start: '2026-01-02', end: '2026-01-03'}]\n",
    );
    let app = |n: &str| AppName::new(n).expect("name");
    assert!(w.applies(&app("a"), None, None));
    assert!(w.applies(&app("b"), Some("prod"), None));
    assert!(w.applies(&app("b"), None, Some("p")));
    assert!(!w.applies(&app("b"), Some("dev"), Some("q")));
}
