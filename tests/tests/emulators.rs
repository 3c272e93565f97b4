//! The emulators the tests and the local stack start: on loopback only, and LocalStack with every
//! service the project relies on, the template deployed into it as a real CloudFormation stack.

use orderflow_tests::emulators::{listening_sockets, shared_localstack, Dynoxide, LocalStack};
use orderflow_tests::Stack;
use std::time::Instant;

#[tokio::test]
async fn every_emulator_listens_on_loopback_only() {
    // Its own LocalStack, with every service loaded at start: whatever a service opens when it
    // loads is open by the time this looks.
    let started = Instant::now();
    let localstack = LocalStack::start_with_every_service_loaded().unwrap();
    eprintln!("LocalStack with every service loaded was healthy after {:?}", started.elapsed());
    let dynoxide = Dynoxide::start(None).await.unwrap();

    let localstack_serves = listening_sockets(localstack.pid()).unwrap();
    let gateway = localstack.endpoint.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    assert!(
        localstack_serves.iter().any(|s| s.protocol == "tcp" && s.address.port() == gateway),
        "LocalStack's gateway is not among its sockets: {localstack_serves:?}"
    );
    for socket in &localstack_serves {
        assert!(socket.address.ip() == std::net::Ipv4Addr::LOCALHOST, "LocalStack serves on {socket}, not 127.0.0.1");
    }

    // Dynoxide is embedded: every socket this process serves on is ours, test APIs included.
    let own = listening_sockets(std::process::id()).unwrap();
    let dynoxide_port = dynoxide.endpoint.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    assert!(own.iter().any(|s| s.address.port() == dynoxide_port), "{own:?}");
    for socket in &own {
        assert!(socket.address.ip() == std::net::Ipv4Addr::LOCALHOST, "this process serves on {socket}");
    }
}

#[tokio::test]
async fn localstack_offers_every_service_the_project_relies_on() {
    let localstack = shared_localstack();
    let config = orderflow_tests::emulators::sdk_config(&localstack.endpoint).await;
    aws_sdk_sqs::Client::new(&config).list_queues().send().await.expect("SQS answers");
    aws_sdk_eventbridge::Client::new(&config).list_event_buses().send().await.expect("EventBridge answers");
    aws_sdk_cloudformation::Client::new(&config).list_stacks().send().await.expect("CloudFormation answers");
    // S3 and KMS have no caller yet (fulfilment's uploads and the PII issue bring them); their
    // state comes from LocalStack's own health report.
    let health = localstack.health().unwrap();
    for service in ["sqs", "events", "s3", "kms", "cloudformation"] {
        let state = health["services"][service].as_str().unwrap_or("absent");
        assert!(matches!(state, "available" | "running"), "{service} is {state}");
    }
    assert!(LocalStack::serves_everything(&health));
}

#[tokio::test]
async fn each_test_stack_is_its_own_cloudformation_stack_with_its_own_queues_and_bus() {
    let (first, _) = Stack::for_test().await;
    let (second, _) = Stack::for_test().await;
    assert_ne!(first.provisioned.bus_name, second.provisioned.bus_name);
    assert_ne!(
        first.provisioned.queue_url("StockReservationQueue"),
        second.provisioned.queue_url("StockReservationQueue")
    );

    let config = orderflow_tests::emulators::sdk_config(&first.localstack_endpoint).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let described = cloudformation.describe_stacks().stack_name(&first.provisioned.stack_name).send().await.unwrap();
    let stack = &described.stacks()[0];
    assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
    let outputs: Vec<_> = stack.outputs().iter().filter_map(|o| Some((o.output_key()?, o.output_value()?))).collect();
    assert!(outputs.contains(&("EventBusName", first.provisioned.bus_name.as_str())), "{outputs:?}");

    // The queue carries the template's redrive policy to its dead-letter queue.
    let queue = first.provisioned.queue_url("StockReservationQueue");
    let attributes = first
        .sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy = attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy].clone();
    assert!(policy.contains(&first.provisioned.queue_arns["StockReservationDeadLetterQueue"]), "{policy}");
}
