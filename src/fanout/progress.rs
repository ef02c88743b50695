//! What a fan-out shows while it runs: results as they come, and a live view on a terminal.
//!
//! [`Reporter`] is the one place the pods' tasks hand their results to, so the streams never
//! interleave mid-line: `-o jsonl` gets a line per step as it finishes (and one per pod), the
//! text output gets a block per pod when it is done, `-o json` waits for the end. On a
//! terminal (stderr) a live view redraws every few hundred milliseconds: a header with the
//! counts, then one line per pod being worked on (step, state, elapsed). Its lines are a pure
//! function of the [`Board`], tested without a terminal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fanout::results::{self, ContextResult, PodResult, PodStatus, StepResult};
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;

/// Where one pod is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Queued,
    /// Resolving, adding (or reusing) the debug container, waiting for it to run.
    Starting,
    /// Running step `index` (from 0) of the runbook.
    Step {
        index: usize,
        name: String,
    },
    Stopping,
    Done(PodStatus),
}

#[derive(Debug)]
struct Row {
    name: String,
    phase: Phase,
    since: Instant,
}

/// Every pod's phase, for the live view.
#[derive(Debug)]
pub struct Board {
    title: String,
    steps: usize,
    started: Instant,
    rows: Vec<Row>,
}

impl Board {
    /// `pods` are `namespace/name` (after `[context] ` with several contexts), in the order the
    /// fan-out numbers them.
    pub fn new(title: &str, steps: usize, pods: &[String], now: Instant) -> Board {
        Board {
            title: title.to_string(),
            steps,
            started: now,
            rows: pods
                .iter()
                .map(|name| Row {
                    name: name.clone(),
                    phase: Phase::Queued,
                    since: now,
                })
                .collect(),
        }
    }

    pub fn set(&mut self, pod: usize, phase: Phase, now: Instant) {
        if let Some(row) = self.rows.get_mut(pod) {
            row.phase = phase;
            row.since = now;
        }
    }

    /// The view: a header, then the pods being worked on, at most `height` lines in all,
    /// each cut to `width` characters.
    pub fn lines(&self, now: Instant, width: usize, height: usize) -> Vec<String> {
        let count = |f: fn(&Phase) -> bool| self.rows.iter().filter(|r| f(&r.phase)).count();
        let done = count(|p| matches!(p, Phase::Done(_)));
        let failed = count(|p| matches!(p, Phase::Done(PodStatus::Failed)));
        let broken = count(|p| matches!(p, Phase::Done(PodStatus::Error)));
        let queued = count(|p| matches!(p, Phase::Queued));
        let active: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| !matches!(r.phase, Phase::Queued | Phase::Done(_)))
            .collect();
        let mut header = format!("{}: {done}/{} pods done", self.title, self.rows.len());
        if failed > 0 || broken > 0 {
            header.push_str(&format!(" ({failed} failed, {broken} not debugged)"));
        }
        header.push_str(&format!(
            ", {} running, {queued} queued, {}",
            active.len(),
            seconds(now.saturating_duration_since(self.started))
        ));
        let mut lines = vec![cut(&header, width)];
        let name_width = active
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .min(48);
        let room = height.saturating_sub(1).max(1);
        for (shown, row) in active.iter().enumerate() {
            if shown + 1 == room && active.len() > room {
                lines.push(format!("  ... and {} more", active.len() - shown));
                break;
            }
            let what = match &row.phase {
                Phase::Starting => "starting the debug container".to_string(),
                Phase::Step { index, name } => {
                    format!("step {}/{} {name}", index + 1, self.steps)
                }
                Phase::Stopping => "stopping the debug container".to_string(),
                Phase::Queued | Phase::Done(_) => String::new(),
            };
            let line = format!(
                "  {:name_width$}  {what}  {}",
                row.name,
                seconds(now.saturating_duration_since(row.since))
            );
            lines.push(cut(&line, width));
        }
        lines
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    line.chars()
        .take(width.saturating_sub(1))
        .collect::<String>()
        + "…"
}

/// How results leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A block of text per pod on stdout, as pods finish.
    Text,
    /// One document at the end.
    Document(OutputFormat),
    /// A line per step as it finishes, a line per pod, a summary line.
    Lines,
}

impl Format {
    pub fn of(output: Option<OutputFormat>) -> Format {
        match output {
            None => Format::Text,
            Some(OutputFormat::Jsonl) => Format::Lines,
            Some(other) => Format::Document(other),
        }
    }
}

struct Screen {
    board: Board,
    /// Lines of the live view now on the terminal.
    drawn: usize,
}

