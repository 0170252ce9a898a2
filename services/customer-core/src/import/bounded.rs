//! Rows of bounded length. An upload may be 1 GiB while customer-core runs in little
//! memory: one NDJSON line, or one CSV row whose quote never closes, must not make it
//! hold the whole upload. A customer row is small; anything longer is refused by line.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, ReadBuf};

/// The longest row accepted.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// One NDJSON line.
pub enum Line {
    Text(String),
    /// Longer than `MAX_ROW_BYTES`: skipped to its end, never held.
    TooLong,
    End,
}

/// The next line of `reader` without its line break, holding at most `MAX_ROW_BYTES`.
pub async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(Line::End);
            }
            break;
        }
        let (take, ends) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if line.len() + take > MAX_ROW_BYTES + 1 {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        if ends {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Line::Text)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the line is not UTF-8"))
}

/// Passes a CSV upload through, failing once more than a row's worth has been read
/// since the last `RowStart::mark` (the CSV reader's own buffer allowed for).
pub struct RowLimit<R> {
    inner: R,
    since_row: Arc<AtomicUsize>,
}

/// Marks where the CSV reader finished a row.
#[derive(Clone)]
pub struct RowStart(Arc<AtomicUsize>);

impl RowStart {
    pub fn mark(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Read ahead of the current row by the CSV reader (its buffer).
const READ_AHEAD: usize = 64 * 1024;

impl<R> RowLimit<R> {
    pub fn new(inner: R) -> (Self, RowStart) {
        let since_row = Arc::new(AtomicUsize::new(0));
        let start = RowStart(since_row.clone());
        (Self { inner, since_row }, start)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for RowLimit<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.since_row.load(Ordering::Relaxed) > MAX_ROW_BYTES + READ_AHEAD {
            let message = format!(
                "a row longer than {} KiB (a quote that never closes?)",
                MAX_ROW_BYTES / 1024
            );
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.since_row.fetch_add(read, Ordering::Relaxed);
        polled
    }
}
