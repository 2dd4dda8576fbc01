//! Parts of ARNs (`arn:<partition>:<service>:<region>:<account>:<resource>`).

/// The region, when the ARN names one.
pub fn region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// A Lambda function's name (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
pub fn function_name(arn: &str) -> Option<&str> {
    arn.split(':').nth(6).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_or_absent() {
        let f = "arn:aws:lambda:us-east-2:123456789012:function:readings:live";
        assert_eq!(
            (region(f), function_name(f)),
            (Some("us-east-2"), Some("readings"))
        );
        assert_eq!(region("arn:aws:s3:::bucket"), None);
        assert_eq!(function_name("not an arn"), None);
    }
}