/// Takes results from the pods' tasks and shows them, one writer at a time.
pub struct Reporter {
    format: Format,
    printer: Printer,
    screen: Mutex<Screen>,
    /// The run has several contexts: text blocks say which.
    with_context: bool,
}

impl Reporter {
    pub fn new(format: Format, printer: Printer, board: Board, with_context: bool) -> Reporter {
        Reporter {
            format,
            printer,
            screen: Mutex::new(Screen { board, drawn: 0 }),
            with_context,
        }
    }

    fn screen(&self) -> std::sync::MutexGuard<'_, Screen> {
        // A panic elsewhere while holding the lock leaves the board as good as it was.
        self.screen.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn phase(&self, pod: usize, phase: Phase) {
        self.screen().board.set(pod, phase, Instant::now());
    }

    /// A step finished: its `-o jsonl` line goes out now.
    pub fn step_done(&self, pod: &PodResult, step: &StepResult) {
        if self.format == Format::Lines {
            self.emit(&results::step_line(pod, step));
        }
    }

    /// A pod is done (or could not be debugged).
    pub fn pod_done(&self, index: usize, pod: &PodResult) {
        self.phase(index, Phase::Done(pod.status));
        match self.format {
            Format::Lines => self.emit(&results::pod_line(pod)),
            Format::Text => self.emit(&results::text_block(pod, self.with_context)),
            Format::Document(_) => {}
        }
    }

    /// A context whose pods could not be chosen (it has no pods to report).
    pub fn context_failed(&self, context: &ContextResult) {
        match self.format {
            Format::Lines => self.emit(&results::context_line(context)),
            Format::Text => self.emit(&results::context_block(context)),
            Format::Document(_) => {}
        }
    }

    /// Data on stdout, with the live view out of its way (it is redrawn on the next tick).
    pub fn emit(&self, text: &str) {
        let mut screen = self.screen();
        if screen.drawn > 0 {
            self.printer.redraw(screen.drawn, &[]);
            screen.drawn = 0;
        }
        // Data that cannot be written (a closed pipe) is not worth stopping the teardowns for.
        let _ = self.printer.stdout(text);
    }

    /// Redraws the live view (terminal only).
    pub fn tick(&self) {
        let (width, height) = crossterm::terminal::size()
            .map(|(w, h)| (usize::from(w), usize::from(h)))
            .unwrap_or((80, 24));
        let mut screen = self.screen();
        // Keep a third of the screen for output scrolling above.
        let lines = screen
            .board
            .lines(Instant::now(), width.max(20), (height / 3).max(3));
        screen.drawn = self.printer.redraw(screen.drawn, &lines);
    }

    /// Erases the live view for good.
    pub fn clear(&self) {
        let mut screen = self.screen();
        if screen.drawn > 0 {
            self.printer.redraw(screen.drawn, &[]);
            screen.drawn = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(now: Instant) -> Board {
        let pods: Vec<String> = (1..=5).map(|i| format!("ns/web-{i}")).collect();
        Board::new("run network", 3, &pods, now)
    }

    #[test]
    fn shows_counts_then_the_pods_being_worked_on() {
        let t0 = Instant::now();
        let mut b = board(t0);
        b.set(0, Phase::Done(PodStatus::Ok), t0);
        b.set(1, Phase::Done(PodStatus::Failed), t0);
        b.set(2, Phase::Starting, t0);
        b.set(
            3,
            Phase::Step {
                index: 1,
                name: "routes".into(),
            },
            t0 + Duration::from_millis(500),
        );
        let lines = b.lines(t0 + Duration::from_millis(2000), 200, 10);
        assert_eq!(
            lines,
            vec![
                "run network: 2/5 pods done (1 failed, 0 not debugged), 2 running, 1 queued, 2.0s",
                "  ns/web-3  starting the debug container  2.0s",
                "  ns/web-4  step 2/3 routes  1.5s",
            ]
        );
    }

    #[test]
    fn fits_the_terminal() {
        let t0 = Instant::now();
        let mut b = board(t0);
        for i in 0..5 {
            b.set(i, Phase::Starting, t0);
        }
        let lines = b.lines(t0, 30, 3);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], "  ... and 4 more");
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert!(lines[0].ends_with('…'));
    }

    #[test]
    fn formats_follow_the_output_flag() {
        assert_eq!(Format::of(None), Format::Text);
        assert_eq!(Format::of(Some(OutputFormat::Jsonl)), Format::Lines);
        assert_eq!(
            Format::of(Some(OutputFormat::Json)),
            Format::Document(OutputFormat::Json)
        );
    }
}
