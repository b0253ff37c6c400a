//! Logs through `tracing`, to stderr (stdout carries the report), json or plain; and, on a
//! terminal, progress bars for long work instead of its progress lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::progress::{self, Tick, TARGET};

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
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .try_init();
    if bars {
        progress::watch(Bars {
            multi,
            bars: Mutex::default(),
        });
    }
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

/// One bar per task, fed by the progress ticks; a task shows a bar once it has lasted
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

impl progress::Watcher for Bars {
    fn tick(&self, tick: Tick<'_>) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if tick.finished {
            if let Some(Task::Shown(bar)) = bars.remove(tick.task) {
                bar.set_position(tick.done);
                bar.finish_and_clear();
            }
            return;
        }
        let task = bars
            .entry(tick.task.to_string())
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

fn new_bar(tick: &Tick<'_>) -> ProgressBar {
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
