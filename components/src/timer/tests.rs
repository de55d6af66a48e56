use std::time::Duration;

use kv_ports::component::spawn;
use kv_ports::testkit::{probe, Trigger};
use kv_ports::timer::{Timeout, TimerId, TimerRequest};
use tokio::time::{advance, timeout};

use super::Timer;

const ID: TimerId = TimerId(7);

/// Lets spawned timer tasks and actors run at the current (paused) instant.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn once_fires_once_after_its_delay() {
    let timer = spawn::<Timer>(());
    let (requirer, mut fired) = probe(&timer).await.unwrap();
    let after = Duration::from_millis(100);
    requirer
        .ask(Trigger(TimerRequest::Once { id: ID, after }))
        .await
        .unwrap();
    settle().await;

    advance(Duration::from_millis(99)).await;
    settle().await;
    assert!(fired.try_recv().is_err(), "fired early");
    advance(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(fired.try_recv().unwrap(), Timeout { id: ID });
    advance(Duration::from_secs(10)).await;
    settle().await;
    assert!(fired.try_recv().is_err(), "fired twice");
}

#[tokio::test(start_paused = true)]
async fn periodic_fires_until_cancelled() {
    let timer = spawn::<Timer>(());
    let (requirer, mut fired) = probe(&timer).await.unwrap();
    let every = Duration::from_millis(10);
    requirer
        .ask(Trigger(TimerRequest::Periodic { id: ID, every }))
        .await
        .unwrap();
    settle().await;
    for _ in 0..5 {
        advance(every).await;
        settle().await;
        assert_eq!(fired.try_recv().unwrap(), Timeout { id: ID });
    }
    requirer
        .ask(Trigger(TimerRequest::Cancel { id: ID }))
        .await
        .unwrap();
    settle().await;
    advance(Duration::from_secs(1)).await;
    settle().await;
    assert!(fired.try_recv().is_err(), "fired after cancel");
}

#[tokio::test(start_paused = true)]
async fn rescheduling_replaces_the_old_timeout() {
    let timer = spawn::<Timer>(());
    let (requirer, mut fired) = probe(&timer).await.unwrap();
    let first = TimerRequest::Once {
        id: ID,
        after: Duration::from_millis(10),
    };
    let second = TimerRequest::Once {
        id: ID,
        after: Duration::from_millis(50),
    };
    requirer.ask(Trigger(first)).await.unwrap();
    requirer.ask(Trigger(second)).await.unwrap();
    settle().await;
    advance(Duration::from_millis(20)).await;
    settle().await;
    assert!(fired.try_recv().is_err(), "the replaced timeout fired");
    advance(Duration::from_millis(30)).await;
    settle().await;
    assert_eq!(fired.try_recv().unwrap(), Timeout { id: ID });
}

#[tokio::test(start_paused = true)]
async fn timeouts_go_only_to_the_requirer_that_scheduled_them() {
    let timer = spawn::<Timer>(());
    let (alice, mut alice_fired) = probe(&timer).await.unwrap();
    let (_bob, mut bob_fired) = probe::<kv_ports::timer::TimerPort, _>(&timer)
        .await
        .unwrap();
    let after = Duration::from_millis(5);
    alice
        .ask(Trigger(TimerRequest::Once { id: ID, after }))
        .await
        .unwrap();
    settle().await;
    advance(after).await;
    settle().await;
    assert_eq!(alice_fired.try_recv().unwrap(), Timeout { id: ID });
    assert!(bob_fired.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn the_requirer_side_ignores_a_timeout_that_raced_its_cancel() {
    use kv_ports::port::RequiredPort;
    use kv_ports::timer::{TimerPort, Timers};
    // A timeout can already sit in the requirer's mailbox when it cancels; `Timers` drops it.
    let mut port = RequiredPort::<TimerPort>::default();
    let mut timers = Timers::default();
    let id = timers.once(&mut port, Duration::from_millis(1), "election");
    timers.cancel(&mut port, id);
    assert_eq!(timers.fired(Timeout { id }), None);
    let id = timers.once(&mut port, Duration::from_millis(1), "election");
    assert_eq!(timers.fired(Timeout { id }), Some("election"));
    assert_eq!(
        timers.fired(Timeout { id }),
        None,
        "a once timeout is spent"
    );
}

#[tokio::test]
async fn stopping_the_timer_ends_its_tasks() {
    let timer = spawn::<Timer>(());
    let (requirer, mut fired) = probe(&timer).await.unwrap();
    let every = Duration::from_millis(1);
    requirer
        .ask(Trigger(TimerRequest::Periodic { id: ID, every }))
        .await
        .unwrap();
    timeout(Duration::from_secs(5), fired.recv())
        .await
        .unwrap()
        .unwrap();
    let weak = timer.downgrade();
    drop(timer);
    timeout(Duration::from_secs(5), weak.wait_for_shutdown())
        .await
        .unwrap();
    // With the timer gone, the channel's sender (the probe) gets nothing more.
    while fired.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(fired.try_recv().is_err());
}
