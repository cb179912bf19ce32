//! loss.png: generator and discriminator/critic losses per iteration, as the paper's Figure 4.
//! Drawn with plotters into a buffer, encoded with `image`. Text needs a TrueType font: the first of a few
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

/// One curve: a name and (iteration, value) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Draws the series as lines against the iteration and writes a PNG atomically.
pub fn plot_losses(series: &[Series], title: &str, path: &Path) -> Result<()> {
    const W: u32 = 900;
    const H: u32 = 450;
    let mut buf = vec![255u8; (W * H * 3) as usize];
    let err = |e: String| Error::Other(format!("{}: cannot draw the plot: {e}", path.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let all = series.iter().flat_map(|s| s.points.iter());
        let (mut x1, mut y0, mut y1) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in all.filter(|p| p.1.is_finite()) {
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        let labels = font_available();
        let mut builder = ChartBuilder::on(&root);
        builder.margin(15).x_label_area_size(if labels { 35 } else { 5 }).y_label_area_size(if labels { 55 } else { 5 });
        if labels {
            builder.caption(title, ("sans-serif", 20));
        }
        let mut chart = builder.build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad)).map_err(|e| err(e.to_string()))?;
        if labels {
            chart.configure_mesh().x_desc("iteration").y_desc("loss").draw().map_err(|e| err(e.to_string()))?;
        } else {
            chart.configure_mesh().disable_x_mesh().disable_y_mesh().draw().map_err(|e| err(e.to_string()))?;
        }
        let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44)];
        for (s, color) in series.iter().zip(colors.iter().cycle()) {
            let line = chart
                .draw_series(LineSeries::new(s.points.iter().cloned().filter(|p| p.1.is_finite()), color))
                .map_err(|e| err(e.to_string()))?;
            if labels {
                let c = *color;
                line.label(s.name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            }
        }
        if labels {
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let img = image::RgbImage::from_raw(W, H, buf).ok_or_else(|| err("buffer size".into()))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| err(e.to_string()))?;
    write_atomic(path, &bytes)
}
