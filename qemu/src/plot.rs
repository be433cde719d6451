//! Charts for the benchmark reports, drawn with plotters. Every chart is written twice,
//! as `stem.svg` and `stem.png`, by the same drawing code over both backends.
//!
//! Text is laid out and rasterised by ab_glyph from DejaVu Sans (Debian's
//! fonts-dejavu-core, installed on first use by [`crate::deps::ensure_font`]): no
//! fontconfig, no system library at build or run time.
//!
//! Log axes are drawn on linear coordinates over log2(x) / log10(y), with tick positions
//! chosen here (powers of 2 or 1-2-5 decades, whichever the y formatter labels more
//! cleanly), so that the labels read "4 KiB, 16 KiB, ..." rather than "4096, 16384".
//! Points that a log axis cannot show (zero, negative) and non-finite points are skipped.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One line of a chart: a label for the legend and its (x, y) points (x ascending).
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The font family every text is drawn with (registered by [`font`]).
const FONT: &str = "sans-serif";
const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;

/// Distinct series colours (Tableau 10); further series take Palette99's.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Bars below / at or above the reference.
const BELOW: RGBColor = RGBColor(245, 133, 24);
const ABOVE: RGBColor = RGBColor(76, 120, 168);

/// Registers DejaVu Sans as [`FONT`], once per process.
fn font() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let path = crate::deps::ensure_font()?;
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| format!("{}: not a font ab_glyph can read", path.display()))
        })
        .clone()
}

/// A line chart with markers at the points; x on a log scale when `log_x` (ticks at the
/// data's x values when they are few, else at powers of 2 or 10), y on a log scale when
/// `log_y`; y tick labels are `y_fmt` of the tick values. Writes `stem.svg` and `stem.png`.
#[allow(clippy::too_many_arguments)]
pub fn line_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
    y_fmt: fn(f64) -> String,
) -> Result<(), String> {
    let tx = |x: f64| if log_x { x.log2() } else { x };
    let ty = |y: f64| if log_y { y.log10() } else { y };
    let usable = |(x, y): (f64, f64)| x.is_finite() && y.is_finite() && (!log_x || x > 0.0) && (!log_y || y > 0.0);
    let mut lines = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in series {
        let mut raw: Vec<(f64, f64)> = s.points.iter().copied().filter(|&p| usable(p)).collect();
        raw.sort_by(|a, b| a.0.total_cmp(&b.0));
        xs.extend(raw.iter().map(|p| p.0));
        ys.extend(raw.iter().map(|p| p.1));
        lines.push((s.label.clone(), raw.into_iter().map(|(x, y)| (tx(x), ty(y))).collect()));
    }
    let model = LineModel {
        title,
        x_label,
        y_label,
        x: if log_x { log_x_axis(&xs) } else { linear_axis(&xs, false, fmt_x) },
        y: if log_y { log_y_axis(&ys, y_fmt) } else { linear_axis(&ys, true, y_fmt) },
        lines,
    };
    write_both(stem, &model)
}

/// A horizontal bar chart of ratios, one bar per name (top to bottom in the given order),
/// with a dashed reference line at `reference` (1.0 = parity), bars coloured differently
/// below and at/above it, the value printed at each bar. `y_label` describes the values
/// (drawn along the horizontal axis: the bars lie so that long names stay readable).
/// Non-finite values get no bar and "n/a". Writes `stem.svg` and `stem.png`.
pub fn ratio_bars(
    stem: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
    reference: f64,
) -> Result<(), String> {
    let finite: Vec<f64> = bars.iter().map(|b| b.1).chain([reference]).filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(0.0, f64::min);
    let mut hi = finite.iter().copied().fold(0.0, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    // Room at the ends for the value labels.
    let pad = (hi - lo) * 0.14;
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { lo }, hi + pad);
    let ticks = nice_ticks(lo, hi, 8).into_iter().map(|v| (v, fmt_x(v))).collect();
    let model = BarModel {
        title,
        value_label: y_label,
        bars,
        reference: reference.is_finite().then_some(reference),
        value_axis: Axis { lo, hi, ticks, light: Vec::new() },
    };
    write_both(stem, &model)
}

