//! Lambda function `submit`: Feedback on an interaction. Routes: `collector::http::routes::submit`.

use collector::app::App;
use collector::config::Config;
use collector::http::HttpState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::open_aws(Config::from_env()?).await?;
    lambda_http::run(collector::http::routes::submit(HttpState::lambda(app))).await
}
