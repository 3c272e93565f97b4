//! The cold-start reference with what every function does at init besides: the AWS SDK's
//! default configuration chain loaded and one DynamoDB client built (no call made).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let dynamodb = &dynamodb;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let _ = dynamodb.config();
        Ok::<_, Error>(event.payload)
    }))
    .await
}
