//! Lambda function `export`: Training export (admin). Routes: `collector::http::routes::export`.

use collector::app::App;
use collector::config::Config;
use collector::http::HttpState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::open_aws(Config::from_env()?).await?;
    lambda_http::run(collector::http::routes::export(HttpState::lambda(app))).await
}