/// Bytes with binary units: 0 B, 512 B, 4 KiB, 1.5 MiB, 2 GiB.
pub fn fmt_bytes(v: f64) -> String {
    human(v, 1024.0, &[" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"])
}

/// Counts with decimal suffixes: 950, 12k, 3.4M, 1.2G.
pub fn fmt_count(v: f64) -> String {
    human(v, 1000.0, &["", "k", "M", "G", "T", "P", "E"])
}

/// `v` scaled into `units` (each `base` times the previous): one decimal below 10
/// (dropped when it is 0), none from 10 on.
fn human(v: f64, base: f64, units: &[&str]) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v < 0.0 {
        return format!("-{}", human(-v, base, units));
    }
    let digits = |x: f64| {
        let s = if x < 10.0 { format!("{x:.1}") } else { format!("{x:.0}") };
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    };
    let (mut x, mut i) = (v, 0);
    while x >= base && i + 1 < units.len() {
        x /= base;
        i += 1;
    }
    let mut s = digits(x);
    // Rounding can reach the next unit: 1023.96 KiB is "1 MiB", not "1024 KiB".
    if s.parse::<f64>().is_ok_and(|r| r >= base) && i + 1 < units.len() {
        x /= base;
        i += 1;
        s = digits(x);
    }
    format!("{s}{}", units[i])
}

/// Plain numbers for x axes and bar values: integers as such, else 3 significant digits;
/// from 100000 on, [`fmt_count`].
fn fmt_x(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 1e5 {
        return fmt_count(v);
    }
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        return format!("{}", v.round() as i64);
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A ratio printed at its bar: 0.42, 1.00, 12.3, 150.
fn fmt_ratio(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One axis in drawing coordinates (log2 / log10 of the values on log axes): its range,
/// the labelled ticks and the unlabelled grid lines.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
    light: Vec<f64>,
}

impl Axis {
    fn coord(&self) -> AxisCoord {
        AxisCoord {
            lo: self.lo,
            hi: self.hi,
            bold: self.ticks.iter().map(|t| t.0).collect(),
            light: self.light.clone(),
        }
    }

    fn label_at(&self, v: f64) -> String {
        let tol = (self.hi - self.lo).abs() * 1e-9;
        self.ticks.iter().find(|t| (t.0 - v).abs() <= tol).map(|t| t.1.clone()).unwrap_or_default()
    }
}

/// An [`Axis`] as a plotters coordinate: linear over [lo, hi], grid lines exactly at the
/// given points (plotters' own `WithKeyPoints` over f64 cannot take label formatters).
struct AxisCoord {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for AxisCoord {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        let px = f64::from(limit.0) + f64::from(limit.1 - limit.0) * t;
        if px.is_finite() {
            px.round().clamp(-1e7, 1e7) as i32
        } else {
            limit.0
        }
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The range of `values` (drawing coordinates), or `empty` without any.
fn span(values: impl Iterator<Item = f64>, empty: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        empty
    }
}

/// Up to about `max` + 1 multiples of 1, 2 or 5 times a power of ten within [lo, hi].
fn nice_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || !lo.is_finite() || !hi.is_finite() {
        return Vec::new();
    }
    let raw = (hi - lo) / max.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * mag);
    let (first, last) = ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64);
    (first..=last).map(|k| k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect()
}

/// A linear axis over `values`; from 0 when `from_zero` and the values are not negative.
fn linear_axis(values: &[f64], from_zero: bool, fmt: fn(f64) -> String) -> Axis {
    let (mut lo, mut hi) = span(values.iter().copied(), (0.0, 1.0));
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.5 };
        (lo, hi) = (lo - d, hi + d);
    }
    let pad = (hi - lo) * 0.04;
    let lo = if from_zero && lo == 0.0 { 0.0 } else { lo - pad };
    let hi = if from_zero && hi == 0.0 { 0.0 } else { hi + pad };
    let ticks = nice_ticks(lo, hi, 8).into_iter().map(|v| (v, fmt(v))).collect();
    Axis { lo, hi, ticks, light: Vec::new() }
}

