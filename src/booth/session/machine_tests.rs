//! Unit tests of `machine::transition`: every stage against every customer input, then every
//! other event, without a store, a camera or a clock.

use super::*;
use crate::booth::health::{BlockReason, Blocker};

const NOW: i64 = 1_000_000;
const SINCE: i64 = 990_000;

fn rules() -> Rules {
    Rules {
        shots: 3,
        countdown_s: 3,
        max_retakes: 2,
        review_timeout_s: 60,
        copies_timeout_s: 60,
        done_timeout_s: 15,
        error_timeout_s: 20,
    }
}

fn session(stage: Stage) -> Session {
    let paid_stage = matches!(
        stage,
        Stage::AwaitingPayment | Stage::Printing | Stage::Done | Stage::Error
    );
    Session {
        id: 7,
        stage,
        shots_total: 3,
        shots_taken: if matches!(stage, Stage::Countdown | Stage::Capturing) {
            1
        } else {
            3
        },
        retakes_used: 0,
        order_id: paid_stage.then_some(9),
        error_code: (stage == Stage::Error).then(|| "camera_failed".to_string()),
        error_message: None,
        started_at: SINCE - 5000,
        stage_since: SINCE,
        ended_at: None,
        end_reason: None,
    }
}

fn state(stage: Stage) -> State {
    State {
        session: (stage != Stage::Idle).then(|| session(stage)),
        countdown_ends_at: (stage == Stage::Countdown).then_some(SINCE + 3000),
    }
}

fn step(state: &State, event: Event) -> Result<Step, SessionError> {
    let rules = rules();
    transition(
        state,
        event,
        NOW,
        &Ctx {
            rules: &rules,
            blocker: None,
        },
    )
}

/// The stage after the step (idle once ended) and the actions by name.
fn summary(result: Result<Step, SessionError>) -> Result<(Stage, Vec<&'static str>), Refusal> {
    let step = result.map_err(|e| e.code)?;
    let names = step
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateSession { .. } => "create_session",
            Action::Save(_) => "save",
            Action::RemoveShots(_) => "remove_shots",
            Action::Capture { .. } => "capture",
            Action::AbortCapture => "abort_capture",
            Action::CreateOrder { .. } => "create_order",
            Action::CancelOrder(_) => "cancel_order",
        })
        .collect();
    Ok((step.state.stage(), names))
}

const STAGES: [Stage; 9] = [
    Stage::Idle,
    Stage::Countdown,
    Stage::Capturing,
    Stage::Review,
    Stage::ChooseCopies,
    Stage::AwaitingPayment,
    Stage::Printing,
    Stage::Done,
    Stage::Error,
];
const INPUTS: [Input; 6] = [
    Input::Start,
    Input::Retake,
    Input::Accept,
    Input::Cancel,
    Input::Dismiss,
    Input::Button,
];

/// What each stage does with each input; anything not listed is refused with `not_now` and
/// changes nothing.
fn expected(stage: Stage, input: Input) -> Option<(Stage, Vec<&'static str>)> {
    let ended = Some((Stage::Idle, vec!["abort_capture", "save"]));
    match (stage, input) {
        (Stage::Idle, Input::Start | Input::Button) => Some((Stage::Idle, vec!["create_session"])),
        (Stage::Review, Input::Retake) => Some((Stage::Countdown, vec!["remove_shots", "save"])),
        (Stage::Review, Input::Accept | Input::Button) => Some((Stage::ChooseCopies, vec!["save"])),
        (Stage::Review | Stage::ChooseCopies, Input::Cancel) => ended,
        (Stage::AwaitingPayment, Input::Cancel) => Some((Stage::AwaitingPayment, vec!["cancel_order"])),
        (Stage::Done | Stage::Error, Input::Dismiss | Input::Button) => ended,
        _ => None,
    }
}

#[test]
fn every_stage_takes_only_its_inputs() {
    for stage in STAGES {
        for input in INPUTS {
            let before = state(stage);
            let got = summary(step(&before, Event::Input(input)));
            match expected(stage, input) {
                Some(want) => assert_eq!(got, Ok(want), "{stage:?} + {input:?}"),
                None => assert_eq!(got, Err(Refusal::NotNow), "{stage:?} + {input:?}"),
            }
        }
    }
}

