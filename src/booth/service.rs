//! The service action: what the owner does after fixing the printer (new roll, ribbon, cable).
//! Reached by holding the booth's button and by `photoboothd printer resume`; both do the same.

use crate::clock;
use crate::hw::printer::Printer;
use crate::store::{jobs, media, Store, StoreError};

#[derive(Debug, Default)]
pub struct Resumed {
    /// Failed jobs put back in the queue.
    pub requeued: usize,
    /// The media counter after a refill, when one was asked for and media is counted.
    pub media_left: Option<i64>,
    /// What the printer said to the resume, if it failed.
    pub printer_error: Option<String>,
}

/// Resumes the printer queue, requeues failed jobs and, with `refill_capacity`, resets the media
/// counter to a full roll. Blocking.
pub fn resume(store: &Store, printer: &dyn Printer, refill_capacity: Option<u32>) -> Result<Resumed, StoreError> {
    let printer_error = printer.resume().err().map(|e| e.message);
    let now = clock::now_ms();
    let (requeued, media) = store.write(|tx| {
        let requeued = jobs::requeue_failed(tx, now)?;
        let media = match refill_capacity {
            Some(capacity) => media::refill(tx, capacity, now)?,
            None => None,
        };
        Ok((requeued, media))
    })?;
    tracing::warn!(
        requeued,
        media_left = media.map(|m| m.remaining),
        printer_error = printer_error.as_deref(),
        "service: printer resumed, failed print jobs requeued"
    );
    Ok(Resumed {
        requeued,
        media_left: media.map(|m| m.remaining),
        printer_error,
    })
}

/// Routes button events: a hold is the service action; presses drive the session.
pub async fn handle_buttons(
    mut events: tokio::sync::mpsc::UnboundedReceiver<crate::hw::gpio::ButtonEvent>,
    sessions: super::session::Sessions,
    store: std::sync::Arc<Store>,
    printer: std::sync::Arc<dyn Printer>,
    print_wake: tokio::sync::mpsc::Sender<i64>,
) {
    use crate::hw::gpio::ButtonEvent;
    while let Some(event) = events.recv().await {
        match event {
            ButtonEvent::Hold => {
                let (store, printer) = (store.clone(), printer.clone());
                match tokio::task::spawn_blocking(move || resume(&store, printer.as_ref(), None)).await {
                    Ok(Ok(_)) => {
                        let _ = print_wake.try_send(0);
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "service action failed"),
                    Err(e) => tracing::error!(error = %e, "service action task failed"),
                }
            }
            ButtonEvent::Press => {
                // A press the current stage does not take (mid-capture, say) does nothing.
                if let Err(e) = sessions.input(super::session::Input::Button).await {
                    tracing::debug!(reason = e.code.as_str(), "button press ignored");
                }
            }
        }
    }
}
