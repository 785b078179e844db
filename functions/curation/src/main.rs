//! Lambda function `curation`: Curated examples and training metrics (admin), platforms (listed to anyone, added by an admin). Routes: `collector::http::routes::curation`.

use collector::app::App;
use collector::config::Config;
use collector::http::HttpState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = App::open_aws(Config::from_env()?).await?;
    lambda_http::run(collector::http::routes::curation(HttpState::lambda(app))).await
}