#[test]
fn start_is_refused_while_blocked() {
    let rules = rules();
    let blocker = Blocker {
        reason: BlockReason::PrinterOffline,
        message: "the printer does not answer".into(),
    };
    let ctx = Ctx {
        rules: &rules,
        blocker: Some(blocker),
    };
    let err = transition(&state(Stage::Idle), Event::Input(Input::Start), NOW, &ctx).unwrap_err();
    assert_eq!(err.code, Refusal::Blocked(BlockReason::PrinterOffline));
    assert_eq!(err.code.as_str(), "printer_offline");
    assert_eq!(err.message, "the printer does not answer");
}

#[test]
fn a_created_session_counts_down() {
    let mut created = session(Stage::Countdown);
    created.shots_taken = 0;
    created.stage_since = NOW;
    let next = step(&state(Stage::Idle), Event::SessionCreated(created.clone())).unwrap();
    assert_eq!(next.state.session, Some(created));
    assert_eq!(next.state.countdown_ends_at, Some(NOW + 3000));
    assert!(next.actions.is_empty());
}

#[test]
fn retake_starts_over_until_none_are_left() {
    let next = step(&state(Stage::Review), Event::Input(Input::Retake)).unwrap();
    let s = next.state.session.as_ref().unwrap();
    assert_eq!(
        (s.stage, s.shots_taken, s.retakes_used, s.stage_since),
        (Stage::Countdown, 0, 1, NOW)
    );
    assert_eq!(next.state.countdown_ends_at, Some(NOW + 3000));
    assert_eq!(next.actions[0], Action::RemoveShots(7));

    let mut used_up = state(Stage::Review);
    used_up.session.as_mut().unwrap().retakes_used = 2;
    let err = step(&used_up, Event::Input(Input::Retake)).unwrap_err();
    assert_eq!(err.code, Refusal::NoRetakesLeft);
}

#[test]
fn ending_records_when_and_why() {
    let next = step(&state(Stage::Done), Event::Input(Input::Dismiss)).unwrap();
    assert_eq!(next.state, State::default());
    let Some(Action::Save(saved)) = next.actions.last() else {
        panic!("{:?}", next.actions)
    };
    assert_eq!(
        (saved.ended_at, saved.end_reason.as_deref()),
        (Some(NOW), Some("dismissed"))
    );
    assert_eq!(saved.stage, Stage::Done, "the stored stage is where the customer left");
}

#[test]
fn deadline_in_every_stage() {
    let end = |reason: &str| Some(reason.to_string());
    for (stage, want_stage, want_reason) in [
        (Stage::Idle, Stage::Idle, None),
        (Stage::Countdown, Stage::Capturing, None),
        (Stage::Capturing, Stage::Capturing, None),
        (Stage::Review, Stage::Idle, end("timed out")),
        (Stage::ChooseCopies, Stage::Idle, end("timed out")),
        (Stage::AwaitingPayment, Stage::AwaitingPayment, None),
        (Stage::Printing, Stage::Printing, None),
        (Stage::Done, Stage::Idle, end("done")),
        (Stage::Error, Stage::Idle, end("error shown")),
    ] {
        let next = step(&state(stage), Event::Deadline).unwrap();
        assert_eq!(next.state.stage(), want_stage, "{stage:?}");
        let reason = next.actions.iter().find_map(|a| match a {
            Action::Save(s) => s.end_reason.clone(),
            _ => None,
        });
        assert_eq!(reason, want_reason, "{stage:?}");
    }
}

#[test]
fn countdown_deadline_captures_the_next_shot() {
    let next = step(&state(Stage::Countdown), Event::Deadline).unwrap();
    assert_eq!(next.state.countdown_ends_at, None);
    assert_eq!(
        next.actions.last(),
        Some(&Action::Capture {
            session_id: 7,
            shot: 2,
            last: false
        })
    );
    let mut last = state(Stage::Countdown);
    last.session.as_mut().unwrap().shots_taken = 2;
    let next = step(&last, Event::Deadline).unwrap();
    assert!(matches!(
        next.actions.last(),
        Some(Action::Capture {
            shot: 3,
            last: true,
            ..
        })
    ));
}

