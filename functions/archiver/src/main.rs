//! Lambda function `archiver`: the schedule's archive runs and the hot table's stream.

use collector::app::App;
use collector::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (app, table) = App::open_aws_with_table(Config::from_env()?).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| fn_archiver::handle_aws(&app, &table, event))).await
}
