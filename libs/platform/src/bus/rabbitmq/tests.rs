use super::*;
use crate::testing::TestVhost;

/// A broker that takes the connection and never answers: publishing gives up as
/// unavailable (the caller may retry) instead of hanging.
#[tokio::test]
async fn a_silent_broker_makes_publishing_fail_instead_of_hang() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("amqp://guest:guest@{}/%2f", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let bus = RabbitBus::new(Secret::new(url));
    let message = Message::new("m-1", "customer.created", b"{}".to_vec());
    let limit = CONNECT_TIMEOUT * PUBLISH_ATTEMPTS as u32 + Duration::from_secs(10);
    let outcome = tokio::time::timeout(limit, bus.publish(EVENTS_EXCHANGE, &[message]))
        .await
        .expect("gave up within the connect timeouts");
    assert!(
        matches!(outcome, Err(BusError::Unavailable(_))),
        "{outcome:?}"
    );
    held.abort();
}

#[tokio::test]
async fn contract() {
    let vhost = TestVhost::create();
    super::super::contract::run(
        Arc::new(RabbitBus::new(Secret::new(&vhost.url))),
        "rabbitmq",
    )
    .await;
}

#[tokio::test]
async fn a_replicas_own_queue_is_dropped_by_the_broker_once_unused() {
    let vhost = TestVhost::create();
    let bus = RabbitBus::new(Secret::new(&vhost.url));
    let config = ConsumerConfig {
        expires: Some(Duration::from_millis(1500)),
        ..ConsumerConfig::new("replica.own", EVENTS_EXCHANGE, &["#"])
    };
    assert!(
        !bus.exists("replica.own").await.unwrap(),
        "not declared yet"
    );
    bus.declare(&config).await.unwrap();
    assert!(bus.exists("replica.own").await.unwrap());
    let mut gone = false;
    for _ in 0..100 {
        if !bus.exists("replica.own").await.unwrap() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the broker dropped the unused queue");
}

#[tokio::test]
async fn deliveries_are_handled_concurrently_up_to_the_limit() {
    use std::sync::atomic::AtomicUsize;

    /// Counts handlers running at once; each waits until `release` says so.
    struct InFlight {
        now: AtomicUsize,
        most: AtomicUsize,
        done: tokio::sync::mpsc::UnboundedSender<()>,
        release: tokio::sync::watch::Receiver<bool>,
    }
    #[async_trait]
    impl Handler for InFlight {
        async fn handle(&self, _: &Delivery) -> Outcome {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let mut release = self.release.clone();
            let _ = release.wait_for(|go| *go).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            let _ = self.done.send(());
            Outcome::Ack
        }
    }

    let vhost = TestVhost::create();
    let bus = Arc::new(RabbitBus::new(Secret::new(&vhost.url)));
    let config = ConsumerConfig {
        concurrency: 4,
        ..ConsumerConfig::new("parallel", EVENTS_EXCHANGE, &["#"])
    };
    bus.declare(&config).await.unwrap();
    let messages: Vec<Message> = (0..10)
        .map(|n| Message::new(n.to_string(), "a.b", b"{}".to_vec()))
        .collect();
    bus.publish(EVENTS_EXCHANGE, &messages).await.unwrap();
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let (go, release) = tokio::sync::watch::channel(false);
    let handler = Arc::new(InFlight {
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        done,
        release,
    });
    let shutdown = Shutdown::new();
    tokio::spawn({
        let (bus, handler, shutdown) = (bus.clone(), handler.clone(), shutdown.clone());
        async move { bus.consume(config, handler, shutdown).await }
    });

    // Held back, the handlers pile up to the limit and no further.
    for _ in 0..1000 {
        if handler.now.load(Ordering::SeqCst) == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(handler.now.load(Ordering::SeqCst), 4);
    go.send(true).unwrap();
    for _ in 0..10 {
        tokio::time::timeout(Duration::from_secs(20), finished.recv())
            .await
            .unwrap();
    }
    shutdown.trigger();
    assert_eq!(
        handler.most.load(Ordering::SeqCst),
        4,
        "never more than the limit"
    );
}

#[tokio::test]
async fn publisher_and_consumer_come_back_after_the_connection_is_cut() {
    struct Collect(tokio::sync::mpsc::UnboundedSender<String>);
    #[async_trait]
    impl Handler for Collect {
        async fn handle(&self, delivery: &Delivery) -> Outcome {
            let _ = self.0.send(delivery.message.id.clone());
            Outcome::Ack
        }
    }
    let vhost = TestVhost::create();
    let bus = Arc::new(RabbitBus::new(Secret::new(&vhost.url)));
    let config = ConsumerConfig::new("survivor", EVENTS_EXCHANGE, &["#"]);
    bus.declare(&config).await.expect("declare");
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn({
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        async move { bus.consume(config, Arc::new(Collect(seen)), shutdown).await }
    });
    async fn wait(received: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(20), received.recv())
            .await
            .expect("delivery")
    }

    bus.publish(
        EVENTS_EXCHANGE,
        &[Message::new("before", "a.b", b"{}".to_vec())],
    )
    .await
    .unwrap();
    assert_eq!(wait(&mut received).await.as_deref(), Some("before"));

    let before = bus.connections_opened();
    vhost.close_connections();
    // The consumer reconnects by itself (with backoff) ...
    for _ in 0..400 {
        if bus.connections_opened() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        bus.connections_opened() > before,
        "the consumer reconnected"
    );
    // ... and the publisher on its next publish.
    bus.publish(
        EVENTS_EXCHANGE,
        &[Message::new("after", "a.b", b"{}".to_vec())],
    )
    .await
    .unwrap();
    assert_eq!(wait(&mut received).await.as_deref(), Some("after"));
    assert!(
        bus.connections_opened() >= before + 2,
        "the publisher reconnected too"
    );

    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}