#[test]
fn a_shot_leads_to_the_next_countdown_or_the_review() {
    let capturing = state(Stage::Capturing);
    let next = step(&capturing, Event::ShotTaken { page: None }).unwrap();
    let s = next.state.session.as_ref().unwrap();
    assert_eq!((s.stage, s.shots_taken), (Stage::Countdown, 2));
    assert_eq!(next.state.countdown_ends_at, Some(NOW + 3000));

    let next = step(&capturing, Event::ShotTaken { page: Some(Ok(())) }).unwrap();
    assert_eq!(next.state.stage(), Stage::Review);

    let next = step(
        &capturing,
        Event::ShotTaken {
            page: Some(Err("no font".into())),
        },
    )
    .unwrap();
    let s = next.state.session.as_ref().unwrap();
    assert_eq!(
        (s.stage, s.error_code.as_deref(), s.error_message.as_deref()),
        (Stage::Error, Some("compose_failed"), Some("no font"))
    );

    let next = step(&capturing, Event::ShotFailed("busy".into())).unwrap();
    let s = next.state.session.as_ref().unwrap();
    assert_eq!(
        (s.stage, s.error_code.as_deref()),
        (Stage::Error, Some("camera_failed"))
    );
}

#[test]
fn a_capture_result_outside_capturing_changes_nothing() {
    for stage in STAGES.into_iter().filter(|s| *s != Stage::Capturing) {
        for event in [Event::ShotTaken { page: None }, Event::ShotFailed("x".into())] {
            let before = state(stage);
            let next = step(&before, event).unwrap();
            assert_eq!((next.state, next.actions), (before, vec![]), "{stage:?}");
        }
    }
}

/// The page is finished after the review went up; if that fails, the customer is told before any
/// order exists, and a late failure cannot touch a session that moved on.
#[test]
fn a_page_that_fails_after_the_review_is_a_compose_error_there_only() {
    for stage in STAGES {
        let before = state(stage);
        let next = step(&before, Event::PageFailed("disk full".into())).unwrap();
        if matches!(stage, Stage::Review | Stage::ChooseCopies) {
            let s = next.state.session.as_ref().unwrap();
            assert_eq!(
                (s.stage, s.error_code.as_deref(), s.error_message.as_deref()),
                (Stage::Error, Some("compose_failed"), Some("disk full")),
                "{stage:?}"
            );
        } else {
            assert_eq!((next.state, next.actions), (before, vec![]), "{stage:?}");
        }
    }
}

#[test]
fn orders_are_taken_only_on_the_copies_screen() {
    for stage in STAGES {
        let got = summary(step(&state(stage), Event::OrderRequested));
        if stage == Stage::ChooseCopies {
            assert_eq!(got, Ok((Stage::ChooseCopies, vec!["create_order"])));
        } else {
            assert_eq!(got, Err(Refusal::NotNow), "{stage:?}");
        }
    }
    let next = step(&state(Stage::ChooseCopies), Event::OrderCreated(12)).unwrap();
    let s = next.state.session.as_ref().unwrap();
    assert_eq!((s.stage, s.order_id), (Stage::AwaitingPayment, Some(12)));
}

#[test]
fn a_cancelled_order_ends_the_session() {
    let next = step(&state(Stage::AwaitingPayment), Event::OrderCancelled).unwrap();
    assert_eq!(next.state.stage(), Stage::Idle);
    let mut no_order = state(Stage::AwaitingPayment);
    no_order.session.as_mut().unwrap().order_id = None;
    let got = summary(step(&no_order, Event::Input(Input::Cancel)));
    assert_eq!(got, Ok((Stage::Idle, vec!["abort_capture", "save"])));
}

