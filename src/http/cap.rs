//! A fixed number of places for one kind of request: downloads, live-view viewers, event streams.
//! A request over the cap is turned away at once (the caller answers 503 in its own words), never
//! queued, so a flood of one kind cannot hold connections that Payme or the kiosk need. A place is
//! given back when its holder drops it, which for a streamed reply is when the body ends or the
//! client goes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Cap {
    max: usize,
    places: Arc<Semaphore>,
}

/// One place in a [`Cap`], held for as long as the request (or its streamed body) lives.
pub struct Place(#[allow(dead_code)] OwnedSemaphorePermit);

impl Cap {
    pub fn new(max: usize) -> Cap {
        Cap {
            max,
            places: Arc::new(Semaphore::new(max)),
        }
    }

    /// How many places there are.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place if one is free right now; `None` means "answer 503".
    pub fn take(&self) -> Option<Place> {
        self.places.clone().try_acquire_owned().ok().map(Place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_at_most_max_places_and_takes_them_back_when_dropped() {
        let cap = Cap::new(2);
        let a = cap.take().expect("first");
        let _b = cap.take().expect("second");
        assert!(cap.take().is_none(), "over the cap");
        drop(a);
        assert!(cap.take().is_some(), "a dropped place is free again");
    }
}
