//! rate()/cron() schedules and durations: a parsed schedule prints back to one that
//! parses to the same text, and computing its next dates never panics.
#![no_main]

use coffer_core::rotation::{parse_duration, Schedule};
use coffer_core::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(schedule) = Schedule::parse(text) {
        let shown = schedule.to_string();
        let again = Schedule::parse(&shown).expect("a schedule's own text parses");
        assert_eq!(again.to_string(), shown);
        let _ = schedule.check_fires(Timestamp(1_767_225_600_000));
        let mut at = Timestamp(1_767_225_600_000);
        for _ in 0..3 {
            match schedule.next_after(at) {
                Some(next) => {
                    assert!(next.0 > at.0, "next_after went backwards");
                    at = next;
                }
                None => break,
            }
        }
    }
    if let Ok(ms) = parse_duration(text) {
        assert!(ms > 0);
    }
});
