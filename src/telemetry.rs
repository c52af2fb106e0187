//! Structured logging with `tracing`: text or JSON lines, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to stderr (once; later calls do nothing).
pub fn init(format: LogFormat, filter: &str) {
    install(format, filter, BoxMakeWriter::new(std::io::stderr), true);
}

/// Installs the global subscriber writing to stdout without colours: the
/// Functions host logs a handler's stderr lines as errors and stdout lines
/// as information (reference §1.2, §6.20).
pub fn init_stdout(format: LogFormat, filter: &str) {
    install(format, filter, BoxMakeWriter::new(std::io::stdout), false);
}

fn install(format: LogFormat, filter: &str, writer: BoxMakeWriter, ansi: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
