//! What `rebeam top` draws: a pure function of (the report now, the report before, the area)
//! into a ratatui frame, so that its tests draw into a `TestBackend` and compare text.
//!
//! The rules:
//!
//! - Rates come from two reports: a counter's difference over the difference of their
//!   `uptime_ms`. With no report before, no time between them, or a counter that went down (a
//!   new incarnation, a new process with an old pid), the rate is unknown and shows as `-`.
//! - Actors are matched across reports by their id, processes by their pid: a restarted actor
//!   has a new id, so its rate starts afresh.
//! - Panes: the header (program, safety state, uptime, what to press), the supervision tree
//!   (one row per supervisor and child), the processes, the safety history (newest first) and
//!   the bus. Every pane clips to its area; nothing depends on the terminal size beyond that.

use std::collections::HashMap;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::Frame;
use rebeam_proto::{ActorId, ChildStatus, ProgramStatus, Safety, StatusReport, TreeStatus};

use crate::render::state_name;

/// One answer of the governor: the safety state and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub state: Safety,
    pub report: StatusReport,
}

/// Bytes in a mebibyte, for RSS.
const MIB: f64 = 1024.0 * 1024.0;

/// Draws `now` (compared with `before` for rates) into the whole frame; `note` is a line the
/// header adds (why the last refresh failed, say).
pub fn draw(frame: &mut Frame, now: &Sample, before: Option<&Sample>, note: Option<&str>) {
    let [header, tree, bottom] =
        Layout::vertical([Constraint::Length(2), Constraint::Percentage(50), Constraint::Fill(1)]).areas(frame.area());
    let [procs, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(bottom);
    let [safety, bus] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(right);
    let rates = Rates::between(now, before);
    draw_header(frame, header, now, note);
    draw_tree(frame, tree, &now.report, &rates);
    draw_processes(frame, procs, &now.report, &rates);
    draw_safety(frame, safety, now);
    draw_bus(frame, bus, &now.report);
}

/// The counters of the report before, and the time between the two.
struct Rates {
    seconds: Option<f64>,
    delivered: HashMap<ActorId, u64>,
    cpu_ms: HashMap<u32, u64>,
}

impl Rates {
    fn between(now: &Sample, before: Option<&Sample>) -> Rates {
        let mut rates = Rates { seconds: None, delivered: HashMap::new(), cpu_ms: HashMap::new() };
        let Some(before) = before else { return rates };
        let dt = now.report.uptime_ms.saturating_sub(before.report.uptime_ms);
        rates.seconds = (dt > 0).then(|| dt as f64 / 1000.0);
        for tree in &before.report.trees {
            collect_delivered(tree, &mut rates.delivered);
        }
        for p in &before.report.processes {
            if let Some(u) = p.usage {
                rates.cpu_ms.insert(p.pid, u.cpu_ms);
            }
        }
        rates
    }

    /// `now - before` per second, if both are known and the counter did not go down.
    fn per_second(&self, before: Option<u64>, now: u64) -> Option<f64> {
        let grown = now.checked_sub(before?)?;
        Some(grown as f64 / self.seconds?)
    }

    fn messages(&self, actor: ActorId, delivered: u64) -> Option<f64> {
        self.per_second(self.delivered.get(&actor).copied(), delivered)
    }

    /// CPU use as a percentage of one core.
    fn cpu_percent(&self, pid: u32, cpu_ms: u64) -> Option<f64> {
        // ms of CPU per second is a thousandth of a core: a tenth of a percent.
        self.per_second(self.cpu_ms.get(&pid).copied(), cpu_ms).map(|ms| ms / 10.0)
    }
}

fn collect_delivered(tree: &TreeStatus, into: &mut HashMap<ActorId, u64>) {
    for child in &tree.children {
        match child {
            ChildStatus::Tree(sub) => collect_delivered(sub, into),
            ChildStatus::Actor { running: Some((actor, _)), delivered, .. } => {
                into.insert(*actor, *delivered);
            }
            ChildStatus::Actor { .. } => {}
        }
    }
}

fn or_dash(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn pane(title: &str) -> Block<'_> {
    Block::bordered().title(Span::styled(format!(" {title} "), Style::new().add_modifier(Modifier::BOLD)))
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn draw_header(frame: &mut Frame, area: Rect, now: &Sample, note: Option<&str>) {
    let program = match &now.report.program {
        ProgramStatus::Script(s) => format!("script {s}"),
        ProgramStatus::Library(p) => p.clone(),
    };
    let uptime = now.report.uptime_ms as f64 / 1000.0;
    let first = Line::from(vec![
        Span::styled("rebeam top", bold()),
        Span::raw(format!("  {program}  up {uptime:.1}s  safety: ")),
        Span::styled(state_name(now.state), bold()),
    ]);
    let second = Line::from(note.map_or_else(|| "q quits".to_string(), |n| format!("q quits  {n}")));
    frame.render_widget(Paragraph::new(vec![first, second]), area);
}

fn draw_tree(frame: &mut Frame, area: Rect, report: &StatusReport, rates: &Rates) {
    let mut rows = Vec::new();
    for tree in &report.trees {
        tree_rows(tree, 0, rates, &mut rows);
    }
    if rows.is_empty() {
        rows.push(Row::new(["no supervision tree is running"]));
    }
    let header = Row::new(["child", "runs as", "mailbox", "msg/s", "restarts", "last crash"]).style(bold());
    let widths = [
        Constraint::Fill(3),
        Constraint::Fill(3),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Fill(4),
    ];
    frame.render_widget(Table::new(rows, widths).header(header).block(pane("supervision tree")), area);
}

fn tree_rows(tree: &TreeStatus, depth: usize, rates: &Rates, rows: &mut Vec<Row<'static>>) {
    let pad = "  ".repeat(depth);
    // A supervisor's restart budget: used of allowed within its window.
    let budget = format!(
        "{} {}/{} in {}s",
        tree.strategy,
        tree.restarts_used,
        tree.max_restarts,
        std::time::Duration::from_millis(tree.max_seconds_ms).as_secs_f64()
    );
    let cells = [format!("{pad}{}", tree.label), budget];
    rows.push(Row::new(cells).style(bold()));
    for child in &tree.children {
        match child {
            ChildStatus::Tree(sub) => tree_rows(sub, depth + 1, rates, rows),
            ChildStatus::Actor { name, label, running, mailbox, delivered, restarts, last_crash } => {
                let who = name.as_deref().map_or(label.clone(), |n| format!("'{n}' ({label})"));
                let (runs_as, mailbox, rate) = match running {
                    Some((actor, place)) => {
                        let place = place.as_deref().map_or("waiting for a worker".to_string(), short_place);
                        (
                            format!("<{actor}> on {place}"),
                            mailbox.to_string(),
                            or_dash(rates.messages(*actor, *delivered), 1),
                        )
                    }
                    None => ("not running".to_string(), "-".to_string(), "-".to_string()),
                };
                let crash = last_crash.clone().unwrap_or_default();
                rows.push(Row::new([format!("{pad}  {who}"), runs_as, mailbox, rate, restarts.to_string(), crash]));
            }
        }
    }
}

/// "worker 1 (pid 11)" → "worker 1": the pid is in the processes pane.
fn short_place(place: &str) -> String {
    place.split(" (pid").next().unwrap_or(place).to_string()
}

fn draw_processes(frame: &mut Frame, area: Rect, report: &StatusReport, rates: &Rates) {
    let rows = report.processes.iter().map(|p| {
        let what = if p.spare { format!("{} (spare)", short_place(&p.describe)) } else { short_place(&p.describe) };
        let (cpu, rss) = match p.usage {
            Some(u) => (or_dash(rates.cpu_percent(p.pid, u.cpu_ms), 1), format!("{:.1}", u.rss_bytes as f64 / MIB)),
            None => ("-".to_string(), "-".to_string()),
        };
        Row::new([what, p.pid.to_string(), cpu, rss, p.actors.to_string()])
    });
    let header = Row::new(["process", "pid", "cpu %", "rss MiB", "actors"]).style(bold());
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(6),
    ];
    frame.render_widget(Table::new(rows, widths).header(header).block(pane("processes")), area);
}

fn draw_safety(frame: &mut Frame, area: Rect, now: &Sample) {
    let mut lines = vec![Line::from(vec![Span::raw("state: "), Span::styled(state_name(now.state), bold())])];
    if now.report.transitions.is_empty() {
        lines.push(Line::from("no transition yet"));
    }
    for t in now.report.transitions.iter().rev() {
        let at = t.at_ms as f64 / 1000.0;
        lines.push(Line::from(format!("{at:>7.1}s  {}", crate::render::transition(&t.transition))));
    }
    frame.render_widget(Paragraph::new(lines).block(pane("safety")), area);
}

fn draw_bus(frame: &mut Frame, area: Rect, report: &StatusReport) {
    let rows = report.bus.iter().map(|s| {
        Row::new([
            s.pattern.clone(),
            short_place(&s.owner),
            format!("{}/{}", s.queued, s.capacity),
            s.dropped.to_string(),
        ])
    });
    let header = Row::new(["topic", "subscriber", "queued", "dropped"]).style(bold());
    let widths = [Constraint::Fill(1), Constraint::Fill(1), Constraint::Length(11), Constraint::Length(7)];
    frame.render_widget(Table::new(rows, widths).header(header).block(pane("bus")), area);
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
