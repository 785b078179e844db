//! Lambda function `delete`: Deletes and the right of access. Routes: `collector::http::routes::delete`.

use collector::app::App;
use collector::config::Config;
use collector::http::HttpState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::open_aws(Config::from_env()?).await?;
    lambda_http::run(collector::http::routes::delete(HttpState::lambda(app))).await
}
