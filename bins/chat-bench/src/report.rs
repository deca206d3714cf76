//! The results: a table for the terminal, JSON for machines, and a latency chart (SVG) for people.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
    /// (quantile, ms) points for the chart.
    #[serde(skip)]
    pub(crate) curve: Vec<(f64, f64)>,
}

impl Latency {
    /// From a histogram of microseconds.
    pub(crate) fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        let curve =
            [0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999].iter().map(|q| (*q, ms(*q))).collect();
        Self { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), p999: ms(0.999), max: histogram.max() as f64 / 1000.0, curve }
    }
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) operations: u64,
    pub(crate) errors: u64,
    pub(crate) per_second: f64,
    /// `per_second` divided by the Redis ceiling.
    pub(crate) ratio: f64,
    pub(crate) latency: Latency,
    /// Realtime only: events that never arrived, and events that arrived twice.
    pub(crate) lost: Option<u64>,
    pub(crate) duplicated: Option<u64>,
}

/// Memory and connection figures.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Memory {
    pub(crate) resident_after_rest_kib: Option<u64>,
    pub(crate) idle_connections: usize,
    pub(crate) per_connection_kib: Option<f64>,
    pub(crate) open_seconds: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) cpus: usize,
    /// `redis-benchmark -q -c 32 -t set` against the same redis-server, requests per second.
    pub(crate) redis_ceiling_per_second: f64,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) memory: Memory,
}

impl Report {
    /// The table printed at the end.
    pub(crate) fn table(&self) -> String {
        let mut out = format!(
            "Redis ceiling (redis-benchmark -c 32 -t set): {:.0}/s on {} CPUs\n\n",
            self.redis_ceiling_per_second, self.cpus
        );
        out.push_str(&format!(
            "{:<24} {:>5} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>5} {:>5}\n",
            "scenario",
            "conc",
            "ops/s",
            "ratio",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9",
            "max ms",
            "errors",
            "lost",
            "dup"
        ));
        for s in &self.scenarios {
            let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            out.push_str(&format!(
                "{:<24} {:>5} {:>10.0} {:>6.2}x {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>6} {:>5} {:>5}\n",
                s.name,
                s.concurrency,
                s.per_second,
                s.ratio,
                s.latency.p50,
                s.latency.p90,
                s.latency.p99,
                s.latency.p999,
                s.latency.max,
                s.errors,
                opt(s.lost),
                opt(s.duplicated)
            ));
        }
        let m = &self.memory;
        out.push_str(&format!(
            "\nchatd resident after the REST scenarios: {}\n",
            m.resident_after_rest_kib.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        ));
        out.push_str(&format!(
            "{} idle WebSockets: {} per connection, opened in {}\n",
            m.idle_connections,
            m.per_connection_kib.map_or("-".to_owned(), |k| format!("{k:.1} KiB")),
            m.open_seconds.map_or("-".to_owned(), |s| format!("{s:.2} s"))
        ));
        out
    }

    /// Writes `results.json` and `latency.svg` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("results.json"), json).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("table.txt"), self.table()).map_err(|e| e.to_string())?;
        self.chart(&dir.join("latency.svg")).map_err(|e| e.to_string())
    }

    /// Latency by percentile, one line per scenario: the x axis counts "nines" (50 %, 90 %, 99 %,
    /// 99.9 %, 99.99 %) so that the tail gets the room it deserves, the y axis is logarithmic.
    fn chart(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let top =
            self.scenarios.iter().flat_map(|s| s.latency.curve.iter().map(|(_, ms)| *ms)).fold(1.0_f64, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(&root)
            .caption("chatd latency by percentile", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(nines(0.5)..nines(0.9999), (0.1..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .x_labels(5)
            .x_label_formatter(&|x| format!("{}%", 100.0 * (1.0 - 10f64.powf(-x))))
            .y_desc("latency (ms, log scale)")
            .draw()?;
        for (index, scenario) in self.scenarios.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let points = scenario.latency.curve.iter().map(|(q, ms)| (nines(*q), ms.max(0.1)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(&scenario.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    }
}

/// How many nines a quantile has: 0.9 → 1, 0.99 → 2, 0.999 → 3.
fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).log10()
}
