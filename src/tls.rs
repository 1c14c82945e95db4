//! Every TLS connection, reqwest's and the AWS SDK's, runs on rustls with
//! ring: aws-lc, the default of both, would weigh on every bootstrap.

/// A reqwest client builder on ring. reqwest takes the process's default
/// rustls provider when a client is built, so it is installed here first.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // A second install is refused, harmlessly: the provider is the same.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A reqwest client with the defaults, on ring.
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("a default reqwest client always builds")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_whichever_is_first() {
        let _ = super::http_client();
        let _ = super::http_client_builder().build().unwrap();
    }
}
