//! Progress of a run, on stderr and never on stdout: per phase
//! (discovering, planning, applying) and per target, with counts and
//! elapsed time. On a terminal, live lines (indicatif): one per phase and one
//! per target in flight. Elsewhere (CI, a pipe), plain lines, one per event,
//! or JSON lines with `--log-format json`. Names and timings only: never a
//! script, a value or a secret.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Live lines on a terminal, plain lines otherwise (JSON lines with
    /// `--log-format json`).
    #[default]
    Auto,
    /// One plain line per event, even on a terminal.
    Plain,
    /// One JSON object per event.
    Json,
    /// Nothing.
    Off,
}

/// The phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Discovering,
    Planning,
    Applying,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Discovering => "discovering",
            Phase::Planning => "planning",
            Phase::Applying => "applying",
        }
    }

    /// What the phase counts.
    fn unit(self) -> &'static str {
        match self {
            Phase::Discovering => "targets",
            Phase::Planning | Phase::Applying => "resources",
        }
    }
}

enum Sink {
    Off,
    Plain,
    Json,
    Terminal(MultiProgress),
}

/// The progress of one run; shared by its tasks.
pub struct Progress {
    sink: Sink,
    started: Instant,
    /// Plain and JSON lines are written whole, one at a time.
    lines: Mutex<()>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Progress")
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new(ProgressMode::Off, false)
    }
}

impl Progress {
    /// `json_logs`: the run logs JSON lines (`--log-format json`), so auto
    /// progress off a terminal is JSON too.
    pub fn new(mode: ProgressMode, json_logs: bool) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let sink = match mode {
            ProgressMode::Off => Sink::Off,
            ProgressMode::Plain => Sink::Plain,
            ProgressMode::Json => Sink::Json,
            ProgressMode::Auto if json_logs => Sink::Json,
            ProgressMode::Auto if terminal => {
                Sink::Terminal(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            ProgressMode::Auto => Sink::Plain,
        };
        Progress {
            sink,
            started: Instant::now(),
            lines: Mutex::new(()),
        }
    }

    /// Start `phase` over `total` things.
    pub fn phase(self: &Arc<Self>, phase: Phase, total: usize) -> Arc<PhaseProgress> {
        let bar = match &self.sink {
            // Apply prints each resource's outcome as it settles: a live
            // line would be drawn over them.
            Sink::Terminal(_) if phase == Phase::Applying => None,
            Sink::Terminal(bars) => {
                let bar = bars.add(ProgressBar::new(total as u64));
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{prefix:>12}} [{{bar:30}}] {{pos}}/{{len}} {} {{elapsed}}",
                        phase.unit()
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(phase.name());
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            _ => None,
        };
        let started = Instant::now();
        self.line(phase, None, "started", 0, total, None);
        Arc::new(PhaseProgress {
            progress: Arc::clone(self),
            phase,
            total,
            done: AtomicUsize::new(0),
            started,
            bar,
            in_flight: Mutex::new(Vec::new()),
        })
    }

    /// One event as a line (plain or JSON); nothing on a terminal.
    fn line(
        &self,
        phase: Phase,
        target: Option<&str>,
        status: &str,
        done: usize,
        total: usize,
        seconds: Option<f64>,
    ) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let text = match &self.sink {
            Sink::Off | Sink::Terminal(_) => return,
            Sink::Plain => {
                let mut text = format!("progress: {}", phase.name());
                if let Some(target) = target {
                    text.push(' ');
                    text.push_str(target);
                }
                text.push_str(&format!(": {status}"));
                if let Some(seconds) = seconds {
                    text.push_str(&format!(" in {seconds:.2} s"));
                }
                text.push_str(&format!(
                    " ({done}/{total} {}, {elapsed:.2} s)",
                    phase.unit()
                ));
                text
            }
            Sink::Json => serde_json::json!({
                "progress": phase.name(),
                "target": target,
                "status": status,
                "done": done,
                "total": total,
                "unit": phase.unit(),
                "seconds": seconds.map(|seconds| (seconds * 1000.0).round() / 1000.0),
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "elapsed_seconds": (elapsed * 1000.0).round() / 1000.0,
            })
            .to_string(),
        };
        let _guard = self.lines.lock();
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// One phase under way.
pub struct PhaseProgress {
    progress: Arc<Progress>,
    phase: Phase,
    total: usize,
    done: AtomicUsize,
    started: Instant,
    bar: Option<ProgressBar>,
    /// On a terminal, one line per target in flight.
    in_flight: Mutex<Vec<(String, ProgressBar)>>,
}

impl PhaseProgress {
    /// Work on `target` began (a line of its own on a terminal).
    pub fn begin(&self, target: &str) {
        if let (Sink::Terminal(bars), Some(bar)) = (&self.progress.sink, &self.bar) {
            let line = bars.insert_after(bar, ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_message(target.to_string());
            line.enable_steady_tick(Duration::from_millis(120));
            if let Ok(mut in_flight) = self.in_flight.lock() {
                in_flight.push((target.to_string(), line));
            }
        }
    }

    /// `count` things of `target` are done, as `status` (`read`, `failed`),
    /// after `seconds`.
    /// No `target`: counted, without a line of its own.
    pub fn finish(&self, target: Option<&str>, status: &str, count: usize, seconds: Option<f64>) {
        let done = self.done.fetch_add(count, Ordering::SeqCst) + count;
        if let Some(bar) = &self.bar {
            bar.inc(count as u64);
            if let Ok(mut in_flight) = self.in_flight.lock()
                && let Some(position) = in_flight
                    .iter()
                    .position(|(name, _)| Some(name.as_str()) == target)
            {
                let (_, line) = in_flight.remove(position);
                line.finish_and_clear();
            }
        }
        if let Some(target) = target {
            self.progress
                .line(self.phase, Some(target), status, done, self.total, seconds);
        }
    }

    /// The phase is over: `summary` says how it went (`19 read, 1 failed`).
    pub fn end(&self, summary: &str) {
        let done = self.done.load(Ordering::SeqCst);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Sink::Terminal(bars) = &self.progress.sink {
            {
                let _ = bars.println(format!(
                    "{:>12} {summary} in {:.1} s",
                    self.phase.name(),
                    self.started.elapsed().as_secs_f64()
                ));
            }
        }
        self.progress.line(
            self.phase,
            None,
            &format!("done, {summary}"),
            done,
            self.total,
            Some(self.started.elapsed().as_secs_f64()),
        );
    }
}