#[test]
fn the_order_moves_a_waiting_session_on() {
    use OrderStatus as O;
    let seen = |status, expires_at| {
        Event::OrderSeen(OrderSeen {
            status,
            expires_at,
            last_error: Some("jam".into()),
        })
    };
    let later = NOW + 10_000;
    let grace_end = NOW - PAYMENT_GRACE_MS;
    let (paying, printing) = (Stage::AwaitingPayment, Stage::Printing);
    let (failed, cancelled) = (Some("print_failed"), Some("payment_cancelled"));
    // Waiting for the payment: the order's status and its expiry both count.
    let while_paying = [
        (O::AwaitingPayment, later, paying, None),
        (O::Paid, later, printing, None),
        (O::Printing, later, printing, None),
        (O::Printed, later, Stage::Done, None),
        // A digital-only order is delivered by its link the moment it is paid.
        (O::Delivered, later, Stage::Done, None),
        (O::PrintFailed, later, Stage::Error, failed),
        (O::Expired, later, Stage::Error, Some("payment_expired")),
        (O::Cancelled, later, Stage::Error, cancelled),
        (O::Refunded, later, Stage::Error, cancelled),
        // Payme still holds a transaction past the TTL: wait out the grace, then end.
        (O::AwaitingPayment, grace_end, paying, None),
        (O::AwaitingPayment, grace_end - 1, Stage::Idle, None),
    ];
    // Printing a paid order: only the print's outcome or a refund moves the screen on.
    let while_printing = [
        (O::Printing, printing, None),
        (O::Paid, printing, None),
        (O::Expired, printing, None),
        (O::Printed, Stage::Done, None),
        (O::PrintFailed, Stage::Error, failed),
        (O::Refunded, Stage::Error, cancelled),
    ];
    let paying_cases = while_paying.map(|(o, expires, to, error)| (paying, o, expires, to, error));
    let printing_cases = while_printing.map(|(o, to, error)| (printing, o, later, to, error));
    for (stage, status, expires_at, want_stage, want_error) in paying_cases.into_iter().chain(printing_cases) {
        let next = step(&state(stage), seen(status, expires_at)).unwrap();
        let s = next.state.session.as_ref();
        assert_eq!(next.state.stage(), want_stage, "{stage:?} + {status:?}");
        assert_eq!(
            s.and_then(|s| s.error_code.as_deref()),
            want_error,
            "{stage:?} + {status:?}"
        );
        if want_error == Some("print_failed") {
            assert_eq!(s.and_then(|s| s.error_message.as_deref()), Some("jam"));
        }
    }
    // Other stages do not follow an order.
    for stage in [Stage::Idle, Stage::Review, Stage::Done, Stage::Error] {
        let before = state(stage);
        let next = step(&before, seen(O::Printed, later)).unwrap();
        assert_eq!(next.state, before, "{stage:?}");
    }
}

#[test]
fn deadlines_follow_the_config_and_the_error() {
    let r = rules();
    assert_eq!(state(Stage::Idle).deadline(&r), None);
    assert_eq!(state(Stage::Countdown).deadline(&r), Some(SINCE + 3000));
    assert_eq!(state(Stage::Review).deadline(&r), Some(SINCE + 60_000));
    assert_eq!(state(Stage::Done).deadline(&r), Some(SINCE + 15_000));
    assert_eq!(state(Stage::Error).deadline(&r), Some(SINCE + 20_000));
    let mut print_failed = state(Stage::Error);
    print_failed.session.as_mut().unwrap().error_code = Some("print_failed".into());
    assert_eq!(print_failed.deadline(&r), Some(SINCE + 120_000));
    for stage in [Stage::Capturing, Stage::AwaitingPayment, Stage::Printing] {
        assert_eq!(state(stage).deadline(&r), None, "{stage:?}");
    }
}

#[test]
fn leaving_the_error_stage_clears_the_error() {
    let mut s = state(Stage::AwaitingPayment);
    s.session.as_mut().unwrap().error_code = Some("stale".into());
    let next = step(
        &s,
        Event::OrderSeen(OrderSeen {
            status: OrderStatus::Paid,
            expires_at: NOW,
            last_error: None,
        }),
    )
    .unwrap();
    assert_eq!(next.state.session.unwrap().error_code, None);
}

#[test]
fn codes_serialise_as_the_kiosk_page_spells_them() {
    assert_eq!(serde_json::to_value(Refusal::NoRetakesLeft).unwrap(), "no_retakes_left");
    assert_eq!(
        serde_json::to_value(Refusal::Blocked(BlockReason::MediaCounterEmpty)).unwrap(),
        "media_counter_empty"
    );
    for kind in [
        ErrorKind::CameraFailed,
        ErrorKind::ComposeFailed,
        ErrorKind::PaymentExpired,
        ErrorKind::PaymentCancelled,
        ErrorKind::PrintFailed,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        assert_eq!(ErrorKind::parse(kind.as_str()), kind);
    }
    assert_eq!(ErrorKind::parse("???"), ErrorKind::Other);
}
