//! The SVG charts beside docs/benchmarks.md, drawn with plotters: throughput by concurrency and
//! latency percentiles, lexicache solid and the raw driver dashed, one colour per backend.

use std::path::Path;

use plotters::prelude::*;

/// One backend's line pair.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The backend: `memory`, `redis`, ...
    pub(crate) backend: String,
    /// `(x, y)` points through lexicache.
    pub(crate) lexicache: Vec<(f64, f64)>,
    /// The same points on the raw driver.
    pub(crate) raw: Vec<(f64, f64)>,
}

const WIDTH: u32 = 860;
const HEIGHT: u32 = 520;

/// The colour of the `i`-th backend.
fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    PALETTE[i % PALETTE.len()]
}

fn failed(path: &Path, e: impl std::fmt::Display) -> String {
    format!("drawing {}: {e}", path.display())
}

/// The largest y of every series (at least `floor`).
fn max_y(series: &[Series], floor: f64) -> f64 {
    series
        .iter()
        .flat_map(|s| s.lexicache.iter().chain(&s.raw))
        .map(|p| p.1)
        .filter(|y| y.is_finite())
        .fold(floor, f64::max)
}

fn min_y(series: &[Series], ceiling: f64) -> f64 {
    series
        .iter()
        .flat_map(|s| s.lexicache.iter().chain(&s.raw))
        .map(|p| p.1)
        .filter(|y| y.is_finite() && *y > 0.0)
        .fold(ceiling, f64::min)
}

/// Draws each series' lexicache line (solid, dots) and raw line (dashed, crosses) with a legend.
fn draw_series<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
    path: &Path,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(
                s.lexicache.iter().copied(),
                c.stroke_width(2),
            ))
            .map_err(|e| failed(path, e))?
            .label(format!("{} lexicache", s.backend))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(s.lexicache.iter().map(|p| Circle::new(*p, 3, c.filled())))
            .map_err(|e| failed(path, e))?;
        if s.raw.is_empty() {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                s.raw.iter().copied(),
                6,
                4,
                c.stroke_width(1),
            ))
            .map_err(|e| failed(path, e))?
            .label(format!("{} raw driver", s.backend))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 8, y)], c.stroke_width(1)));
        chart
            .draw_series(s.raw.iter().map(|p| Cross::new(*p, 4, c.stroke_width(1))))
            .map_err(|e| failed(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| failed(path, e))
}

/// Throughput (ops/s, y, log scale) by concurrency (x, log scale: the measured values are
/// powers of two, and each power of two gets a label).
pub(crate) fn throughput_by_concurrency(
    path: &Path,
    title: &str,
    series: &[Series],
) -> Result<(), String> {
    // Plotted against log2(concurrency), so the axis labels land on 1, 2, 4, 8, ...
    let series: Vec<Series> = series
        .iter()
        .map(|s| {
            let log = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
                points
                    .iter()
                    .map(|(x, y)| (x.max(1.0).log2(), *y))
                    .collect()
            };
            Series {
                backend: s.backend.clone(),
                lexicache: log(&s.lexicache),
                raw: log(&s.raw),
            }
        })
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.lexicache.iter().chain(&s.raw).map(|p| p.0))
        .collect();
    let x_min = xs.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    // Room above the lines for the legend.
    let y_max = max_y(&series, 1.0) * 6.0;
    let y_min = (min_y(&series, y_max) / 1.5).max(1.0);
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min - 0.3..x_max + 0.3, (y_min..y_max).log_scale())
        .map_err(|e| failed(path, e))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .x_labels(((x_max - x_min) as usize + 1) * 2)
        .x_desc("concurrent tasks")
        .y_desc("operations per second (log scale)")
        .x_label_formatter(&|x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.05 && i >= 0.0 {
                format!("{:.0}", 2f64.powf(i))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y: &f64| {
            if *y >= 1000.0 {
                format!("{:.0}k", y / 1000.0)
            } else {
                format!("{y:.0}")
            }
        })
        .draw()
        .map_err(|e| failed(path, e))?;
    draw_series(&mut chart, &series, path)?;
    root.present().map_err(|e| failed(path, e))
}

/// The percentile names of [`latency_percentiles`]' x axis, in order.
pub(crate) const PERCENTILES: [&str; 4] = ["p50", "p90", "p99", "p99.9"];

/// Latency (µs, y, log scale) at each of [`PERCENTILES`] (x = 0, 1, 2, 3).
pub(crate) fn latency_percentiles(
    path: &Path,
    title: &str,
    series: &[Series],
) -> Result<(), String> {
    // Room above the lines for the legend.
    let y_max = max_y(series, 1.0) * 8.0;
    let y_min = (min_y(series, y_max) / 2.0).max(0.01);
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.3..3.3, (y_min..y_max).log_scale())
        .map_err(|e| failed(path, e))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .x_labels(PERCENTILES.len())
        .x_label_formatter(&|x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.05 && (0.0..4.0).contains(&i) {
                PERCENTILES[i as usize].to_owned()
            } else {
                String::new()
            }
        })
        .x_desc("percentile")
        .y_desc("latency, microseconds (log scale)")
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| failed(path, e))?;
    draw_series(&mut chart, series, path)?;
    root.present().map_err(|e| failed(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Series> {
        vec![
            Series {
                backend: "memory".into(),
                lexicache: vec![(1.0, 900_000.0), (4.0, 1_500_000.0), (16.0, 1_600_000.0)],
                raw: vec![(1.0, 1_000_000.0), (4.0, 1_800_000.0), (16.0, 1_900_000.0)],
            },
            Series {
                backend: "redis".into(),
                lexicache: vec![(1.0, 20_000.0), (4.0, 60_000.0), (16.0, 90_000.0)],
                raw: vec![],
            },
        ]
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xtask-chart-{}-{name}", std::process::id()))
    }

    /// The file is one `<svg>` document that names its axes and every series in its legend.
    fn assert_valid_svg(svg: &str, expect: &[&str]) {
        assert!(svg.trim_start().starts_with("<svg"), "{:.100}", svg);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        // plotters writes each text on a line of its own inside its `<text>` element.
        for text in expect {
            assert!(
                svg.lines().any(|l| l.trim() == *text),
                "the SVG has no text `{text}`"
            );
        }
    }

    #[test]
    fn the_throughput_chart_is_a_complete_svg_with_axes_and_legend() {
        let path = temp("throughput.svg");
        throughput_by_concurrency(&path, "Throughput", &series()).expect("draws");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).expect("clean up");
        assert_valid_svg(
            &svg,
            &[
                "Throughput",
                "concurrent tasks",
                "operations per second (log scale)",
                "1",
                "4",
                "16",
                "memory lexicache",
                "memory raw driver",
                "redis lexicache",
            ],
        );
        // redis has no raw series, so no legend entry for it.
        assert!(!svg.contains("redis raw driver"));
    }

    #[test]
    fn the_latency_chart_labels_each_percentile() {
        let path = temp("latency.svg");
        let points = |base: f64| -> Vec<(f64, f64)> {
            (0..4)
                .map(|i| (f64::from(i), base * 2f64.powi(i)))
                .collect()
        };
        let s = vec![Series {
            backend: "memcached".into(),
            lexicache: points(50.0),
            raw: points(40.0),
        }];
        latency_percentiles(&path, "Latency at 16 tasks", &s).expect("draws");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).expect("clean up");
        assert_valid_svg(
            &svg,
            &[
                "Latency at 16 tasks",
                "p50",
                "p99.9",
                "memcached raw driver",
            ],
        );
    }
}
