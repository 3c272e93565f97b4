//! Bare emulator rates, the denominators the benchmarks print beside their own figures: on any
//! SQS/EventBridge endpoint (LocalStack, or moto for comparison), from concurrent callers, one
//! message or event per call, every message received and deleted once:
//! SendMessage; ReceiveMessage + DeleteMessageBatch; PutEvents through a rule to a queue,
//! counted when the last event has been received from the queue. Each probe makes its own bus,
//! rule and queues through the API, so it measures the emulator, not the template.

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub send_message: f64,
    pub receive_delete: f64,
    pub put_events_to_queue: f64,
}

impl std::fmt::Display for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SendMessage {:.0}/s, ReceiveMessage+Delete {:.0} msg/s, PutEvents via rule to SQS {:.0}/s",
            self.send_message, self.receive_delete, self.put_events_to_queue
        )
    }
}

fn err(what: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Measures the three rates with `messages` messages per probe from `clients` callers.
pub async fn measure(endpoint: &str, messages: usize, clients: usize) -> Result<Rates, String> {
    let config = crate::emulators::sdk_config(endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let probe = format!("rates-{}", ulid::Ulid::new().to_string().to_lowercase());

    let queue = create_queue(&sqs, &format!("{probe}-direct")).await?;
    let started = Instant::now();
    let sends = spawn_each(messages, clients, {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        move |i| {
            let (sqs, queue) = (sqs.clone(), queue.clone());
            async move {
                let sent = sqs.send_message().queue_url(queue).message_body(format!("m{i}")).send().await;
                sent.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    });
    sends.await.map_err(err("SendMessage"))?;
    let send_message = messages as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let last = drain(&sqs, &queue, messages, clients).await?;
    let receive_delete = messages as f64 / (last - started).as_secs_f64();

    let target = create_queue(&sqs, &format!("{probe}-routed")).await?;
    let target_arn = sqs
        .get_queue_attributes()
        .queue_url(&target)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e}"))?
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .ok_or("no queue ARN")?;
    events.create_event_bus().name(&probe).send().await.map_err(|e| format!("CreateEventBus: {e}"))?;
    let pattern = serde_json::json!({"source": ["rates"], "detail-type": ["Probe"]}).to_string();
    events
        .put_rule()
        .name(&probe)
        .event_bus_name(&probe)
        .event_pattern(pattern)
        .send()
        .await
        .map_err(|e| format!("PutRule: {e}"))?;
    let target_entry = Target::builder().id("queue").arn(target_arn).build().map_err(|e| e.to_string())?;
    events
        .put_targets()
        .rule(&probe)
        .event_bus_name(&probe)
        .targets(target_entry)
        .send()
        .await
        .map_err(|e| format!("PutTargets: {e}"))?;

    let started = Instant::now();
    let puts = spawn_each(messages, clients, {
        let (events, bus) = (events.clone(), probe.clone());
        move |i| {
            let (events, bus) = (events.clone(), bus.clone());
            async move {
                let entry = PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source("rates")
                    .detail_type("Probe")
                    .detail(serde_json::json!({ "i": i }).to_string())
                    .build();
                let out = events.put_events().entries(entry).send().await.map_err(|e| e.to_string())?;
                match out.failed_entry_count {
                    0 => Ok(()),
                    _ => Err("an entry was refused".to_owned()),
                }
            }
        }
    });
    let (published, delivered) = tokio::join!(puts, drain(&sqs, &target, messages, clients));
    published.map_err(err("PutEvents"))?;
    let put_events_to_queue = messages as f64 / (delivered? - started).as_secs_f64();
    Ok(Rates { send_message, receive_delete, put_events_to_queue })
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, String> {
    let created = sqs.create_queue().queue_name(name).send().await.map_err(|e| format!("CreateQueue: {e}"))?;
    created.queue_url.ok_or_else(|| "CreateQueue gave no URL".into())
}

/// Runs `call(i)` for every i < total from `clients` workers; the first error wins.
async fn spawn_each<F, Fut>(total: usize, clients: usize, call: F) -> Result<(), String>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..clients.max(1)).map(|_| {
        let (next, call) = (next.clone(), call.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), String>(());
                }
                call(i).await?;
            }
        })
    });
    for joined in futures::future::join_all(workers).await {
        joined.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Receives (10 at a time) and deletes until `expected` messages have come, from `clients`
/// receivers; when the last of them was deleted. Fails if they have not all come within a minute
/// of the last one. (The other receivers' final empty long polls are not counted.)
async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str, expected: usize, clients: usize) -> Result<Instant, String> {
    let received = Arc::new(AtomicUsize::new(0));
    let done_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let receivers = (0..clients.clamp(1, 16)).map(|_| {
        let (sqs, queue, received, done_at) = (sqs.clone(), queue.to_owned(), received.clone(), done_at.clone());
        tokio::spawn(async move {
            let mut quiet_since = Instant::now();
            while received.load(Ordering::Relaxed) < expected {
                let batch = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| format!("ReceiveMessage: {e}"))?;
                let messages = batch.messages.unwrap_or_default();
                if messages.is_empty() {
                    if quiet_since.elapsed() > Duration::from_secs(60) {
                        return Err(format!("{} of {expected} messages came", received.load(Ordering::Relaxed)));
                    }
                    continue;
                }
                quiet_since = Instant::now();
                let entries = messages.iter().enumerate().filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone()?)
                        .build()
                        .ok()
                });
                sqs.delete_message_batch()
                    .queue_url(&queue)
                    .set_entries(Some(entries.collect()))
                    .send()
                    .await
                    .map_err(|e| format!("DeleteMessageBatch: {e}"))?;
                if received.fetch_add(messages.len(), Ordering::Relaxed) + messages.len() >= expected {
                    done_at.lock().expect("lock").get_or_insert_with(Instant::now);
                }
            }
            Ok::<(), String>(())
        })
    });
    for joined in futures::future::join_all(receivers).await {
        joined.map_err(|e| e.to_string())??;
    }
    let done = *done_at.lock().expect("lock");
    done.ok_or_else(|| "no receiver saw the last message".to_owned())
}

/// The same probes on the benchmark's LocalStack and on a moto started for the comparison.
pub struct Comparison {
    pub localstack: Rates,
    pub moto: Result<Rates, String>,
}

impl Comparison {
    pub fn print(&self) {
        println!("  bare emulator rates, same run:");
        println!("    LocalStack  {}", self.localstack);
        match &self.moto {
            Ok(moto) => println!("    moto        {moto}"),
            Err(why) => println!("    moto        not measured: {why}"),
        }
    }
}

/// Measures LocalStack, then moto (installed by `tests/bin/setup --with-moto`), one after the
/// other so they do not share the two cores.
pub async fn on_localstack_and_moto(
    localstack: &crate::emulators::LocalStack,
    messages: usize,
    clients: usize,
) -> Result<Comparison, String> {
    let on_localstack = measure(&localstack.endpoint, messages, clients).await?;
    let on_moto = match crate::emulators::Moto::start() {
        Ok(moto) => measure(&moto.endpoint, messages, clients).await,
        Err(e) => Err(e.to_string()),
    };
    Ok(Comparison { localstack: on_localstack, moto: on_moto })
}
