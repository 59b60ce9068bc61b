//! SVG bar charts of the broken-connection fraction per strategy, with the
//! `plotters` SVG backend (text as SVG `<text>`, laid out without fonts).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{rate, RunResult};
use crate::Strategy;

/// Colour of a strategy's bars (by its place in [`Strategy::ALL`], so a
/// strategy has the same colour in every chart).
fn colour(strategy: &str) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x1f, 0x77, 0xb4),
    ];
    let i = Strategy::parse(strategy)
        .and_then(|s| Strategy::ALL.iter().position(|&x| x == s))
        .unwrap_or(0);
    C[i % C.len()]
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// One chart for one scenario: a bar per strategy (broken fraction, log
/// scale, a zero drawn at the floor), labelled with the count and the sync
/// rate.
pub fn scenario_chart(runs: &[RunResult], path: &Path) -> PlotResult {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let floor = 1e-7f64;
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{}: broken connections (ecmp {}, {} gw, {} backends, {} conns)",
        first.scenario, first.ecmp, first.gateways, first.backends, first.connections
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..runs.len() as f64, (floor..1.0f64).log_scale())?;
    let names: Vec<String> = runs.iter().map(|r| r.strategy.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(runs.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc("broken / connections (0 drawn at 1e-7)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    chart.draw_series(runs.iter().enumerate().map(|(i, r)| {
        let x = i as f64;
        let y = r.broken_fraction.max(floor);
        Rectangle::new(
            [(x + 0.15, floor), (x + 0.85, y)],
            colour(&r.strategy).filled(),
        )
    }))?;
    chart.draw_series(runs.iter().enumerate().map(|(i, r)| {
        let label = if r.sync_bytes_per_s_per_gateway > 0.0 {
            format!("{} ({})", r.broken, rate(r.sync_bytes_per_s_per_gateway))
        } else {
            format!("{}", r.broken)
        };
        let y = r.broken_fraction.max(floor) * 2.0;
        Text::new(label, (i as f64 + 0.12, y), ("sans-serif", 12))
    }))?;
    root.present()?;
    Ok(())
}

/// One chart of every scenario: groups of bars (one per strategy) on a
/// log scale of the broken fraction; a zero is drawn at the floor.
pub fn summary_chart(all: &[Vec<RunResult>], path: &Path) -> PlotResult {
    let floor = 1e-7f64;
    let groups: Vec<String> = all
        .iter()
        .filter_map(|r| r.first().map(|x| x.scenario.clone()))
        .collect();
    let width = 200 + 190 * groups.len() as u32;
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "broken fraction per strategy and scenario (log scale; 0 drawn at 1e-7)",
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups.len() as f64, (floor..1.0f64).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < groups.len() {
                groups[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc("broken / connections")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    let width = 0.8 / all.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    for (gi, runs) in all.iter().enumerate() {
        chart.draw_series(runs.iter().enumerate().map(|(si, r)| {
            let x = gi as f64 + 0.1 + si as f64 * width;
            let y = r.broken_fraction.max(floor);
            Rectangle::new(
                [(x, floor), (x + width * 0.9, y)],
                colour(&r.strategy).filled(),
            )
        }))?;
    }
    if let Some(runs) = all.first() {
        for r in runs {
            let c = colour(&r.strategy);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, floor), (0.0, floor)],
                    c.filled(),
                )))?
                .label(r.strategy.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