/// The range [lo, hi] of log values, padded; at least `min_span` wide.
fn log_range(logs: &[f64], empty: (f64, f64), min_span: f64) -> (f64, f64) {
    let (mut lo, mut hi) = span(logs.iter().copied(), empty);
    if hi - lo < min_span {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = (mid - min_span / 2.0, mid + min_span / 2.0);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// Integer exponents e with base^e in the log range [lo, hi] (log_base values).
fn exponents(lo: f64, hi: f64) -> std::ops::RangeInclusive<i32> {
    let lo = (lo - 1e-9).ceil().clamp(-1000.0, 1000.0) as i32;
    let hi = (hi + 1e-9).floor().clamp(-1000.0, 1000.0) as i32;
    lo..=hi
}

/// The x axis of a log chart, drawn over log2(x): ticks at the data's x values when there
/// are few enough to be read apart (process counts 1, 4, 16, ... 1024), else at powers of
/// 2 (or of 10 over very wide ranges); grid lines at the other powers of 2.
fn log_x_axis(xs: &[f64]) -> Axis {
    let logs: Vec<f64> = xs.iter().map(|x| x.log2()).collect();
    let (lo, hi) = log_range(&logs, (0.0, 10.0), 2.0);
    let mut data = logs.clone();
    data.sort_by(f64::total_cmp);
    data.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let spaced = data.windows(2).all(|w| w[1] - w[0] >= (hi - lo) * 0.04);
    let ticks: Vec<f64> = if (2..=12).contains(&data.len()) && spaced {
        data
    } else if hi - lo <= 24.0 {
        let all: Vec<i32> = exponents(lo, hi).collect();
        let stride = [1, 2, 3, 4, 5, 10].into_iter().find(|s| all.len().div_ceil(*s as usize) <= 12).unwrap_or(10);
        all.into_iter().filter(|e| e.rem_euclid(stride) == 0).map(f64::from).collect()
    } else {
        let (lo10, hi10) = (lo * 2f64.log10(), hi * 2f64.log10());
        let all: Vec<i32> = exponents(lo10, hi10).collect();
        let stride = [1, 2, 3, 5, 10, 20, 50].into_iter().find(|s| all.len().div_ceil(*s as usize) <= 12).unwrap_or(50);
        all.into_iter().filter(|e| e.rem_euclid(stride) == 0).map(|e| f64::from(e) / 2f64.log10()).collect()
    };
    let ticks: Vec<(f64, String)> = if ticks.len() >= 2 {
        ticks.into_iter().map(|t| (t, fmt_x(2f64.powf(t).round_if_close()))).collect()
    } else {
        // A narrow range: plain ticks between the values.
        nice_ticks(2f64.powf(lo), 2f64.powf(hi), 6)
            .into_iter()
            .filter(|&v| v > 0.0)
            .map(|v| (v.log2(), fmt_x(v)))
            .collect()
    };
    let light = if hi - lo <= 40.0 {
        exponents(lo, hi).map(f64::from).filter(|e| !ticks.iter().any(|t| (t.0 - e).abs() < 1e-9)).collect()
    } else {
        Vec::new()
    };
    Axis { lo, hi, ticks, light }
}

/// The y axis of a log chart, drawn over log10(y): ticks at powers of 2 or at 1-2-5 decades,
/// whichever `fmt` labels without decimals (`fmt_bytes` prefers powers of 2: "4 KiB";
/// `fmt_count` decades: "10k"); grid lines in between.
fn log_y_axis(ys: &[f64], fmt: fn(f64) -> String) -> Axis {
    let logs: Vec<f64> = ys.iter().map(|y| y.log10()).collect();
    let (lo, hi) = log_range(&logs, (0.0, 3.0), 0.6);
    let (vlo, vhi) = (10f64.powf(lo), 10f64.powf(hi));
    let l2 = std::f64::consts::LOG2_10;
    // Powers of 2, every stride-th.
    let all2: Vec<i32> = exponents(lo * l2, hi * l2).collect();
    let binary: Vec<f64> = [1, 2, 3, 5, 10, 20, 50]
        .into_iter()
        .map(|s| all2.iter().filter(|e| e.rem_euclid(s) == 0).map(|&e| 2f64.powi(e)).collect::<Vec<_>>())
        .find(|t| t.len() <= 9)
        .unwrap_or_default();
    // 1-2-5 per decade, or powers of 10, every stride-th.
    let decades: Vec<i32> = ((lo - 1e-9).floor() as i32..=(hi + 1e-9).ceil() as i32).collect();
    let decimal: Vec<f64> = [
        (&[1.0, 2.0, 5.0][..], 1),
        (&[1.0][..], 1),
        (&[1.0][..], 2),
        (&[1.0][..], 3),
        (&[1.0][..], 5),
        (&[1.0][..], 10),
    ]
    .into_iter()
    .map(|(mantissas, stride)| {
        decades
            .iter()
            .filter(|d| d.rem_euclid(stride) == 0)
            .flat_map(|&d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| *v >= vlo * (1.0 - 1e-9) && *v <= vhi * (1.0 + 1e-9))
            .collect::<Vec<_>>()
    })
    .find(|t| t.len() <= 9)
    .unwrap_or_default();
    // Labels with a decimal point, exponent or duplicate read worse.
    let unclean = |ticks: &[f64]| {
        let labels: Vec<String> = ticks.iter().map(|&v| fmt(v)).collect();
        let bad = labels.iter().filter(|l| l.contains('.') || l.contains('e')).count();
        let dups = labels.windows(2).filter(|w| w[0] == w[1]).count();
        bad + dups
    };
    let values = match (binary.len() >= 2, decimal.len() >= 2) {
        (true, true) if unclean(&binary) < unclean(&decimal) => binary.clone(),
        (_, true) => decimal.clone(),
        (true, false) => binary.clone(),
        (false, false) => nice_ticks(vlo, vhi, 6).into_iter().filter(|&v| v > 0.0).collect(),
    };
    let ticks: Vec<(f64, String)> = values.iter().map(|&v| (v.log10(), fmt(v))).collect();
    let bold = |l: f64| ticks.iter().any(|t| (t.0 - l).abs() < 1e-9);
    let light: Vec<f64> = if values == binary {
        all2.iter().map(|&e| f64::from(e) / l2).filter(|&l| !bold(l)).collect()
    } else {
        decades
            .iter()
            .flat_map(|&d| (1..10).map(move |m| f64::from(m) * 10f64.powi(d)))
            .map(f64::log10)
            .filter(|&l| l >= lo && l <= hi && !bold(l))
            .collect()
    };
    let light = if light.len() <= 60 { light } else { Vec::new() };
    Axis { lo, hi, ticks, light }
}

trait RoundIfClose {
    fn round_if_close(self) -> f64;
}

impl RoundIfClose for f64 {
    /// 2^log2(16) is 15.999999999999998: that is 16.
    fn round_if_close(self) -> f64 {
        if (self - self.round()).abs() < 1e-6 * self.abs().max(1.0) {
            self.round()
        } else {
            self
        }
    }
}

/// A chart drawn the same way onto any backend.
trait Chart {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Draws `chart` into `stem.svg` and `stem.png`, creating the directory.
fn write_both(stem: &Path, chart: &impl Chart) -> Result<(), String> {
    font()?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let path = |ext: &str| {
        let mut s = stem.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    let svg = path(".svg");
    let root = SVGBackend::new(&svg, chart.size()).into_drawing_area();
    chart.draw(&root).and_then(|()| root.present().map_err(err)).map_err(|e| format!("{}: {e}", svg.display()))?;
    drop(root);
    let png = path(".png");
    let root = BitMapBackend::new(&png, chart.size()).into_drawing_area();
    chart.draw(&root).and_then(|()| root.present().map_err(err)).map_err(|e| format!("{}: {e}", png.display()))
}

fn series_color(i: usize) -> RGBColor {
    COLORS.get(i).copied().unwrap_or_else(|| {
        let c = Palette99::pick(i).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

/// The widest of `labels` in pixels, drawn in `style`.
fn text_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = String>,
    size: u32,
) -> u32 {
    let style = TextStyle::from((FONT, size).into_font());
    labels.filter_map(|l| root.estimate_text_size(&l, &style).ok()).map(|(w, _)| w).max().unwrap_or(0)
}

struct LineModel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x: Axis,
    y: Axis,
    /// Label and points in drawing coordinates.
    lines: Vec<(String, Vec<(f64, f64)>)>,
}

impl LineModel<'_> {
    /// The corner of the plot where the lines pass least: the legend goes there.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let norm =
            |(x, y): (f64, f64)| ((x - self.x.lo) / (self.x.hi - self.x.lo), (y - self.y.lo) / (self.y.hi - self.y.lo));
        let mut samples = Vec::new();
        for (_, pts) in &self.lines {
            samples.extend(pts.iter().map(|&p| norm(p)));
            for w in pts.windows(2) {
                let (a, b) = (norm(w[0]), norm(w[1]));
                samples.extend((1..10).map(|k| {
                    let t = f64::from(k) / 10.0;
                    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
                }));
            }
        }
        let corners = [
            (SeriesLabelPosition::UpperLeft, false, true),
            (SeriesLabelPosition::UpperRight, true, true),
            (SeriesLabelPosition::LowerRight, true, false),
            (SeriesLabelPosition::LowerLeft, false, false),
        ];
        let count = |right: bool, upper: bool| {
            samples
                .iter()
                .filter(|(x, y)| (*x > 0.5) == right && (*y > 0.5) == upper && (*x - 0.5).abs() > 0.05)
                .count()
        };
        corners
            .into_iter()
            .min_by_key(|&(_, right, upper)| count(right, upper))
            .map(|c| c.0)
            .unwrap_or(SeriesLabelPosition::UpperLeft)
    }
}

impl Chart for LineModel<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let y_labels = text_width(root, self.y.ticks.iter().map(|t| t.1.clone()), 14);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 22))
            .margin(16)
            .x_label_area_size(52)
            .y_label_area_size(y_labels + 48)
            .build_cartesian_2d(self.x.coord(), self.y.coord())
            .map_err(err)?;
        let x_fmt = |v: &f64| self.x.label_at(*v);
        let y_fmt = |v: &f64| self.y.label_at(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .bold_line_style(BLACK.mix(0.15))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(err)?;
        for (i, (label, points)) in self.lines.iter().enumerate() {
            let color = series_color(i);
            // The line, then its markers (circle, triangle, square, cross by turns); the
            // legend shows both.
            macro_rules! series {
                ($marker:expr) => {{
                    chart
                        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                        .map_err(err)?
                        .label(label)
                        .legend(move |at| {
                            EmptyElement::at(at)
                                + PathElement::new(vec![(-12, 0), (12, 0)], color.stroke_width(2))
                                + $marker
                        });
                    chart.draw_series(points.iter().map(|&p| EmptyElement::at(p) + $marker)).map_err(err)?;
                }};
            }
            match i % 4 {
                0 => series!(Circle::new((0, 0), 4, color.filled())),
                1 => series!(TriangleMarker::new((0, 0), 5, color.filled())),
                2 => series!(Rectangle::new([(-4, -4), (4, 4)], color.filled())),
                _ => series!(Cross::new((0, 0), 4, color.stroke_width(2))),
            }
        }
        if self.lines.iter().all(|l| l.1.is_empty()) {
            let grey = BLACK.mix(0.5);
            let style = TextStyle::from((FONT, 20).into_font()).color(&grey).pos(Pos::new(HPos::Center, VPos::Center));
            let mid = ((self.x.lo + self.x.hi) / 2.0, (self.y.lo + self.y.hi) / 2.0);
            chart.plotting_area().draw(&Text::new("no data", mid, style)).map_err(err)?;
        }
        if !self.lines.is_empty() {
            chart
                .configure_series_labels()
                .position(self.legend_corner())
                .margin(12)
                .legend_area_size(32)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font((FONT, 14))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

struct BarModel<'a> {
    title: &'a str,
    value_label: &'a str,
    bars: &'a [(String, f64)],
    reference: Option<f64>,
    value_axis: Axis,
}

impl BarModel<'_> {
    fn color(&self, v: f64) -> RGBColor {
        if self.reference.is_some_and(|r| v < r) {
            BELOW
        } else {
            ABOVE
        }
    }
}

impl Chart for BarModel<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, (150 + 26 * self.bars.len() as u32).clamp(HEIGHT, 4000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(self.title, (FONT, 22)).map_err(err)?;
        let (key, area) = root.split_vertically(34);
        self.draw_key(&key)?;

        let n = self.bars.len();
        // Bar i at row n-1-i: the first bar on top.
        let row = |i: usize| (n - 1 - i) as f64;
        let names = Axis {
            lo: -0.6,
            hi: n.max(1) as f64 - 0.4,
            ticks: self.bars.iter().enumerate().map(|(i, b)| (row(i), b.0.clone())).collect(),
            light: Vec::new(),
        };
        let name_width = text_width(&area, self.bars.iter().map(|b| b.0.clone()), 14);
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .margin_top(4)
            .x_label_area_size(52)
            .y_label_area_size(name_width.min(420) + 20)
            .build_cartesian_2d(self.value_axis.coord(), names.coord())
            .map_err(err)?;
        let x_fmt = |v: &f64| self.value_axis.label_at(*v);
        let y_fmt = |v: &f64| names.label_at(*v);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(self.value_label)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(self.bars.iter().enumerate().filter(|(_, b)| b.1.is_finite()).map(|(i, b)| {
                let y = row(i);
                Rectangle::new([(b.1.min(0.0), y - 0.35), (b.1.max(0.0), y + 0.35)], self.color(b.1).filled())
            }))
            .map_err(err)?;
        if let Some(r) = self.reference {
            let line = vec![(r, names.lo), (r, names.hi)];
            chart.draw_series(DashedLineSeries::new(line, 8, 5, BLACK.stroke_width(2))).map_err(err)?;
        }
        let value_style = TextStyle::from((FONT, 13).into_font());
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                let (v, y) = (if b.1.is_finite() { b.1 } else { 0.0 }, row(i));
                let (dx, h) = if v < 0.0 { (-5, HPos::Right) } else { (5, HPos::Left) };
                EmptyElement::at((v, y))
                    + Text::new(fmt_ratio(b.1), (dx, 0), value_style.pos(Pos::new(h, VPos::Center)))
            }))
            .map_err(err)?;
        if n == 0 {
            let grey = BLACK.mix(0.5);
            let style = TextStyle::from((FONT, 20).into_font()).color(&grey).pos(Pos::new(HPos::Center, VPos::Center));
            let mid = ((self.value_axis.lo + self.value_axis.hi) / 2.0, (names.lo + names.hi) / 2.0);
            chart.plotting_area().draw(&Text::new("no data", mid, style)).map_err(err)?;
        }
        Ok(())
    }
}

