//! Line charts: loss.png (generator and discriminator/critic losses per iteration, as the paper's Figure 4)
//! and `reproduce`'s figures (FID with error bars against a shaded real-vs-real floor). Drawn with plotters into a buffer, encoded with `image`. Text needs a TrueType font: the first of a few
//! common system fonts is used; without one the curves are drawn unlabelled (said once on stderr).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::fsio::write_atomic;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a system font with plotters once; false when none was found.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!("note: no TrueType font found ({}); loss.png is drawn without labels", FONT_PATHS[0]);
        false
    })
}

/// One curve: a name and (x, y) points, optionally with an error bar (low, high) at each point and markers.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub errors: Option<Vec<(f64, f64)>>,
    pub markers: bool,
}

impl<'a> Series<'a> {
    /// A plain line.
    pub fn line(name: &'a str, points: Vec<(f64, f64)>) -> Self {
        Series { name, points, errors: None, markers: false }
    }
}

/// A shaded range (x, low, high), drawn under the series.
pub struct Band<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64, f64)>,
}

/// One panel: axes, curves and bands.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    pub bands: Vec<Band<'a>>,
}

const PANEL_W: u32 = 900;
const PANEL_H: u32 = 450;
const COLORS: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
const BAND_COLOR: RGBColor = RGBColor(150, 150, 150);

/// The charts side by side in one PNG, written atomically.
pub fn plot_charts(charts: &[Chart], path: &Path) -> Result<()> {
    let (w, h) = (PANEL_W * charts.len().max(1) as u32, PANEL_H);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let err = |e: String| Error::Other(format!("{}: cannot draw the plot: {e}", path.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let panels = root.split_evenly((1, charts.len().max(1)));
        for (chart, area) in charts.iter().zip(&panels) {
            draw_chart(chart, area).map_err(err)?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| err("buffer size".into()))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| err(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// The x and y ranges that hold every finite point, error bar and band, padded by 5 %.
fn ranges(chart: &Chart) -> ((f64, f64), (f64, f64)) {
    let mut xs: Vec<f64> = Vec::new();
    let mut ys: Vec<f64> = Vec::new();
    for s in &chart.series {
        for &(x, y) in &s.points {
            xs.push(x);
            ys.push(y);
        }
        for &(lo, hi) in s.errors.iter().flatten() {
            ys.extend([lo, hi]);
        }
    }
    for b in &chart.bands {
        for &(x, lo, hi) in &b.points {
            xs.push(x);
            ys.extend([lo, hi]);
        }
    }
    let span = |v: &[f64], default: (f64, f64)| {
        let (lo, hi) = v.iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            return default;
        }
        let pad = ((hi - lo) * 0.05).max(1e-3 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    };
    (span(&xs, (0.0, 1.0)), span(&ys, (0.0, 1.0)))
}

fn draw_chart(chart: &Chart, area: &DrawingArea<BitMapBackend, plotters::coord::Shift>) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let ((x0, x1), (y0, y1)) = ranges(chart);
    let labels = font_available();
    let mut builder = ChartBuilder::on(area);
    builder.margin(15).x_label_area_size(if labels { 35 } else { 5 }).y_label_area_size(if labels { 60 } else { 5 });
    if labels {
        builder.caption(chart.title, ("sans-serif", 20));
    }
    let mut c = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?;
    if labels {
        c.configure_mesh().x_desc(chart.x_label).y_desc(chart.y_label).draw().map_err(e)?;
    } else {
        c.configure_mesh().disable_x_mesh().disable_y_mesh().draw().map_err(e)?;
    }
    for band in &chart.bands {
        let mut outline: Vec<(f64, f64)> = band.points.iter().map(|&(x, _, hi)| (x, hi)).collect();
        outline.extend(band.points.iter().rev().map(|&(x, lo, _)| (x, lo)));
        let drawn = c.draw_series(std::iter::once(Polygon::new(outline, BAND_COLOR.mix(0.3).filled()))).map_err(e)?;
        if labels {
            drawn.label(band.name).legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], BAND_COLOR.mix(0.3).filled()));
        }
    }
    for (s, color) in chart.series.iter().zip(COLORS.iter().cycle()) {
        let finite: Vec<(f64, f64)> = s.points.iter().cloned().filter(|p| p.1.is_finite()).collect();
        let drawn = c.draw_series(LineSeries::new(finite.clone(), color.stroke_width(2))).map_err(e)?;
        if labels {
            let c2 = *color;
            drawn.label(s.name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c2.stroke_width(2)));
        }
        if s.markers {
            c.draw_series(finite.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(e)?;
        }
        if let Some(errors) = &s.errors {
            let bars = s.points.iter().zip(errors).filter(|(p, (lo, hi))| p.0.is_finite() && lo.is_finite() && hi.is_finite());
            c.draw_series(bars.map(|(&(x, y), &(lo, hi))| ErrorBar::new_vertical(x, lo, y, hi, color.stroke_width(1), 8))).map_err(e)?;
        }
    }
    if labels && (chart.series.len() + chart.bands.len()) > 0 {
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(e)?;
    }
    Ok(())
}
