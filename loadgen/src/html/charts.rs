//! The page's charts as SVG, drawn by plotters' SVG backend from the page data's [`Chart`]s: each
//! series one `<polyline>` of its colour, the bands shaded behind them. The series' legend is the
//! figure's HTML caption (plotters' own legend would draw a second line of each colour).

use plotters::prelude::*;

use super::data::{Chart, XScale};

/// Width of a chart, px.
pub const WIDTH: u32 = 1200;
/// Height of a chart, px.
pub const HEIGHT: u32 = 300;

/// `p` percent on the percentile axis: `log10(1 / (1 - p/100))`.
pub fn percentile_x(p: f64) -> f64 {
    (100.0 / (100.0 - p)).log10()
}

/// The percentile at `x` on the percentile axis, as a tick label (`0%`, `90%`, `99.9%`).
pub fn percentile_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let nines = x.round().max(0.0) as usize;
    let decimals = nines.saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// A tick label on an axis spanning `span`: whole numbers from a span of 10 up.
fn axis_number(value: f64, span: f64) -> String {
    if span >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn parse_color(hex: &str) -> RGBColor {
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    RGBColor(channel(1), channel(3), channel(5))
}

/// A range holding `values`, never empty.
fn range(values: impl Iterator<Item = f64>, floor: Option<f64>) -> (f64, f64) {
    let (mut low, mut high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if let Some(floor) = floor {
        low = low.min(floor);
    }
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if high <= low {
        high = low + 1.0;
    }
    (low, high)
}

/// `chart` as an SVG document, or plotters' error.
pub fn svg(chart: &Chart) -> Result<String, String> {
    let mut out = String::new();
    draw(chart, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn draw<'a>(chart: &Chart, out: &'a mut String) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let place = |x: f64| match chart.x_scale {
        XScale::Linear => x,
        XScale::Percentile => percentile_x(x),
    };
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| place(p[0])))
        .chain(chart.bands.iter().flat_map(|b| [b.from, b.to]));
    let (x_low, mut x_high) = range(xs, None);
    if chart.x_scale == XScale::Percentile {
        // Whole nines, so the ticks are 0 %, 90 %, 99 %, …
        x_high = x_high.ceil().max(1.0);
    }
    let (_, y_high) = range(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p[1])),
        Some(0.0),
    );
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut context = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_low..x_high, 0.0..y_high * 1.08)?;
    let percentile_ticks = (x_high - x_low).round() as usize + 1;
    let mut mesh = context.configure_mesh();
    mesh.x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .bold_line_style(RGBColor(221, 221, 221))
        .light_line_style(RGBColor(242, 242, 242));
    let y_label = |y: &f64| axis_number(*y, y_high);
    let x_label = |x: &f64| axis_number(*x, x_high - x_low);
    mesh.y_label_formatter(&y_label);
    if chart.x_scale == XScale::Percentile {
        mesh.x_labels(percentile_ticks)
            .x_label_formatter(&percentile_label)
            .max_light_lines(0);
    } else {
        mesh.x_label_formatter(&x_label);
    }
    mesh.draw()?;
    let band_color = RGBColor(120, 120, 120);
    for band in &chart.bands {
        context.draw_series(std::iter::once(Rectangle::new(
            [(band.from, 0.0), (band.to, y_high * 1.08)],
            band_color.mix(0.15).filled(),
        )))?;
    }
    for series in &chart.series {
        let color = parse_color(series.color);
        context.draw_series(LineSeries::new(
            series.points.iter().map(|p| (place(p[0]), p[1])),
            color.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::data::{Band, Series};

    fn chart(x_scale: XScale, points: Vec<[f64; 2]>) -> Chart {
        Chart {
            id: "c",
            title: "t",
            x_label: "x",
            y_label: "y",
            x_scale,
            bands: vec![Band {
                from: 0.0,
                to: 2.0,
                label: "warm-up".into(),
            }],
            series: vec![
                Series {
                    name: "a".into(),
                    color: "#d1495b",
                    points: points.clone(),
                },
                Series {
                    name: "b".into(),
                    color: "#00798c",
                    points: points.into_iter().map(|[x, y]| [x, y * 2.0]).collect(),
                },
            ],
        }
    }

    fn polylines_of(svg: &str, stroke: &str) -> Vec<usize> {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p.contains(&format!(r#"stroke="{stroke}""#)))
            .map(|p| {
                let points = p.split(r#"points=""#).nth(1).unwrap();
                points[..points.find('"').unwrap()]
                    .split_whitespace()
                    .count()
            })
            .collect()
    }

    #[test]
    fn each_series_is_one_polyline_of_its_colour_with_a_point_per_value() {
        let points: Vec<[f64; 2]> = (0..17).map(|s| [s as f64, (s * s) as f64]).collect();
        let svg = svg(&chart(XScale::Linear, points)).unwrap();
        assert_eq!(polylines_of(&svg, "#D1495B"), vec![17]);
        assert_eq!(polylines_of(&svg, "#00798C"), vec![17]);
        // The band: grey at 15 % (the background is the only other rect).
        assert_eq!(
            svg.matches(r##"opacity="0.15" fill="#787878""##).count(),
            1,
            "{svg}"
        );
    }

    #[test]
    fn the_percentile_axis_spaces_the_nines_evenly() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(90.0) - 1.0).abs() < 1e-12);
        assert!((percentile_x(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_label(&0.0), "0%");
        assert_eq!(percentile_label(&1.0), "90%");
        assert_eq!(percentile_label(&2.0), "99%");
        assert_eq!(percentile_label(&3.0), "99.9%");
        assert_eq!(percentile_label(&4.0), "99.99%");
        let points = vec![
            [0.0, 1.0],
            [50.0, 2.0],
            [90.0, 3.0],
            [99.0, 5.0],
            [99.9, 9.0],
        ];
        let svg = svg(&chart(XScale::Percentile, points)).unwrap();
        assert_eq!(polylines_of(&svg, "#D1495B"), vec![5]);
        assert!(svg.contains(">\n99.9%\n</text>"), "a tick at 99.9 %: {svg}");
    }
}