impl BarModel<'_> {
    /// The key above the plot: the reference line and the two bar colours.
    fn draw_key<DB: DrawingBackend>(&self, key: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let Some(r) = self.reference else { return Ok(()) };
        let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let r = fmt_ratio(r);
        let items: [(Option<RGBColor>, String); 3] = [
            (None, format!("reference {r}")),
            (Some(BELOW), format!("below {r}")),
            (Some(ABOVE), format!("{r} or above")),
        ];
        let widths: Vec<i32> =
            items.iter().map(|(_, t)| key.estimate_text_size(t, &style).map(|(w, _)| w as i32).unwrap_or(80)).collect();
        let total: i32 = widths.iter().map(|w| w + 36 + 24).sum::<i32>() - 24;
        let (w, h) = key.dim_in_pixel();
        let (mut x, y) = ((w as i32 - total).max(0) / 2, h as i32 / 2);
        for ((color, text), width) in items.iter().zip(widths) {
            match color {
                None => {
                    for s in [0, 11, 22] {
                        key.draw(&PathElement::new(vec![(x + s, y), (x + s + 7, y)], BLACK.stroke_width(2)))
                            .map_err(err)?;
                    }
                }
                Some(c) => key.draw(&Rectangle::new([(x + 4, y - 7), (x + 26, y + 7)], c.filled())).map_err(err)?,
            }
            key.draw(&Text::new(text.as_str(), (x + 36, y), style.clone())).map_err(err)?;
            x += width + 36 + 24;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(fmt_bytes(0.0), "0 B");
        assert_eq!(fmt_bytes(512.0), "512 B");
        assert_eq!(fmt_bytes(4096.0), "4 KiB");
        assert_eq!(fmt_bytes(512.0 * 1024.0), "512 KiB");
        assert_eq!(fmt_bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(fmt_bytes(32.0 * 1024.0 * 1024.0), "32 MiB");
        assert_eq!(fmt_bytes(2.0 * 1024.0 * 1024.0 * 1024.0), "2 GiB");
        assert_eq!(fmt_bytes(1023.99 * 1024.0), "1 MiB");
        assert_eq!(fmt_bytes(12.4 * 1024.0), "12 KiB");
        assert_eq!(fmt_bytes(-2048.0), "-2 KiB");
        assert_eq!(fmt_bytes(0.5), "0.5 B");
        assert_eq!(fmt_bytes(f64::NAN), "NaN");
        assert_eq!(fmt_bytes(f64::INFINITY), "inf");
    }

    #[test]
    fn formats_counts() {
        assert_eq!(fmt_count(0.0), "0");
        assert_eq!(fmt_count(950.0), "950");
        assert_eq!(fmt_count(12_000.0), "12k");
        assert_eq!(fmt_count(3.4e6), "3.4M");
        assert_eq!(fmt_count(1.2e9), "1.2G");
        assert_eq!(fmt_count(1.5e9), "1.5G");
        assert_eq!(fmt_count(999_999.0), "1M");
        assert_eq!(fmt_count(2.5), "2.5");
        assert_eq!(fmt_count(-12_000.0), "-12k");
        assert_eq!(fmt_count(f64::NAN), "NaN");
    }

    #[test]
    fn formats_axis_numbers() {
        assert_eq!(fmt_x(16.0), "16");
        assert_eq!(fmt_x(1024.0), "1024");
        assert_eq!(fmt_x(0.30000000000000004), "0.3");
        assert_eq!(fmt_x(1.25), "1.25");
        assert_eq!(fmt_x(2e6), "2M");
        assert_eq!(fmt_ratio(0.4213), "0.42");
        assert_eq!(fmt_ratio(f64::NAN), "n/a");
    }

    #[test]
    fn log_ticks_suit_the_formatter() {
        let ys = [3.0 * 4096.0, 40.0 * 1024.0 * 1024.0];
        let bytes = log_y_axis(&ys, fmt_bytes);
        assert!(bytes.ticks.len() >= 2 && bytes.ticks.len() <= 9, "{:?}", bytes.ticks);
        assert!(bytes.ticks.iter().all(|t| !t.1.contains('.')), "{:?}", bytes.ticks);
        let counts = log_y_axis(&[2.0e4, 3.0e9], fmt_count);
        assert!(counts.ticks.iter().all(|t| !t.1.contains('.')), "{:?}", counts.ticks);
        assert!(counts.ticks.iter().any(|t| t.1 == "1M"), "{:?}", counts.ticks);
        // Process counts: ticks at the data.
        let x = log_x_axis(&[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]);
        let labels: Vec<&str> = x.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1", "4", "16", "64", "256", "1024"]);
        // Degenerate inputs still give a usable axis.
        for ys in [&[][..], &[5.0][..], &[7.0, 7.0][..]] {
            let a = log_y_axis(ys, fmt_count);
            assert!(a.lo < a.hi && a.lo.is_finite() && a.hi.is_finite());
            let a = log_x_axis(ys);
            assert!(a.lo < a.hi && a.lo.is_finite() && a.hi.is_finite());
            let a = linear_axis(ys, true, fmt_count);
            assert!(a.lo < a.hi && a.lo.is_finite() && a.hi.is_finite());
        }
    }

    /// A fresh directory for one test; kept with XTASK_KEEP_PLOTS=1 (to look at the charts).
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn done(dir: &Path) {
        if std::env::var_os("XTASK_KEEP_PLOTS").is_none() {
            let _ = std::fs::remove_dir_all(dir);
        } else {
            eprintln!("charts kept in {}", dir.display());
        }
    }

    fn check_files(stem: &Path, title: &str) {
        let with = |ext: &str| PathBuf::from(format!("{}.{ext}", stem.display()));
        let svg = std::fs::read_to_string(with("svg")).unwrap();
        assert!(svg.contains("<svg"), "{}", stem.display());
        assert!(svg.contains(title), "{}: no title", stem.display());
        let png = std::fs::read(with("png")).unwrap();
        assert!(png.len() > 1000, "{}: {} bytes", stem.display(), png.len());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", stem.display());
    }

    fn s(label: &str, points: &[(f64, f64)]) -> Series {
        Series { label: label.into(), points: points.to_vec() }
    }

    #[test]
    fn draws_line_charts() {
        let dir = test_dir("lines");
        let n = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0];
        let mib = 1024.0 * 1024.0;
        let series = vec![
            s("ours shared memfd", &n.map(|n| (n, 12288.0 + n * 4096.0))),
            s("linux shared memfd", &n.map(|n| (n, n * 2.0 * mib))),
            s("ours private (short)", &[(1.0, 8192.0), (4.0, 0.0), (16.0, 65536.0)]),
            s("nan", &[(1.0, f64::NAN), (4.0, 1e5), (f64::INFINITY, 5.0)]),
            s("negative", &[(-1.0, 100.0), (2.0, -5.0)]),
        ];
        let title = "Page tables of N processes mapping 32M shared (written)";
        let stem = dir.join("sub/pt_bytes_32M");
        line_chart(&stem, title, "processes (N)", "PageTables delta (bytes)", &series, true, true, fmt_bytes).unwrap();
        check_files(&stem, title);

        let cycles: Vec<Series> = (0..12)
            .map(|i| s(&format!("series {i}"), &n.map(|n| (n, 1.5e9 / n * (1.0 + f64::from(i) * 0.3)))))
            .collect();
        let stem = dir.join("cycles");
        line_chart(&stem, "Cycles", "processes (N)", "TSC cycles per process", &cycles, true, true, fmt_count).unwrap();
        check_files(&stem, "Cycles");

        let linear = vec![s("one point", &[(3.0, 7.0)]), s("empty", &[])];
        let stem = dir.join("linear.v1");
        line_chart(&stem, "Linear", "x", "y", &linear, false, false, fmt_count).unwrap();
        check_files(&stem, "Linear");

        let stem = dir.join("nothing");
        line_chart(&stem, "Nothing", "x", "y", &[], true, true, fmt_bytes).unwrap();
        check_files(&stem, "Nothing");
        let stem = dir.join("zeros");
        line_chart(&stem, "Zeros", "x", "y", &[s("zero", &[(0.0, 0.0), (1.0, 0.0)])], true, true, fmt_bytes).unwrap();
        check_files(&stem, "Zeros");
        let stem = dir.join("flat");
        line_chart(&stem, "Flat", "x", "y", &[s("zero", &[(0.0, 0.0), (1.0, 0.0)])], false, false, fmt_bytes).unwrap();
        check_files(&stem, "Flat");
        done(&dir);
    }

    #[test]
    fn draws_ratio_bars() {
        let dir = test_dir("bars");
        let bars: Vec<(String, f64)> = [
            ("anon_fault", 0.42),
            ("file_fault", 1.7),
            ("mmap_munmap", 1.0),
            ("mprotect_split_and_merge_long_name", 0.95),
            ("fork_exit", 3.25),
            ("broken", f64::NAN),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let title = "vm_micro: ours / Linux (ops/s, median)";
        let stem = dir.join("vm_micro_ratio");
        ratio_bars(&stem, title, "ratio", &bars, 1.0).unwrap();
        check_files(&stem, title);

        let stem = dir.join("empty");
        ratio_bars(&stem, "Empty", "ratio", &[], 1.0).unwrap();
        check_files(&stem, "Empty");
        let many: Vec<(String, f64)> = (0..40).map(|i| (format!("bench_{i}"), f64::from(i) / 10.0 - 0.5)).collect();
        let stem = dir.join("many");
        ratio_bars(&stem, "Many", "ratio", &many, f64::NAN).unwrap();
        check_files(&stem, "Many");
        done(&dir);
    }
}
