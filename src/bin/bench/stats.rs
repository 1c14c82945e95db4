//! Samples and the Markdown table the benchmark prints.

use std::time::Duration;

/// Repeated measurements of one thing.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let v = self.sorted();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    }

    pub fn median(&self) -> Duration {
        self.percentile(0.5)
    }

    pub fn min(&self) -> Duration {
        self.sorted().first().copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.sorted().last().copied().unwrap_or_default()
    }

    /// `median (min–max, n runs)`.
    pub fn spread_ms(&self) -> String {
        format!(
            "{} (spread {}–{}, {} runs)",
            ms(self.median()),
            ms(self.min()),
            ms(self.max()),
            self.0.len()
        )
    }
}

/// Ratios of paired runs (run i of `a` against run i of `b`): their median and spread.
pub fn ratio_spread(a: &Samples, b: &Samples) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> =
        a.0.iter()
            .zip(&b.0)
            .map(|(x, y)| x.as_secs_f64() / y.as_secs_f64().max(1e-9))
            .collect();
    ratios.sort_by(|x, y| x.total_cmp(y));
    if ratios.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (
        ratios[(ratios.len() - 1) / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    )
}

pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub fn kb(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}

pub struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    pub fn new() -> Self {
        Self { rows: Vec::new() }
    }

    pub fn row(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) {
        let (what, value, note) = (what.into(), value.into(), note.into());
        eprintln!("bench: {what}: {value} {note}");
        self.rows.push((what, value, note));
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("| measure | value | notes |\n|---|---|---|\n");
        for (what, value, note) in &self.rows {
            out.push_str(&format!("| {what} | {value} | {note} |\n"));
        }
        out
    }
}

/// Peak and current resident memory of a process, in KB, from `/proc`.
pub fn rss_kb(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
