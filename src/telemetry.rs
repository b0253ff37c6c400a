//! Logs through `tracing`, to stderr (stdout carries the report), json or plain; and, on a
//! terminal, progress bars for long work instead of its progress lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::progress::TARGET;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// `level` is an `EnvFilter` directive such as `info` or `pushgateway_janitor=debug,warn`.
/// `quiet` drops progress, as lines and as bars. Bars are drawn only with plain logs on a
/// terminal; then they replace the progress lines.
pub fn init(format: LogFormat, level: &str, quiet: bool) -> crate::Result<()> {
    let bars = !quiet && format == LogFormat::Plain && std::io::stderr().is_terminal();
    let directives = if quiet || bars {
        format!("{level},{TARGET}=off")
    } else {
        level.to_string()
    };
    let filter = EnvFilter::try_new(&directives)
        .map_err(|e| crate::Error::config("--log-level", format!("{level:?}: {e}")))?;
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(Suspending(bars.then(|| multi.clone())));
    let logs = match format {
        LogFormat::Plain => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let bar_layer = bars.then(|| {
        Bars {
            multi,
            bars: Mutex::default(),
        }
        .with_filter(Targets::new().with_target(TARGET, Level::TRACE))
    });
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(bar_layer)
        .try_init();
    Ok(())
}

/// Writes log lines to stderr, around the progress bars when there are some, so the two never
/// garble each other.
struct Suspending(Option<MultiProgress>);

impl<'a> MakeWriter<'a> for Suspending {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            multi: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

struct LineWriter {
    multi: Option<MultiProgress>,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().write_all(&self.buf);
        };
        match &self.multi {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

/// One bar per task, fed by the progress TRACE events; a task shows a bar once it has lasted
/// [`SHOW_AFTER`], so quick reads do not flicker.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, Task>>,
}

const SHOW_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

enum Task {
    Waiting(std::time::Instant),
    Shown(ProgressBar),
}

#[derive(Default)]
struct Tick {
    task: String,
    done: u64,
    total: Option<u64>,
    unit: String,
    finished: bool,
}

impl Visit for Tick {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "task" => self.task = value.to_string(),
            "unit" => self.unit = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "done" => self.done = value,
            "total" => self.total = Some(value),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "finished" {
            self.finished = value;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "task" {
            self.task = format!("{value:?}").trim_matches('"').to_string();
        }
    }
}

impl<S: Subscriber> Layer<S> for Bars {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::TRACE {
            return;
        }
        let mut tick = Tick::default();
        event.record(&mut tick);
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if tick.finished {
            if let Some(Task::Shown(bar)) = bars.remove(&tick.task) {
                bar.set_position(tick.done);
                bar.finish_and_clear();
            }
            return;
        }
        let task = bars
            .entry(tick.task.clone())
            .or_insert_with(|| Task::Waiting(std::time::Instant::now()));
        if let Task::Waiting(since) = task {
            if since.elapsed() < SHOW_AFTER {
                return;
            }
            *task = Task::Shown(self.multi.add(new_bar(&tick)));
        }
        let Task::Shown(bar) = task else {
            return;
        };
        bar.set_position(tick.done);
    }
}

fn new_bar(tick: &Tick) -> ProgressBar {
    let style = |template: &str| ProgressStyle::with_template(template).expect("a fixed template");
    let bar = match tick.total {
        Some(total) => ProgressBar::new(total).with_style(
            style("{msg} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta}")
                .progress_chars("=> "),
        ),
        None if tick.unit == "bytes" => ProgressBar::no_length().with_style(style(
            "{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}",
        )),
        None => ProgressBar::no_length().with_style(style("{msg} {spinner} {human_pos} {per_sec}")),
    };
    bar.set_message(format!("{} ({})", tick.task, tick.unit));
    bar
}
