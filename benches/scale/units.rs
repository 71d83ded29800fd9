//! How the benchmark writes durations, sizes and rates, in its progress lines and its report.

use std::time::Duration;

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s ({:.1} min)", s / 60.0)
    }
}

/// A duration as the operator's flags spell it.
pub fn flag_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// 10000 → "10 000".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub fn rate_str(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// `part` as a percentage of `whole` (0 of nothing).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A target met, or not (in bold).
pub fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}
